//! `stand down` and `up --prune`: what carries the lab's marker and goes (and what stays),
//! as an action graph for the runner.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::options::ApplyOptions;
use super::pending::{foreign_pending, pending_ifaces};
use super::report::Failure;
use crate::plan::{Action, ActionGraph, LabObjects, Marker, Owner, Snapshot};
use crate::pve::Pve;

/// What `down` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyReport {
    /// VMs removed.
    pub vms: usize,
    /// Bridges removed.
    pub bridges: usize,
    /// SDN VNets removed.
    pub vnets: usize,
    /// Pools removed.
    pub pools: usize,
    /// Users removed.
    pub users: usize,
    /// Groups removed.
    pub groups: usize,
    /// Users kept because another lab still uses them.
    pub users_kept: usize,
    /// Failures.
    pub failures: Vec<Failure>,
    /// Steps that did not start because the run was interrupted (Ctrl-C).
    pub interrupted: usize,
}

/// A VM `down` removes.
#[derive(Clone, Debug, Serialize)]
pub struct DoomedVm {
    /// Node.
    pub node: String,
    /// VMID.
    pub vmid: u32,
    /// Name.
    pub name: String,
    /// Running when the cluster was read (stopped first).
    pub running: bool,
}

/// A bridge on a node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeBridge {
    /// Node.
    pub node: String,
    /// Interface.
    pub iface: String,
}

/// A bridge of the lab that stays, and why.
#[derive(Clone, Debug, Serialize)]
pub struct KeptBridge {
    /// Node.
    pub node: String,
    /// Interface.
    pub iface: String,
    /// Why it stays (a VM still wired to it, another lab).
    pub reason: String,
}

/// An SDN VNet of the lab (`network: "vxlan"`).
#[derive(Clone, Debug, Serialize)]
pub struct DoomedVnet {
    /// VNet id.
    pub vnet: String,
    /// Its zone.
    pub zone: String,
    /// Pending state (`new`, `changed`, `deleted`), when not applied.
    pub state: Option<String>,
}

/// A VNet of the lab that stays, and why.
#[derive(Clone, Debug, Serialize)]
pub struct KeptVnet {
    /// VNet id.
    pub vnet: String,
    /// Its zone.
    pub zone: String,
    /// Why it stays (a VM still wired to it).
    pub reason: String,
}

/// A user of the lab.
#[derive(Clone, Debug, Serialize)]
pub struct DoomedUser {
    /// `name@realm`.
    pub userid: String,
    /// Other labs that still have the user: kept (only unmarked from this lab) when any.
    pub other_labs: Vec<String>,
}

/// What `down` removes, found by marker in a snapshot.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Doomed {
    /// VMs.
    pub vms: Vec<DoomedVm>,
    /// Bridges.
    pub bridges: Vec<NodeBridge>,
    /// SDN VNets.
    pub vnets: Vec<DoomedVnet>,
    /// Pools.
    pub pools: Vec<String>,
    /// Users.
    pub users: Vec<DoomedUser>,
    /// The lab's groups (only when the whole lab goes).
    pub groups: Vec<String>,
    /// Bridges of the lab that stay, and why.
    pub kept_bridges: Vec<KeptBridge>,
    /// VNets of the lab that stay, and why.
    pub kept_vnets: Vec<KeptVnet>,
}

impl Doomed {
    /// What lab `lab` (only the students in `only`, if given) has in `snap`.
    pub fn select(snap: &Snapshot, lab: &str, only: &[String]) -> Doomed {
        Self::of(snap, lab, &LabObjects::owned(snap, lab, only), None)
    }

    /// What of lab `plan.lab_name()` is on the cluster but no longer in `plan` (`up --prune`).
    pub fn stale(snap: &Snapshot, plan: &crate::plan::Plan) -> Doomed {
        Self::of(snap, plan.lab_name(), &LabObjects::stale(snap, plan), Some(plan))
    }

