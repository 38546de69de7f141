//! The operations of a running course as action graphs, built from the snapshot without
//! I/O: which VMs a command means (a lab, some of its students, some VMs by name) and what
//! to do with each. `stand reset`, `power` and `snapshot` run these graphs.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{Action, ActionGraph, PowerOp, VmRef};
use super::marker::Marker;
use super::owner::Owner;
use super::snapshot::{Snapshot, VmSnap};
use crate::pve::NetDevice;

/// The snapshots each VM has, by VMID (read at the I/O edge).
pub type SnapshotLists = BTreeMap<u32, Vec<String>>;

/// Which VMs of a lab a command means.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The lab.
    pub lab: &'a str,
    /// Only these students (all when empty).
    pub only: &'a [String],
    /// Only VMs of these names: the script's (`gw`) or the cluster's (`gw-ivanov`); all
    /// when empty.
    pub vms: &'a [String],
}

impl Scope<'_> {
    /// The lab's VMs in scope, in VMID order. Other labs' VMs, and VMs of no lab, are never
    /// among them.
    pub fn select<'s>(&self, snap: &'s Snapshot) -> Vec<&'s VmSnap> {
        let mut out: Vec<&VmSnap> = snap
            .lab_vms(self.lab)
            .filter(|v| match v.owner() {
                Some(Owner::Vm { user, name, .. }) => {
                    (self.only.is_empty() || self.only.contains(user))
                        && (self.vms.is_empty() || self.vms.iter().any(|n| n == name || *n == v.name))
                }
                _ => false,
            })
            .collect();
        out.sort_by_key(|v| v.vmid);
        out
    }

    /// The names `--vm` may use: every VM name of the lab, as the script and the cluster
    /// call it (for did-you-mean).
    pub fn vm_names(snap: &Snapshot, lab: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for v in snap.lab_vms(lab) {
            if let Some(Owner::Vm { name, .. }) = v.owner() {
                names.insert(name.clone());
            }
            names.insert(v.name.clone());
        }
        names
    }
}

/// The students whose VMs are among `vms`.
pub fn stands(vms: &[&VmSnap]) -> BTreeSet<String> {
    vms.iter()
        .filter_map(|v| match v.owner() {
            Some(Owner::Vm { user, .. }) => Some(user.clone()),
            _ => None,
        })
        .collect()
}

fn vm_ref(v: &VmSnap) -> VmRef {
    VmRef { node: v.node.clone(), vmid: v.vmid, name: v.name.clone() }
}

fn running(v: &VmSnap) -> bool {
    v.status == "running"
}

/// Reset: each VM back to snapshot `to`, started again when it ran (PVE stops a running VM
/// before it rolls back, and starts it in the same task). VMs without `to` are returned
/// instead: nothing is reset then.
pub fn reset<'s>(vms: &[&'s VmSnap], to: &str, lists: &SnapshotLists) -> Result<ActionGraph, Vec<&'s VmSnap>> {
    let missing: Vec<&VmSnap> =
        vms.iter().copied().filter(|v| !lists.get(&v.vmid).is_some_and(|l| l.iter().any(|s| s == to))).collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut g = ActionGraph::default();
    for v in vms {
        rollback_keeping_cuts(&mut g, vm_ref(v), to, running(v), cut_nics(v));
    }
    Ok(g)
}

/// A rollback that keeps an exam's cut uplinks cut: the snapshot's config has them
/// connected, so a VM with cut NICs is rolled back stopped, cut again, then started.
/// Returns the VM's last step.
pub(crate) fn rollback_keeping_cuts(g: &mut ActionGraph, vm: VmRef, to: &str, start: bool, cut: Vec<String>) -> usize {
    if cut.is_empty() {
        return g.add(Action::RollbackVm { vm, name: to.to_string(), start }, vec![]);
    }
    let rollback = g.add(Action::RollbackVm { vm: vm.clone(), name: to.to_string(), start: false }, vec![]);
    let recut = g.add(Action::CutUplinks { vm: vm.clone(), nics: cut }, vec![rollback]);
    match start {
        true => g.add(Action::PowerVm { vm, op: PowerOp::Start }, vec![recut]),
        false => recut,
    }
}

