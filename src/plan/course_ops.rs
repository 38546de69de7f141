//! Course operations a script asks for (`reset(user)`, `power(user, "off")`,
//! `snapshot(user, "name")`, `uplinks(user, "off")`): recorded in the plan, and turned into
//! actions on the student's VMs that run after the VMs' own deployment, in script order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionGraph, PowerOp, VmRef};
use super::course::{cut_nics, power_step, private_bridge, rollback_keeping_cuts, uplink_nics};
use super::model::Plan;
use super::snapshot::Snapshot;

/// One operation on a student's stand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CourseOp {
    /// Every VM back to snapshot `to`, running again if it ran.
    Reset {
        /// The student.
        user: String,
        /// The snapshot.
        to: String,
    },
    /// Every VM powered on, off, down or rebooted.
    Power {
        /// The student.
        user: String,
        /// What to do.
        power: PowerOp,
    },
    /// Snapshot `name` of every VM.
    Snapshot {
        /// The student.
        user: String,
        /// The snapshot.
        name: String,
    },
    /// Uplinks cut (`on: false`) or restored.
    Uplinks {
        /// The student.
        user: String,
        /// Restore (true) or cut.
        on: bool,
    },
}

impl CourseOp {
    /// The student it concerns.
    pub fn user(&self) -> &str {
        match self {
            CourseOp::Reset { user, .. }
            | CourseOp::Power { user, .. }
            | CourseOp::Snapshot { user, .. }
            | CourseOp::Uplinks { user, .. } => user,
        }
    }
}

/// A VM of a stand as it will be when the deployment's own steps are done.
#[derive(Clone, Debug)]
pub struct StandVm {
    /// The VM.
    pub vm: VmRef,
    /// Running then.
    pub running: bool,
    /// NICs on shared bridges with their link up then.
    pub uplinks: Vec<String>,
    /// NICs an earlier `uplinks off` cut.
    pub cut: Vec<String>,
}

/// The VMs of `user` in the lab after `plan` is applied: the plan's, then those on the
/// cluster the plan does not name (a REPL session about a deployed stand).
pub fn stand_vms(plan: &Plan, snap: &Snapshot, user: &str) -> Vec<StandVm> {
    let lab = plan.lab_name();
    let private = |node: &str, iface: &str| {
        plan.bridges.iter().any(|b| b.node == node && b.iface == iface && b.owner.is_some())
            || private_bridge(snap, node, iface)
    };
    let mut out: BTreeMap<u32, StandVm> = BTreeMap::new();
    for v in plan.vms.iter().filter(|v| v.user == user) {
        let existing = snap.vms.iter().find(|s| s.vmid == v.vmid && v.exists);
        let nets = v.nets.iter().enumerate().filter_map(|(i, n)| Some((i as u32, n.as_ref()?.parse().ok()?)));
        let uplinks = uplink_nics(nets, |b| private(&v.node, b));
        out.insert(
            v.vmid,
            StandVm {
                vm: VmRef { node: v.node.clone(), vmid: v.vmid, name: v.name.clone() },
                running: v.start || existing.is_some_and(|s| s.status == "running"),
                uplinks,
                cut: existing.map(cut_nics).unwrap_or_default(),
            },
        );
    }
    for s in snap.vms.iter().filter(|s| s.owner().is_some_and(|o| o.is_stand_of(lab, user))) {
        out.entry(s.vmid).or_insert_with(|| StandVm {
            vm: VmRef { node: s.node.clone(), vmid: s.vmid, name: s.name.clone() },
            running: s.status == "running",
            uplinks: uplink_nics(s.nets(), |b| private(&s.node, b)),
            cut: cut_nics(s),
        });
    }
    out.into_values().collect()
}

/// The actions of `op` on `vms`, each VM's as it stands after the ones before; `vms` are
/// updated to what each action leaves.
pub fn actions(op: &CourseOp, vms: &mut [StandVm]) -> Vec<(u32, Action)> {
    let mut out = Vec::new();
    for v in vms.iter_mut() {
        let vm = v.vm.clone();
        let action = match op {
            CourseOp::Reset { to, .. } => {
                // As `stand reset`: cut uplinks stay cut (see course::rollback_keeping_cuts).
                let mut g = ActionGraph::default();
                rollback_keeping_cuts(&mut g, vm, to, v.running, v.cut.clone());
                out.extend(g.steps().iter().map(|s| (v.vm.vmid, s.action.clone())));
                continue;
            }
            CourseOp::Snapshot { name, .. } => Some(Action::SnapshotVm {
                vm,
                name: name.clone(),
                description: "stand: snapshot from the lab script".into(),
            }),
            CourseOp::Power { power, .. } => {
                let step = power_step(*power, v.running);
                if let Some(p) = step {
                    v.running = !matches!(p, PowerOp::Stop | PowerOp::Shutdown { .. });
                }
                step.map(|op| Action::PowerVm { vm, op })
            }
            CourseOp::Uplinks { on: false, .. } if !v.uplinks.is_empty() => {
                let nics = std::mem::take(&mut v.uplinks);
                v.cut.extend(nics.iter().cloned());
                Some(Action::CutUplinks { vm, nics })
            }
            CourseOp::Uplinks { on: true, .. } if !v.cut.is_empty() => {
                let nics = std::mem::take(&mut v.cut);
                v.uplinks.extend(nics.iter().cloned());
                Some(Action::RestoreUplinks { vm, nics })
            }
            CourseOp::Uplinks { .. } => None,
        };
        out.extend(action.map(|a| (v.vm.vmid, a)));
    }
    out
}