    /// The removal of `objects` of lab `lab`: each VM with its state; a bridge or VNet that a
    /// VM staying behind is wired to (or that another lab still uses) stays, with why; a user
    /// that other labs still have is only released. With `plan` (`up --prune`, which runs
    /// after `up`), the plan's VMs count as wired as the plan wires them.
    fn of(snap: &Snapshot, lab: &str, objects: &LabObjects, plan: Option<&crate::plan::Plan>) -> Doomed {
        let vms = snap
            .vms
            .iter()
            .filter(|v| objects.vms.contains(&v.vmid))
            .map(|v| DoomedVm {
                node: v.node.clone(),
                vmid: v.vmid,
                name: v.name.clone(),
                running: v.status == "running",
            })
            .collect::<Vec<_>>();
        let mut bridges = Vec::new();
        let mut kept_bridges = Vec::new();
        for (node, iface) in &objects.bridges {
            let owner = snap.bridges.get(node).and_then(|l| l.iter().find(|b| b.iface == *iface)?.owner.as_ref());
            let Some(owner) = owner else { continue };
            let (staying, known) = Self::staying_on(snap, plan, &vms, node, iface);
            match Self::still_used(snap, lab, &staying, known, node, owner) {
                Some(reason) => kept_bridges.push(KeptBridge { node: node.clone(), iface: iface.clone(), reason }),
                None => bridges.push(NodeBridge { node: node.clone(), iface: iface.clone() }),
            }
        }
        let mut vnets = Vec::new();
        let mut kept_vnets = Vec::new();
        for v in snap.vnets.iter().filter(|v| objects.vnets.contains(&v.vnet)) {
            // A VNet is a bridge of every node of its zone: a VM anywhere may be wired to it.
            let mut staying = Vec::new();
            for node in snap.bridges.keys() {
                staying.extend(Self::staying_on(snap, plan, &vms, node, &v.vnet).0);
            }
            match staying.is_empty() {
                true => vnets.push(DoomedVnet { vnet: v.vnet.clone(), zone: v.zone.clone(), state: v.state.clone() }),
                false => {
                    let ids: Vec<String> = staying.iter().map(u32::to_string).collect();
                    let reason = format!("VM {} still wired to it", ids.join(", "));
                    kept_vnets.push(KeptVnet { vnet: v.vnet.clone(), zone: v.zone.clone(), reason });
                }
            }
        }
        let users = snap
            .users
            .iter()
            .filter(|u| objects.users.contains(&u.userid))
            .map(|u| DoomedUser {
                userid: u.userid.clone(),
                other_labs: u.owner.iter().flat_map(|o| o.labs()).filter(|l| l != lab).collect(),
            })
            .collect();
        Doomed {
            vms,
            bridges,
            vnets,
            pools: objects.pools.clone(),
            users,
            groups: objects.groups.clone(),
            kept_bridges,
            kept_vnets,
        }
    }

    /// Why a bridge of lab `lab` must stay although the lab goes: a VM that stays is wired
    /// to it (any lab's, or not stand's at all), or another lab that is still on the
    /// cluster ensured it too.
    fn still_used(
        snap: &Snapshot,
        lab: &str,
        staying: &[u32],
        known: bool,
        node: &str,
        owner: &Owner,
    ) -> Option<String> {
        if !staying.is_empty() {
            let ids: Vec<String> = staying.iter().map(u32::to_string).collect();
            return Some(format!("VM {} still wired to it", ids.join(", ")));
        }
        if !known {
            return Some(format!("not every VM config on {node} could be read"));
        }
        let others: Vec<String> = owner.labs().into_iter().filter(|l| l != lab && snap.lab_present(l)).collect();
        (!others.is_empty()).then(|| format!("lab {} uses it too", others.join(", ")))
    }

    /// The VMs on `node` that stay wired to bridge `iface`: those wired to it now that do not
    /// leave, but a VM of `plan` is wired as the plan wires it; and whether every VM config on
    /// the node was read.
    fn staying_on(
        snap: &Snapshot,
        plan: Option<&crate::plan::Plan>,
        leaving: &[DoomedVm],
        node: &str,
        iface: &str,
    ) -> (Vec<u32>, bool) {
        let planned = |id: u32| plan.and_then(|p| p.vms.iter().find(|v| v.vmid == id));
        let wires = |v: &crate::plan::VmPlan| {
            v.node == node
                && v.nets
                    .iter()
                    .flatten()
                    .any(|n| n.parse::<crate::pve::NetDevice>().is_ok_and(|d| d.bridge.as_deref() == Some(iface)))
        };
        let (wired, known) = snap.vms_on_bridge(node, iface);
        let mut staying: Vec<u32> = wired
            .into_iter()
            .filter(|id| !leaving.iter().any(|v| v.vmid == *id))
            .filter(|id| planned(*id).is_none_or(wires))
            .collect();
        for v in plan.iter().flat_map(|p| &p.vms).filter(|v| wires(v)) {
            if !staying.contains(&v.vmid) {
                staying.push(v.vmid);
            }
        }
        (staying, known)
    }