/// Power: `start` the stopped VMs, `stop` or `shutdown` the running ones, `reboot` the
/// running ones and start the stopped ones. A VM already as asked has no step.
pub fn power(vms: &[&VmSnap], op: PowerOp) -> ActionGraph {
    let mut g = ActionGraph::default();
    for v in vms {
        if let Some(op) = power_step(op, running(v)) {
            g.add(Action::PowerVm { vm: vm_ref(v), op }, vec![]);
        }
    }
    g
}

/// Snapshot `name` of each VM that does not have it yet.
pub fn snapshot(vms: &[&VmSnap], name: &str, description: &str, lists: &SnapshotLists) -> ActionGraph {
    let mut g = ActionGraph::default();
    for v in vms {
        if !lists.get(&v.vmid).is_some_and(|l| l.iter().any(|s| s == name)) {
            let (name, description) = (name.to_string(), description.to_string());
            g.add(Action::SnapshotVm { vm: vm_ref(v), name, description }, vec![]);
        }
    }
    g
}

/// Delete snapshot `name` of each VM that has it.
pub fn delete_snapshot(vms: &[&VmSnap], name: &str, lists: &SnapshotLists) -> ActionGraph {
    let mut g = ActionGraph::default();
    for v in vms {
        if lists.get(&v.vmid).is_some_and(|l| l.iter().any(|s| s == name)) {
            g.add(Action::DeleteSnapshot { vm: vm_ref(v), name: name.to_string() }, vec![]);
        }
    }
    g
}

/// The NICs `stand uplinks off` cut on a VM, as its marker names them (`cut=net0,net2`).
pub fn cut_nics(v: &VmSnap) -> Vec<String> {
    v.config
        .as_ref()
        .and_then(|c| c.get("description"))
        .and_then(|d| Marker::parse(&d))
        .map(|m| m.list("cut"))
        .unwrap_or_default()
}

/// Whether bridge `iface` of `node` is a student's private bridge on the cluster; every
/// other bridge (`vmbr0`, one from `ensure_bridge`, one `stand` does not know) leads out
/// of the stand.
pub(crate) fn private_bridge(snap: &Snapshot, node: &str, iface: &str) -> bool {
    snap.bridges
        .get(node)
        .is_some_and(|bs| bs.iter().any(|b| b.iface == iface && matches!(b.owner, Some(Owner::Private { .. }))))
}

/// The uplinks among `nets`: connected NICs on a bridge that is not `private`. NICs
/// already down are not the exam's to restore, so they are left out.
pub(crate) fn uplink_nics(
    nets: impl IntoIterator<Item = (u32, NetDevice)>,
    private: impl Fn(&str) -> bool,
) -> Vec<String> {
    nets.into_iter()
        .filter(|(_, d)| !d.link_down && d.bridge.as_deref().is_some_and(|b| !private(b)))
        .map(|(i, _)| format!("net{i}"))
        .collect()
}

/// What `op` does to a VM that runs or not: `start` a stopped one, `stop` or `shutdown` a
/// running one, `reboot` a running one and start a stopped one; `None` when it is as asked.
pub(crate) fn power_step(op: PowerOp, running: bool) -> Option<PowerOp> {
    match (op, running) {
        (PowerOp::Start | PowerOp::Reboot, false) => Some(PowerOp::Start),
        (PowerOp::Stop | PowerOp::Shutdown { .. } | PowerOp::Reboot, true) => Some(op),
        _ => None,
    }
}

/// Uplinks off: each VM's uplinks ([`uplink_nics`]) get `link_down=1`.
pub fn uplinks_off(vms: &[&VmSnap], snap: &Snapshot) -> ActionGraph {
    let mut g = ActionGraph::default();
    for v in vms {
        let nics = uplink_nics(v.nets(), |b| private_bridge(snap, &v.node, b));
        if !nics.is_empty() {
            g.add(Action::CutUplinks { vm: vm_ref(v), nics }, vec![]);
        }
    }
    g
}

