//! What the deploy actions of one `up` share: the client, timing, the lab's settings, and
//! what happened at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::apply::options::ApplyOptions;
use crate::apply::report::ApplyReport;
use crate::apply::retry::{already_exists, repeatable};
use crate::plan::Snapshot;
use crate::pve::{Pve, PveError};

/// What the deploy actions share during one `up`: the client, timing, the lab's
/// settings, and what happened at run time (bridges made under another name, VMIDs taken
/// meanwhile, VMs cloned by this run, whether the group exists).
pub(super) struct Ctx {
    pub(super) pve: Arc<dyn Pve>,
    pub(super) opts: ApplyOptions,
    pub(super) lab: String,
    pub(super) vmid_hi: u32,
    /// Counts, renamed bridges and re-planned VMIDs (failures come from the runner).
    pub(super) report: Mutex<ApplyReport>,
    /// Bridges found taken by someone else and made under another name: (node, planned) → made.
    pub(super) renamed: Mutex<BTreeMap<(String, String), String>>,
    /// Planned VMID → the VMID it was cloned under.
    pub(super) vmids: Mutex<BTreeMap<u32, u32>>,
    /// Planned VMIDs cloned by this run (their config is written whole, their state known).
    pub(super) fresh: Mutex<BTreeSet<u32>>,
    /// The lab's group exists (made now or before).
    pub(super) group_ok: AtomicBool,
    /// Per node, the bridges the plan names (a taken name is replaced by one outside them).
    pub(super) planned_bridges: BTreeMap<String, Vec<String>>,
    pub(super) bridge_base: u32,
    pub(super) storage_limits: Mutex<BTreeMap<String, Arc<Semaphore>>>,
    pub(super) snap: Arc<Snapshot>,
}

impl Ctx {
    pub(super) fn count(&self, f: impl FnOnce(&mut ApplyReport)) {
        f(&mut lock(&self.report));
    }

    pub(super) fn storage_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut m = lock(&self.storage_limits);
        m.entry(key.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.opts.per_storage.max(1)))).clone()
    }

    /// The VMID a planned VM was cloned under.
    pub(super) fn vmid(&self, planned: u32) -> u32 {
        lock(&self.vmids).get(&planned).copied().unwrap_or(planned)
    }

    pub(super) fn is_fresh(&self, planned: u32) -> bool {
        lock(&self.fresh).contains(&planned)
    }

    /// Creates something once: a repeat of a create whose answer was lost finds it made
    /// ("already exists"), which counts as done.
    pub(super) async fn create<F, Fut>(&self, op: F) -> Result<(), PveError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), PveError>>,
    {
        self.retry(repeatable, |attempt| {
            let made = op();
            async move {
                match made.await {
                    Err(e) if attempt > 1 && already_exists(&e) => Ok(()),
                    other => other,
                }
            }
        })
        .await
    }

    pub(super) async fn retry<T, F, Fut>(&self, retry_if: impl Fn(&PveError) -> bool, op: F) -> Result<T, PveError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, PveError>>,
    {
        self.opts.retries().run(retry_if, op).await
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
