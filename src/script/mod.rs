//! Rhai scripts: the engine with its limits, the stand primitives and snapshot queries,
//! modules (next to the script, then the embedded stdlib), and errors with `file:line:col`.

mod api;
mod check;
mod docs;
mod error;
mod grading;
mod runner;
mod session;
mod stdlib;
mod users;

pub use api::CLONE_KEYS;
pub use check::CheckScript;
pub use docs::{FnDoc, functions, markdown};
pub use error::ScriptError;
pub use grading::{ExecOutput, Grade, GuestAgent, GuestError, GuestVm, Interface, StandUnderCheck};
pub use runner::{RunOptions, ScriptOutcome, run_file, run_source};
pub use session::{Extension, Session};
pub use stdlib::STDLIB;
pub use users::{UsersError, read_users};
