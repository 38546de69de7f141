//! Applying a plan: a dependency graph (user → pool → ACL; bridges → network apply per
//! node → VM start; clone → config → start) run with bounded concurrency per node and per
//! storage, retries of transient failures, and a report. Destroy by marker lives here too.

mod act;
mod destroy;
mod executor;
mod pending;
mod report;
mod retry;
mod runner;

pub use act::{ActError, Done};
pub use destroy::{DestroyReport, Doomed, DoomedUser, DoomedVm, KeptBridge, NodeBridge, destroy, destroy_actions};
pub use executor::{ApplyOptions, apply, deploy_graph};
pub use pending::foreign_pending;
pub use report::{ApplyReport, Credential, Failure};
pub use runner::{OnEnd, Outcome, Perform, RunReport, run, run_with};
