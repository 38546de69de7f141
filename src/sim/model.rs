//! How long things take (the latency model) and what goes wrong (seeded faults).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Durations of PVE operations in model milliseconds (before `time_scale`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LatencyModel {
    /// One API round trip (pveproxy + pvedaemon), every request.
    pub request_ms: u64,
    /// Worker fork + config write of any task.
    pub task_overhead_ms: u64,
    /// Holding the storage allocation lock for one linked-clone volume.
    pub linked_lock_ms: u64,
    /// Holding the storage allocation lock to allocate one full-clone volume.
    pub full_alloc_ms: u64,
    /// VM start (qemu up to `running`).
    pub start_ms: u64,
    /// Hard stop.
    pub stop_ms: u64,
    /// Guest shutdown.
    pub shutdown_ms: u64,
    /// Destroy, per disk (under the storage lock).
    pub destroy_ms: u64,
    /// `ifreload -a`.
    pub network_reload_ms: u64,
    /// Snapshot / rollback.
    pub snapshot_ms: u64,
    /// How long a storage lock is waited for before `got timeout`.
    pub lock_timeout_ms: u64,
    /// From a VM's start until its guest agent answers (the guest boots).
    #[serde(default)]
    pub guest_boot_ms: u64,
    /// How long a command run through `agent/exec` takes in the guest.
    #[serde(default)]
    pub guest_exec_ms: u64,
    /// Whether copying disk data (full clones, migrations) takes the storages' bandwidth.
    #[serde(default = "copies_take_time")]
    pub copy_data: bool,
}

fn copies_take_time() -> bool {
    true
}

impl LatencyModel {
    /// Everything instant (tests of logic, `--latency none`).
    pub fn none() -> Self {
        Self {
            request_ms: 0,
            task_overhead_ms: 0,
            linked_lock_ms: 0,
            full_alloc_ms: 0,
            start_ms: 0,
            stop_ms: 0,
            shutdown_ms: 0,
            destroy_ms: 0,
            network_reload_ms: 0,
            snapshot_ms: 0,
            lock_timeout_ms: 10_000,
            guest_boot_ms: 0,
            guest_exec_ms: 0,
            copy_data: false,
        }
    }

    /// Figures of a small PVE 8 cluster with NFS and LVM-thin (see README, "Latency model").
    pub fn realistic() -> Self {
        Self {
            request_ms: 15,
            task_overhead_ms: 400,
            linked_lock_ms: 600,
            full_alloc_ms: 300,
            start_ms: 1_500,
            stop_ms: 800,
            shutdown_ms: 4_000,
            destroy_ms: 300,
            network_reload_ms: 2_500,
            snapshot_ms: 800,
            lock_timeout_ms: 10_000,
            guest_boot_ms: 20_000,
            guest_exec_ms: 300,
            copy_data: true,
        }
    }
}

/// Probabilities of injected faults, per request or per task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// A 5xx answer from a busy node (the request is not applied).
    pub http5xx: f64,
    /// The connection drops (half of them after the request was applied).
    pub reset: f64,
    /// A config/network write fails with PVE's `can't lock file ... got timeout`.
    pub lock_timeout: f64,
    /// A task ends with an error.
    pub task_fail: f64,
    /// A task takes 5–10× longer.
    pub slow_task: f64,
}

impl FaultSpec {
    /// Whether any fault is enabled.
    pub fn any(&self) -> bool {
        self.http5xx + self.reset + self.lock_timeout + self.task_fail + self.slow_task > 0.0
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    /// `http5xx=0.03,lock_timeout=0.05` (empty or `none`: no faults).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = FaultSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
            let (k, v) =
                part.split_once('=').ok_or_else(|| format!("fault '{part}' needs a probability: {part}=0.05"))?;
            let p: f64 = v.parse().map_err(|_| format!("fault '{k}': '{v}' is not a number"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("fault '{k}': probability {p} is not within 0..1"));
            }
            match k {
                "http5xx" => spec.http5xx = p,
                "reset" => spec.reset = p,
                "lock_timeout" => spec.lock_timeout = p,
                "task_fail" => spec.task_fail = p,
                "slow_task" => spec.slow_task = p,
                _ => {
                    return Err(format!(
                        "unknown fault '{k}': use http5xx, reset, lock_timeout, task_fail or slow_task"
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// Counts of what the simulator injected and served.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests answered (or failed by a fault).
    pub requests: u64,
    /// Requests that were not GET.
    pub writes: u64,
    /// GETs of a task's status or log (polls).
    pub polls: u64,
    /// Injected 5xx.
    pub http5xx: u64,
    /// Injected resets.
    pub resets: u64,
    /// Injected lock timeouts.
    pub lock_timeouts: u64,
    /// Injected task failures.
    pub task_fails: u64,
    /// Injected slow tasks.
    pub slow_tasks: u64,
    /// Storage lock timeouts that happened by contention.
    pub contention_timeouts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_spec_parses_and_rejects_nonsense() {
        let f: FaultSpec = "http5xx=0.03,lock_timeout=0.05".parse().unwrap();
        assert_eq!(f.http5xx, 0.03);
        assert_eq!(f.lock_timeout, 0.05);
        assert!("typo=0.1".parse::<FaultSpec>().unwrap_err().contains("unknown fault"));
        assert!("reset=2".parse::<FaultSpec>().is_err());
        assert!(!"none".parse::<FaultSpec>().unwrap().any());
    }
}
