//! How an apply runs: limits per node and per storage, task waiting, retries, progress.

use std::time::Duration;

use crate::pve::{Backoff, WaitPolicy};

/// Limits and timing of an apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// VM pipelines at once per node.
    pub per_node: usize,
    /// Clones at once per storage (PVE serializes volume creation per storage and times
    /// out a lock wait after 10 s).
    pub per_storage: usize,
    /// Task polling.
    pub wait: WaitPolicy,
    /// Attempts of an operation that fails transiently.
    pub attempts: u32,
    /// First backoff.
    pub backoff: Duration,
    /// Apply a node's network even when it has pending changes `stand` did not make.
    pub apply_foreign_network: bool,
    /// Show progress bars (a TTY and not `--quiet`).
    pub progress: bool,
    /// Without bars, a line on stderr per finished stand (output into a pipe or a file).
    pub stand_lines: bool,
    /// Stops the run part way (Ctrl-C): no step starts after it.
    pub interrupt: super::Interrupt,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            per_node: 6,
            per_storage: 4,
            wait: WaitPolicy::default(),
            attempts: 6,
            backoff: Duration::from_millis(500),
            apply_foreign_network: false,
            progress: false,
            stand_lines: false,
            interrupt: super::Interrupt::default(),
        }
    }
}

impl ApplyOptions {
    /// The backoff of a repeated operation.
    pub fn retries(&self) -> Backoff {
        Backoff { attempts: self.attempts, first: self.backoff, max: Duration::from_secs(20) }
    }
}
