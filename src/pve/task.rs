//! Task status and how long to wait for tasks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PveError;
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

/// Polls start after 250 ms and slow down to one a second: with a 2 s cap, short tasks (a
/// rollback, a start) were seen to end up to 40 % late, and a class started in waves waits
/// for each (BENCHMARKS.md, reset); long tasks cost a few more status reads.
impl Default for WaitPolicy {
    fn default() -> Self {
        Self { first: Duration::from_millis(250), max: Duration::from_secs(1), timeout: Duration::from_secs(3600) }
    }
}

impl WaitPolicy {
    /// The delay after `delay`: ×1.5, capped at `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        (delay * 3 / 2).min(self.max)
    }

    /// The one polling loop: asks `check` (right away when `now`, else after the first
    /// delay) until it answers `Some`, waiting longer each time; a transient failure is
    /// asked again, any other ends the wait; after `timeout`, [`PveError::TaskTimeout`]
    /// naming `what`.
    pub async fn poll<T, F, Fut>(&self, what: &str, now: bool, mut check: F) -> Result<T, PveError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, PveError>>,
    {
        let start = tokio::time::Instant::now();
        let mut delay = self.first;
        if !now {
            tokio::time::sleep(delay).await;
            delay = self.next(delay);
        }
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            if start.elapsed() > self.timeout {
                return Err(PveError::TaskTimeout { upid: what.to_string(), seconds: self.timeout.as_secs() });
            }
            tokio::time::sleep(delay).await;
            delay = self.next(delay);
        }
    }
}
