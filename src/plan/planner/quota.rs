//! The lab's quota per stand (`lab(#{ quota: ... })`): PVE has no pool quotas, so the
//! planner refuses the `clone` that would take a stand beyond one, naming student and limit.

use super::{PlanError, Planner, invalid};
use crate::plan::model::Quota;

/// What one stand takes so far.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Usage {
    vms: u64,
    memory_mib: u64,
    cores: u64,
}

impl Planner {
    /// Counts a VM of `userid` with `memory_mib` and `cores`, or refuses it when the stand
    /// would exceed the quota.
    pub(super) fn take_quota(&mut self, userid: &str, vm: &str, memory_mib: u64, cores: u64) -> Result<(), PlanError> {
        let used = self.stand_usage.get(userid).copied().unwrap_or_default();
        let after = Usage { vms: used.vms + 1, memory_mib: used.memory_mib + memory_mib, cores: used.cores + cores };
        if let Some(q) = &self.settings.quota {
            exceeded(q, &after).map_or(Ok(()), |(what, have, limit)| {
                Err(invalid(format!(
                    "{userid}'s stand would have {have} with '{vm}', more than the lab's quota of {limit} \
                     (lab(#{{ quota: #{{ {what}: .. }} }})): take out a clone, make VMs smaller, or raise the quota"
                )))
            })?;
        }
        self.stand_usage.insert(userid.to_string(), after);
        Ok(())
    }
}

/// The first limit `usage` is over: (quota key, what the stand has, the limit).
fn exceeded(q: &Quota, usage: &Usage) -> Option<(&'static str, String, String)> {
    if let Some(vms) = q.vms.filter(|l| usage.vms > *l) {
        return Some(("vms", format!("{} VMs", usage.vms), format!("{vms} VMs")));
    }
    let gib = usage.memory_mib as f64 / 1024.0;
    if let Some(limit) = q.memory_gib.filter(|l| gib > *l + 1e-9) {
        return Some(("memory_gib", format!("{gib:.1} GiB of memory"), format!("{limit} GiB")));
    }
    if let Some(cores) = q.cores.filter(|l| usage.cores > *l) {
        return Some(("cores", format!("{} cores", usage.cores), format!("{cores} cores")));
    }
    None
}