    /// The actions that remove it: VMs first (each stopped, then deleted); a bridge after
    /// the VMs wired to it (a VM that stays keeps it); one network reload per node after its
    /// bridges (and for a removal an interrupted `down` left staged); a pool after its VMs;
    /// users and the group.
    pub fn actions(&self, snap: &Snapshot, lab: &str) -> ActionGraph {
        let mut g = ActionGraph::default();
        let mut vm_steps: BTreeMap<u32, usize> = BTreeMap::new();
        for vm in &self.vms {
            let a =
                Action::DestroyVm { node: vm.node.clone(), vmid: vm.vmid, name: vm.name.clone(), running: vm.running };
            vm_steps.insert(vm.vmid, g.add(a, Vec::new()));
        }
        let mut per_node: BTreeMap<&str, (Vec<usize>, Vec<&str>)> = BTreeMap::new();
        for b in &self.bridges {
            let (wired, _) = snap.vms_on_bridge(&b.node, &b.iface);
            let after = wired.iter().filter_map(|v| vm_steps.get(v).copied()).collect();
            let id = g.add(Action::DeleteBridge { node: b.node.clone(), iface: b.iface.clone() }, after);
            let entry = per_node.entry(&b.node).or_default();
            entry.0.push(id);
            entry.1.push(&b.iface);
        }
        // A `down` interrupted after staging removals left them pending: apply them too.
        for (node, diff) in &snap.pending {
            let ours_removed =
                pending_ifaces(diff).iter().any(|p| !p.added && p.owner.as_ref().is_some_and(|o| o.has_lab(lab)));
            if ours_removed {
                per_node.entry(node).or_default();
            }
        }
        for (node, (bridges, ifaces)) in per_node {
            let foreign = foreign_pending(snap, node, &ifaces);
            g.add_following(Action::ReloadNetwork { node: node.to_string(), foreign }, Vec::new(), bridges);
        }
        // The VNets go after the VMs, and one SDN apply makes it so (also when an
        // interrupted `down` left their removal pending).
        let every_vm: Vec<usize> = vm_steps.values().copied().collect();
        let deletes: Vec<usize> = self
            .vnets
            .iter()
            .filter(|v| v.state.as_deref() != Some("deleted"))
            .map(|v| g.add(Action::DeleteVnet { vnet: v.vnet.clone() }, every_vm.clone()))
            .collect();
        if !deletes.is_empty() || self.vnets.iter().any(|v| v.state.is_some()) {
            let zones: Vec<&str> = self.vnets.iter().map(|v| v.zone.as_str()).collect();
            let foreign = snap.foreign_sdn_pending(&zones);
            g.add_following(Action::ApplySdn { foreign }, Vec::new(), deletes);
        }
        let lab_vnets: Vec<&crate::plan::VnetSnap> =
            snap.vnets.iter().filter(|v| v.owner.as_ref().is_some_and(|o| o.has_lab(lab))).collect();
        for poolid in &self.pools {
            let members = snap
                .vms
                .iter()
                .filter(|v| v.pool.as_deref() == Some(poolid.as_str()))
                .filter_map(|v| vm_steps.get(&v.vmid).copied())
                .collect();
            g.add(Action::DeletePool { poolid: poolid.clone() }, members);
        }
        for u in &self.users {
            if u.other_labs.is_empty() {
                g.add(Action::DeleteUser { userid: u.userid.clone() }, Vec::new());
                continue;
            }
            // The SDN grants of this lab's bridges go; the user and the other labs' stay.
            let sdn_acls = snap
                .acl
                .iter()
                .filter(|a| a.ugid == u.userid && a.path.starts_with("/sdn/zones/"))
                .filter(|a| {
                    let local = a.path.starts_with("/sdn/zones/localnetwork/")
                        && snap.bridges.values().flatten().any(|b| {
                            a.path.ends_with(&format!("/{}", b.iface))
                                && b.owner.as_ref().is_some_and(|o| o.has_lab(lab))
                        });
                    local || lab_vnets.iter().any(|v| a.path == format!("/sdn/zones/{}/{}", v.zone, v.vnet))
                })
                .map(|a| a.path.clone())
                .collect();
            let comment = Marker::new(&[("labs", &u.other_labs.join(","))]).to_string();
            // The account now lasts as long as the last of the labs it keeps.
            let dates: Vec<Option<String>> = u.other_labs.iter().map(|l| snap.lab_expires(l)).collect();
            let expire = crate::plan::expiry::account_expire_of(dates.iter().map(Option::as_deref));
            g.add(Action::ReleaseUser { userid: u.userid.clone(), comment, expire, sdn_acls }, Vec::new());
        }
        for groupid in &self.groups {
            g.add(Action::DeleteGroup { groupid: groupid.clone() }, Vec::new());
        }
        g
    }

    /// Nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
            && self.bridges.is_empty()
            && self.vnets.is_empty()
            && self.pools.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
    }
}

/// Removes `doomed`, objects of lab `lab` found in `snap` (see [`Doomed::select`]), by
/// running [`Doomed::actions`].
pub async fn destroy(
    pve: Arc<dyn Pve>,
    snap: &Snapshot,
    lab: &str,
    doomed: &Doomed,
    opts: &ApplyOptions,
) -> DestroyReport {
    destroy_actions(pve, &doomed.actions(snap, lab), opts).await
}

/// Runs removal actions (from [`Doomed::actions`]) and counts what they removed.
pub async fn destroy_actions(pve: Arc<dyn Pve>, graph: &ActionGraph, opts: &ApplyOptions) -> DestroyReport {
    let run = super::runner::run(pve, graph, opts).await;
    DestroyReport {
        vms: run.done(graph, |a| matches!(a, Action::DestroyVm { .. })),
        bridges: run.done(graph, |a| matches!(a, Action::DeleteBridge { .. })),
        vnets: run.done(graph, |a| matches!(a, Action::DeleteVnet { .. })),
        pools: run.done(graph, |a| matches!(a, Action::DeletePool { .. })),
        users: run.done(graph, |a| matches!(a, Action::DeleteUser { .. })),
        groups: run.done(graph, |a| matches!(a, Action::DeleteGroup { .. })),
        users_kept: run.done(graph, |a| matches!(a, Action::ReleaseUser { .. })),
        failures: run.failures(),
        interrupted: run.interrupted(),
    }
}
