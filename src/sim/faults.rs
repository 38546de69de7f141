//! Injected faults, drawn from the simulator's seed so that a run can be replayed.
//!
//! Each draw is keyed by the request it concerns (method, path, parameters) and how many
//! times that same request was seen, not by the order requests arrive in: requests that race
//! each other on a multi-threaded runtime get the same faults whatever order they come in,
//! so the same `--sim-seed` with the same `--sim-faults` gives the same outcome twice.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::context::Ctx;
use super::core::{Sim, lock};
use crate::pve::{ApiFailure, Method, Params};

/// What a transport-level fault does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportFault {
    /// Answer 5xx without applying.
    Busy(u16),
    /// Drop the connection before applying.
    ResetBefore,
    /// Apply, then drop the connection.
    ResetAfter,
}

/// Seeded draws keyed by what they decide.
pub(super) struct Dice {
    seed: u64,
    seen: Mutex<HashMap<[u8; 32], u32>>,
}

impl Dice {
    pub(super) fn new(seed: u64) -> Self {
        Dice { seed, seen: Mutex::new(HashMap::new()) }
    }

    /// A generator for the `n`-th draw of `what` about `key`.
    pub(super) fn roll(&self, what: &str, key: &str) -> StdRng {
        let id: [u8; 32] = Sha256::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(what)
            .chain_update([0])
            .chain_update(key)
            .finalize()
            .into();
        let n = {
            let mut seen = lock(&self.seen);
            let n = seen.entry(id).or_insert(0);
            *n += 1;
            *n
        };
        let draw: [u8; 32] = Sha256::new().chain_update(id).chain_update(n.to_le_bytes()).finalize().into();
        StdRng::from_seed(draw)
    }
}

/// The key of a request: what it asks, whoever asks it and whenever.
pub(super) fn request_key(method: Method, path: &str, params: &Params) -> String {
    let mut key = format!("{method} {path}");
    for (k, v) in params {
        key.push_str(&format!(" {k}={v}"));
    }
    key
}

impl Sim {
    /// Rolls the transport faults for one request.
    pub fn roll_transport_fault(&self, method: Method, path: &str, params: &Params) -> Option<TransportFault> {
        let f = self.faults();
        if f.http5xx == 0.0 && f.reset == 0.0 {
            return None;
        }
        let mut rng = self.inner.dice.roll("transport", &request_key(method, path, params));
        let mut stats = lock(&self.inner.stats);
        if f.http5xx > 0.0 && rng.gen_bool(f.http5xx) {
            stats.http5xx += 1;
            return Some(TransportFault::Busy([500, 502, 503, 596][rng.gen_range(0..4)]));
        }
        if f.reset > 0.0 && rng.gen_bool(f.reset) {
            stats.resets += 1;
            return Some(if rng.gen_bool(0.5) { TransportFault::ResetAfter } else { TransportFault::ResetBefore });
        }
        None
    }
}

impl Ctx<'_> {
    /// Rolls the faults of the task this request starts: `(fails, slow factor)`.
    pub fn roll_task_faults(&mut self) -> (bool, u64) {
        let f = &self.faults;
        if f.task_fail == 0.0 && f.slow_task == 0.0 {
            return (false, 1);
        }
        let mut rng = self.dice.roll("task", &self.key);
        let fail = f.task_fail > 0.0 && rng.gen_bool(f.task_fail);
        let slow = f.slow_task > 0.0 && rng.gen_bool(f.slow_task);
        if fail {
            self.stats.task_fails += 1;
        }
        if slow {
            self.stats.slow_tasks += 1;
        }
        (fail, if slow { rng.gen_range(5..=10) } else { 1 })
    }
}

/// A write that finds its config or network lock taken for too long, as PVE's
/// `lock_file` reports it (`can't lock file '...' - got timeout`).
pub(super) fn inject_lock_timeout(ctx: &mut Ctx<'_>, template: &str) -> Result<(), ApiFailure> {
    let p = ctx.faults.lock_timeout;
    if p == 0.0 || !ctx.dice.roll("lock", &ctx.key).gen_bool(p) {
        return Ok(());
    }
    let file = if template.starts_with("/nodes/{node}/qemu/{vmid}") {
        format!("/var/lock/qemu-server/lock-{}.conf", ctx.var("vmid"))
    } else if template.starts_with("/nodes/{node}/network") {
        "/etc/network/.pve-interfaces.lock".to_string()
    } else {
        return Ok(());
    };
    ctx.stats.lock_timeouts += 1;
    Err(ApiFailure::internal(format!("can't lock file '{file}' - got timeout")))
}
