//! Retrying transient failures with exponential backoff and jitter.

use std::future::Future;
use std::time::Duration;

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Method, PveError};

thread_local! {
    static JITTER: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Makes the backoff jitter of this thread follow `seed`, so that a test on a paused clock
/// replays exactly (the default is the thread's random generator).
pub fn seed_jitter(seed: u64) {
    JITTER.with(|j| *j.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// A jitter factor in [0.5, 1.5).
fn jitter() -> f64 {
    JITTER.with(|j| match j.borrow_mut().as_mut() {
        Some(rng) => rng.gen_range(0.5..1.5),
        None => rand::thread_rng().gen_range(0.5..1.5),
    })
}

/// How often and how patiently to repeat a failed operation.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Delay before the second attempt; doubles up to `max`, with ±50 % jitter.
    pub first: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { attempts: 4, first: Duration::from_millis(300), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// Runs `op(attempt)` until it succeeds, fails for good (`retry_if` says no), or the
    /// attempts are used.
    pub async fn run<T, F, Fut>(&self, retry_if: impl Fn(&PveError) -> bool, mut op: F) -> Result<T, PveError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, PveError>>,
    {
        let mut delay = self.first;
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.attempts && retry_if(&e) => {
                    tracing::info!(attempt, error = %e, "retrying");
                    tokio::time::sleep(delay.mul_f64(jitter())).await;
                    delay = (delay * 2).min(self.max);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a failed call may be repeated: reads when transient; writes only when they
/// certainly did not happen.
pub fn retryable(method: Method, e: &PveError) -> bool {
    if method.is_read() { e.is_transient() } else { e.write_not_applied() }
}
