//! Changing the cluster: the one runner of action graphs (`runner`), what each action does
//! (`act` for removals, `course` for snapshots, rollbacks and power, `deploy` for `up`),
//! `up`'s graph from a plan (`deploy::graph`), what
//! `down` and `--prune` remove (`destroy`), with per-node and per-storage limits, retries of
//! what is safe to repeat, and a report.

mod act;
mod course;
pub mod credentials;
mod deploy;
mod destroy;
mod interrupt;
mod options;
mod pending;
mod report;
mod retry;
mod runner;
mod sdn;
mod templates;

pub use act::{ActError, Done};
pub use deploy::{apply, course_actions, deploy_graph};
pub use destroy::{DestroyReport, Doomed, DoomedUser, DoomedVm, KeptBridge, NodeBridge, destroy, destroy_actions};
pub use interrupt::Interrupt;
pub use options::ApplyOptions;
pub use pending::foreign_pending;
pub use report::{ApplyReport, Cause, Credential, Failure};
pub use runner::{OnEnd, Outcome, Perform, RunReport, run, run_observed, run_with};
