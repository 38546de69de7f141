//! Writing to stdout and stderr without ever panicking or stopping the work.
//!
//! `println!` panics when stdout is a closed pipe (`stand up lab.rhai | head -1`). Output of
//! `stand` is a report of work that goes on regardless: a closed stdout or stderr loses the
//! text, never the run. [`outln!`](crate::outln) and [`errln!`](crate::errln) are the
//! non-panicking forms used everywhere.

use std::fmt;
use std::io::Write;

/// Writes to stdout; a closed or failing stdout is ignored.
pub fn stdout(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.flush());
}

/// Writes to stderr; a closed or failing stderr is ignored.
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics (see [`crate::out`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics (see [`crate::out`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics (see [`crate::out`]).
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::out::stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (see [`crate::out`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// An uptime as people read it: `3d 4h`, `2h 5m`, `4m 10s` (`stand status`, `stand serve`).
pub fn uptime(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}
