//! Grading: `stand check` runs the lab's `fn check(stand)` for every deployed stand at once
//! through the QEMU guest agent ([`ClusterAgent`]), builds the [`GradeSheet`], and keeps every
//! run in the [`History`] database.

mod agent;
mod export;
mod history;
mod run;
mod sheet;

pub use agent::ClusterAgent;
pub use history::{History, HistoryError, Latest, LatestMark, Progress};
pub use run::{DeployedStand, StandOutcome, StandsError, check_stands, deployed_stands};
pub use sheet::{Criterion, GradeSheet, Mark, Row, number};
