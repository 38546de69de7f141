//! Task status and how long to wait for tasks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::numish;

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The UPID.
    pub upid: String,
    /// Node.
    pub node: String,
    /// `running` or `stopped`.
    pub status: String,
    /// `OK`, `WARNINGS: n` or the error text; only when stopped.
    #[serde(default)]
    pub exitstatus: Option<String>,
    /// Worker type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Object id.
    #[serde(default)]
    pub id: String,
    /// User (without token id).
    pub user: String,
    /// Token id when started by a token.
    #[serde(default)]
    pub tokenid: Option<String>,
    /// Process id.
    #[serde(default, deserialize_with = "numish")]
    pub pid: u64,
    /// Start, Unix seconds.
    #[serde(default, deserialize_with = "numish")]
    pub starttime: u64,
}

impl TaskStatus {
    /// The task has ended.
    pub fn is_stopped(&self) -> bool {
        self.status == "stopped"
    }

    /// Ended successfully (`OK` or only warnings).
    pub fn is_ok(&self) -> bool {
        self.exitstatus.as_deref().is_some_and(|s| s == "OK" || s.starts_with("WARNINGS"))
    }
}

/// How to poll a task: exponential backoff from `first` to `max`, giving up after `timeout`.
#[derive(Clone, Copy, Debug)]
pub struct WaitPolicy {
    /// First poll delay.
    pub first: Duration,
    /// Longest delay between polls.
    pub max: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self { first: Duration::from_millis(250), max: Duration::from_secs(2), timeout: Duration::from_secs(3600) }
    }
}

impl WaitPolicy {
    /// The delay after `delay`: ×1.5, capped at `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        (delay * 3 / 2).min(self.max)
    }
}
