//! `up`'s action graph from a plan.

use std::collections::BTreeMap;

use crate::apply::pending::foreign_pending;
use crate::plan::course_ops::{self, StandVm, stand_vms};
use crate::plan::{Action, ActionGraph, BridgePlan, LabSettings, Marker, Plan, Snapshot, VmRef};
use crate::pve::Secret;

/// The actions that deploy `plan` (made against `snap`): the group, then each student's
/// user (joining the group if it was made), pool and ACLs; per node the bridges, one
/// network reload, then each private bridge's `SDN.Use` for its owner; per VM clone (after
/// its pool), configure (after the clone and, for NICs, the node's network) and start.
pub fn deploy_graph(plan: &Plan, snap: &Snapshot, apply_foreign_network: bool) -> ActionGraph {
    let mut g = ActionGraph::default();
    let lab = plan.lab.clone().unwrap_or_else(|| LabSettings::new(plan.lab_name()));
    let group = plan.group.as_ref();
    let group_step = group
        .filter(|gp| !gp.exists)
        .map(|gp| g.add(Action::CreateGroup { groupid: gp.groupid.clone(), comment: gp.comment.clone() }, Vec::new()));
    if let Some(gp) = group.filter(|gp| gp.exists && gp.comment_update) {
        g.add(Action::MarkGroup { groupid: gp.groupid.clone(), comment: gp.comment.clone() }, Vec::new());
    }
    // The teacher may cut and restore the stands' uplinks from `stand serve`.
    if let Some((teacher, bridges)) = group.and_then(|gp| gp.teacher_bridges.as_ref()) {
        for b in bridges {
            let path = format!("/sdn/zones/localnetwork/{b}");
            g.add(Action::SetAcl { path, role: "PVESDNUser".into(), ugid: teacher.clone() }, Vec::new());
        }
    }
    let waits_group: Vec<usize> = group_step.into_iter().collect();
    let mut user_steps: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pool_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &plan.users {
        let password = u.password.clone().map(Secret::new);
        let user_step = if !u.exists {
            let a = Action::CreateUser {
                userid: u.userid.clone(),
                comment: u.comment.clone(),
                group: group.map(|gp| gp.groupid.clone()),
                expire: u.expire,
                name: u.full_name.clone(),
                password,
            };
            Some(g.add_edges(a, Vec::new(), Vec::new(), waits_group.clone()))
        } else if u.comment_update
            || u.expire_update
            || u.name_update
            || (group.is_some() && !u.in_group)
            || password.is_some()
        {
            let a = Action::UpdateUser {
                userid: u.userid.clone(),
                comment: u.comment_update.then(|| u.comment.clone()),
                join_group: group.filter(|_| !u.in_group).map(|gp| gp.groupid.clone()),
                expire: u.expire_update.then_some(u.expire),
                name: u.full_name.clone().filter(|_| u.name_update),
                password,
            };
            Some(g.add_edges(a, Vec::new(), Vec::new(), waits_group.clone()))
        } else {
            None
        };
        let pool_step = (!u.pool_exists).then(|| {
            let comment = Marker::new(&[("lab", &lab.name), ("user", &u.userid)]).to_string();
            g.add(Action::CreatePool { poolid: u.pool.clone(), comment }, Vec::new())
        });
        if let Some(s) = user_step {
            user_steps.insert(&u.userid, s);
        }
        if let Some(s) = pool_step {
            pool_steps.insert(&u.pool, s);
        }
        let path = format!("/pool/{}", u.pool);
        if !u.acl_exists {
            let after = user_step.into_iter().chain(pool_step).collect();
            g.add(Action::SetAcl { path: path.clone(), role: lab.role.clone(), ugid: u.userid.clone() }, after);
        }
        if let Some(t) = &u.teacher_acl {
            g.add(Action::SetAcl { path, role: lab.role.clone(), ugid: t.clone() }, pool_step.into_iter().collect());
        }
    }
    let mut nodes: Vec<&str> =
        plan.bridges.iter().map(|b| b.node.as_str()).chain(plan.vms.iter().map(|v| v.node.as_str())).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut network_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for node in nodes {
        let bridges: Vec<&BridgePlan> = plan.bridges.iter().filter(|b| b.node == node).collect();
        let planned: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
        let foreign = foreign_pending(snap, node, &planned);
        let ours_pending = snap.pending.contains_key(node) && foreign.is_empty();
        let changes: Vec<&&BridgePlan> = bridges.iter().filter(|b| !b.exists || b.comment_update).collect();
        let reload = if changes.is_empty() && !ours_pending {
            None
        } else if !foreign.is_empty() && !apply_foreign_network {
            // Nothing is staged over someone else's pending changes: the reload says why.
            Some(g.add(Action::ReloadNetwork { node: node.to_string(), foreign }, Vec::new()))
        } else {
            let staged = changes
                .iter()
                .map(|b| {
                    let a = if b.exists {
                        Action::MarkBridge {
                            node: node.to_string(),
                            iface: b.iface.clone(),
                            comment: b.comment.clone(),
                        }
                    } else {
                        Action::CreateBridge {
                            node: node.to_string(),
                            iface: b.iface.clone(),
                            vlan_aware: b.vlan_aware,
                            comment: b.comment.clone(),
                        }
                    };
                    g.add(a, Vec::new())
                })
                .collect();
            Some(g.add(Action::ReloadNetwork { node: node.to_string(), foreign }, staged))
        };
        if let Some(r) = reload {
            network_steps.insert(node, r);
        }
        for b in bridges {
            let Some(owner) = &b.owner else { continue };
            let wanted = plan.users.iter().any(|u| u.userid == *owner && u.sdn_acls.contains(&b.iface));
            if wanted {
                let after = reload.into_iter().chain(user_steps.get(owner.as_str()).copied()).collect();
                let a = Action::GrantBridge { node: node.to_string(), iface: b.iface.clone(), user: owner.clone() };
                g.add(a, after);
            }
        }
    }
    // SDN: the zone, the VNets, one apply for the run, then each VNet's `SDN.Use` for its
    // owner; VMs wired to VNets wait for the apply.
    let sdn_step = plan.sdn.as_ref().and_then(|sdn| {
        let zone = (!sdn.zone_exists).then(|| g.add(Action::CreateZone { zone: sdn.zone.clone() }, Vec::new()));
        let made: Vec<usize> = sdn
            .vnets
            .iter()
            .filter(|v| !v.exists)
            .map(|v| {
                let a = Action::CreateVnet {
                    zone: sdn.zone.clone(),
                    vnet: v.vnet.clone(),
                    tag: v.tag,
                    vlan_aware: v.vlan_aware,
                    marker: v.marker.clone(),
                };
                g.add(a, zone.into_iter().collect())
            })
            .collect();
        let apply = (zone.is_some() || !made.is_empty() || sdn.pending_ours)
            .then(|| g.add(Action::ApplySdn { foreign: sdn.foreign.clone() }, zone.into_iter().chain(made).collect()));
        for v in sdn.vnets.iter().filter(|v| !v.acl_exists) {
            let path = format!("/sdn/zones/{}/{}", sdn.zone, v.vnet);
            let after = apply.into_iter().chain(user_steps.get(v.owner.as_str()).copied()).collect();
            g.add(Action::SetAcl { path, role: "PVESDNUser".into(), ugid: v.owner.clone() }, after);
        }
        apply
    });
    // Each VM's last deployment step: a course operation on it comes after.
    let mut last: BTreeMap<u32, usize> = BTreeMap::new();
    for vm in &plan.vms {
        let boxed = || Box::new(vm.clone());
        let clone =
            g.add(Action::CloneVm { vm: boxed() }, pool_steps.get(vm.pool.as_str()).copied().into_iter().collect());
        // NICs name bridges: they wait for the node's network (and any renamed bridge).
        let wired = vm.nets.iter().flatten().next().is_some();
        let network = network_steps.get(vm.node.as_str()).copied().filter(|_| wired);
        let network: Vec<usize> = network.into_iter().chain(sdn_step.filter(|_| wired)).collect();
        let only = vm.exists.then(|| vm.update.clone());
        let configure =
            g.add(Action::ConfigureVm { vm: boxed(), only }, std::iter::once(clone).chain(network.clone()).collect());
        // The baseline comes before the first start; a start does not wait for it to
        // succeed (the student gets the VM, the report names the missing snapshot).
        let baseline = match &vm.baseline {
            Some(name) => {
                let vm_ref = VmRef { node: vm.node.clone(), vmid: vm.vmid, name: vm.name.clone() };
                let description = format!("stand: the stand as deployed (lab {})", plan.lab_name());
                Some(g.add(Action::SnapshotVm { vm: vm_ref, name: name.clone(), description }, vec![configure]))
            }
            _ => None,
        };
        let start = vm.start.then(|| {
            let network = network_steps.get(vm.node.as_str()).copied().into_iter().chain(sdn_step);
            let after = std::iter::once(configure).chain(network).collect();
            g.add_edges(Action::StartVm { vm: boxed() }, after, Vec::new(), baseline.into_iter().collect())
        });
        last.insert(vm.vmid, start.or(baseline).unwrap_or(configure));
    }
    // The script's course operations, in its order, each VM's after its previous step.
    for (vmid, action) in course_actions(plan, snap) {
        let step = g.add(action, last.get(&vmid).copied().into_iter().collect());
        last.insert(vmid, step);
    }
    g
}

/// The actions of the script's course operations (`reset`, `power`, ...), in its order,
/// each with its VM.
pub fn course_actions(plan: &Plan, snap: &Snapshot) -> Vec<(u32, Action)> {
    let mut stands: BTreeMap<&str, Vec<StandVm>> = BTreeMap::new();
    let mut out = Vec::new();
    for op in &plan.course {
        let vms = stands.entry(op.user()).or_insert_with(|| stand_vms(plan, snap, op.user()));
        out.extend(course_ops::actions(op, vms));
    }
    out
}
