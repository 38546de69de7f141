//! The `stand` command line: argument parsing, and each command's glue.

mod arguments;
mod sim_cmd;

use std::process::ExitCode;

use clap::Parser;

pub use arguments::{Arguments, Command, SimCommand};

/// Exit codes (documented in the README).
pub mod exit {
    /// Everything converged.
    pub const OK: u8 = 0;
    /// The command failed.
    pub const FAILED: u8 = 1;
    /// Bad usage.
    pub const USAGE: u8 = 2;
}

/// Runs the `stand` command line and returns its exit code.
pub fn main() -> ExitCode {
    let args = Arguments::parse();
    init_tracing(args.verbose, args.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

async fn run(args: Arguments) -> anyhow::Result<u8> {
    match args.command {
        Command::Sim(cmd) => sim_cmd::run(cmd).await,
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("stand={level}")));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