/// Uplinks on: exactly the NICs each VM's marker names as cut.
pub fn uplinks_on(vms: &[&VmSnap]) -> ActionGraph {
    let mut g = ActionGraph::default();
    for v in vms {
        let nics = cut_nics(v);
        if !nics.is_empty() {
            g.add(Action::RestoreUplinks { vm: vm_ref(v), nics }, vec![]);
        }
    }
    g
}

/// Whether `name` can name a snapshot (pve-common `pve-configid`, qemu-server: a letter,
/// then letters, digits, `-` or `_`; at most 40; `current` and `pending` are PVE's own).
pub fn valid_snapshot_name(name: &str) -> Result<(), String> {
    let ok = name.len() >= 2
        && name.len() <= 40
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(format!(
            "snapshot name '{name}' is not allowed: a letter, then letters, digits, '-' or '_' (2 to 40 characters)"
        ));
    }
    if matches!(name.to_ascii_lowercase().as_str(), "current" | "pending" | "vzdump") {
        return Err(format!("snapshot name '{name}' is reserved by Proxmox VE"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::VmConfig;

    fn vm(vmid: u32, lab: &str, user: &str, name: &str, status: &str) -> VmSnap {
        vm_with(vmid, lab, user, name, status, "", &[])
    }

    fn vm_with(vmid: u32, lab: &str, user: &str, name: &str, status: &str, extra: &str, nets: &[&str]) -> VmSnap {
        let mut v = VmSnap {
            vmid,
            node: "pve1".into(),
            name: format!("{name}-{}", user.split('@').next().unwrap_or_default()),
            maxmem: 1 << 30,
            status: status.into(),
            ..VmSnap::default()
        };
        let mut config =
            serde_json::json!({ "description": format!("stand: lab={lab} name={name} user={user}{extra}") });
        for (i, n) in nets.iter().enumerate() {
            config[format!("net{i}")] = serde_json::json!(n);
        }
        v.set_config(VmConfig(serde_json::from_value(config).unwrap()));
        v
    }

    fn cluster() -> Snapshot {
        Snapshot {
            vms: vec![
                vm(3000, "lab3", "ivanov@pve", "gw", "running"),
                vm(3001, "lab3", "ivanov@pve", "web", "stopped"),
                vm(3002, "lab3", "petrova@pve", "gw", "running"),
                vm(4000, "lab4", "ivanov@pve", "gw", "running"),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn scope_picks_students_and_vm_names_of_one_lab_only() {
        let snap = cluster();
        let ids = |s: Scope| s.select(&snap).iter().map(|v| v.vmid).collect::<Vec<_>>();
        assert_eq!(ids(Scope { lab: "lab3", only: &[], vms: &[] }), [3000, 3001, 3002]);
        assert_eq!(ids(Scope { lab: "lab3", only: &["ivanov@pve".into()], vms: &[] }), [3000, 3001]);
        assert_eq!(ids(Scope { lab: "lab3", only: &[], vms: &["gw".into()] }), [3000, 3002]);
        assert_eq!(ids(Scope { lab: "lab3", only: &[], vms: &["web-ivanov".into()] }), [3001]);
    }

    #[test]
    fn reset_starts_again_only_what_ran_and_refuses_vms_without_the_snapshot() {
        let snap = cluster();
        let vms = Scope { lab: "lab3", only: &[], vms: &[] }.select(&snap);
        let mut lists: SnapshotLists = [3000, 3001, 3002].iter().map(|id| (*id, vec!["start".to_string()])).collect();
        let g = reset(&vms, "start", &lists).unwrap();
        let starts: Vec<bool> = g
            .steps()
            .iter()
            .map(|s| match &s.action {
                Action::RollbackVm { start, .. } => *start,
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(starts, [true, false, true]);
        lists.remove(&3001);
        let missing = reset(&vms, "start", &lists).unwrap_err();
        assert_eq!(missing.iter().map(|v| v.vmid).collect::<Vec<_>>(), [3001]);
    }

    #[test]
    fn a_reset_during_an_exam_cuts_the_uplinks_again_before_the_vm_starts() {
        let mut snap = cluster();
        snap.vms = vec![vm_with(3000, "lab3", "ivanov@pve", "gw", "running", " cut=net0", &["virtio,bridge=vmbr0"])];
        let vms = Scope { lab: "lab3", only: &[], vms: &[] }.select(&snap);
        let lists: SnapshotLists = [(3000, vec!["start".to_string()])].into_iter().collect();
        let g = reset(&vms, "start", &lists).unwrap();
        let lines: Vec<String> = g.steps().iter().map(|s| s.action.to_string()).collect();
        assert_eq!(
            lines,
            [
                "~ reset  3000 gw-ivanov: back to start",
                "~ uplink 3000 gw-ivanov: cut net0",
                "~ power  3000 gw-ivanov: start"
            ]
        );
        assert_eq!((g.steps()[1].after.clone(), g.steps()[2].after.clone()), (vec![0], vec![1]));
    }

    #[test]
    fn power_only_touches_vms_not_already_as_asked() {
        let snap = cluster();
        let vms = Scope { lab: "lab3", only: &[], vms: &[] }.select(&snap);
        assert_eq!(power(&vms, PowerOp::Start).steps().len(), 1);
        assert_eq!(power(&vms, PowerOp::Shutdown { timeout: 60 }).steps().len(), 2);
        let reboot = power(&vms, PowerOp::Reboot);
        assert!(
            matches!(&reboot.steps()[1].action, Action::PowerVm { op: PowerOp::Start, vm } if vm.vmid == 3001),
            "a stopped VM is started, not rebooted"
        );
    }

    #[test]
    fn uplinks_off_cuts_connected_nics_on_shared_bridges_and_on_restores_only_the_cut_ones() {
        let mut snap = cluster();
        let private = crate::plan::BridgeSnap {
            iface: "vmbr1000".into(),
            active: true,
            vlan_aware: false,
            comments: None,
            owner: Some(Owner::Private { lab: "lab3".into(), user: "ivanov@pve".into(), alias: "lan".into() }),
        };
        snap.bridges.insert("pve1".into(), vec![private]);
        let nets =
            ["virtio=AA:00:00:00:00:01,bridge=vmbr0", "virtio,bridge=vmbr1000", "virtio,bridge=inet,link_down=1"];
        snap.vms = vec![vm_with(3000, "lab3", "ivanov@pve", "gw", "running", "", &nets)];
        let vms = Scope { lab: "lab3", only: &[], vms: &[] }.select(&snap);
        let off = uplinks_off(&vms, &snap);
        assert!(
            matches!(&off.steps()[0].action, Action::CutUplinks { nics, .. } if nics == &["net0"]),
            "only the connected NIC on a shared bridge is cut: {off:?}"
        );
        assert!(uplinks_on(&vms).is_empty(), "nothing was cut yet");
        snap.vms = vec![vm_with(3000, "lab3", "ivanov@pve", "gw", "running", " cut=net0", &nets)];
        let vms = Scope { lab: "lab3", only: &[], vms: &[] }.select(&snap);
        assert!(
            matches!(&uplinks_on(&vms).steps()[0].action, Action::RestoreUplinks { nics, .. } if nics == &["net0"])
        );
    }

    #[test]
    fn snapshot_names_follow_pve() {
        assert!(valid_snapshot_name("start").is_ok());
        assert!(valid_snapshot_name("before-ospf_2").is_ok());
        assert!(valid_snapshot_name("1st").is_err());
        assert!(valid_snapshot_name("a").is_err());
        assert!(valid_snapshot_name("до-экзамена").is_err());
        assert!(valid_snapshot_name(&"a".repeat(41)).is_err());
        assert!(valid_snapshot_name("current").unwrap_err().contains("reserved"));
    }
}
