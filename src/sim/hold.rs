//! Holding requests, as turmoil holds a link: a test asks that calls to one path wait,
//! unanswered and unapplied, until it releases them. A client killed meanwhile has made
//! exactly the calls before it; nothing depends on timing.

use std::sync::Mutex;

use tokio::sync::watch;

use super::core::Sim;
use crate::pve::Method;

/// The held (method, path) pairs, each with the switch that releases it.
#[derive(Default)]
pub(super) struct Holds(Mutex<Vec<(Method, String, watch::Sender<bool>)>>);

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Method, String, watch::Sender<bool>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Requests held by [`Sim::hold`]; dropping it releases them.
pub struct Hold {
    sim: Sim,
    released: watch::Sender<bool>,
}

impl Hold {
    /// Lets the held requests (and later ones) through.
    pub fn release(self) {}
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.released.send_replace(true);
        self.sim.inner.holds.lock().retain(|(_, _, tx)| !tx.same_channel(&self.released));
    }
}

impl Sim {
    /// Holds every `method` request to `path` (below `/api2/json`) until the [`Hold`] is
    /// released or dropped.
    pub fn hold(&self, method: Method, path: &str) -> Hold {
        let (tx, _) = watch::channel(false);
        self.inner.holds.lock().push((method, path.to_string(), tx.clone()));
        Hold { sim: self.clone(), released: tx }
    }

    /// Waits while a hold covers this request.
    pub(super) async fn pass_hold(&self, method: Method, path: &str) {
        let held =
            self.inner.holds.lock().iter().find(|(m, p, _)| *m == method && p == path).map(|(_, _, tx)| tx.subscribe());
        if let Some(mut rx) = held {
            let _ = rx.wait_for(|released| *released).await;
        }
    }
}
