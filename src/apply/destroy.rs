//! `stand down`: removes what carries the lab's marker, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::executor::ApplyOptions;
use super::pending::{foreign_pending, pending_ifaces};
use super::report::Failure;
use super::retry::transient;
use crate::plan::{Marker, Owner, Snapshot};
use crate::pve::{ApiRequest, Pve, PveError, PveExt};

/// What `down` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyReport {
    /// VMs removed.
    pub vms: usize,
    /// Bridges removed.
    pub bridges: usize,
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
}

fn gone(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("does not exist") || f.message.contains("no such"))
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
    /// Pools.
    pub pools: Vec<String>,
    /// Users.
    pub users: Vec<DoomedUser>,
    /// The lab's groups (only when the whole lab goes).
    pub groups: Vec<String>,
    /// Bridges of the lab that stay, and why.
    pub kept_bridges: Vec<KeptBridge>,
}

impl Doomed {
    /// What lab `lab` (only the students in `only`, if given) has in `snap`.
    pub fn select(snap: &Snapshot, lab: &str, only: &[String]) -> Doomed {
        let wanted = |user: Option<&str>| only.is_empty() || user.is_some_and(|u| only.iter().any(|o| o == u));
        let vms = snap
            .vms
            .iter()
            .filter(|v| v.owner().is_some_and(|o| o.has_lab(lab) && wanted(o.user())))
            .map(|v| DoomedVm {
                node: v.node.clone(),
                vmid: v.vmid,
                name: v.name.clone(),
                running: v.status == "running",
            })
            .collect::<Vec<_>>();
        let mut bridges = Vec::new();
        let mut kept_bridges = Vec::new();
        for (node, list) in &snap.bridges {
            for b in list {
                let ours = match &b.owner {
                    Some(o @ Owner::Private { .. }) => o.has_lab(lab) && wanted(o.user()),
                    Some(o @ Owner::Shared { .. }) => o.has_lab(lab) && only.is_empty(),
                    _ => false,
                };
                let Some(owner) = b.owner.as_ref().filter(|_| ours) else { continue };
                match Self::still_used(snap, lab, &vms, node, &b.iface, owner) {
                    Some(reason) => {
                        kept_bridges.push(KeptBridge { node: node.clone(), iface: b.iface.clone(), reason })
                    }
                    None => bridges.push(NodeBridge { node: node.clone(), iface: b.iface.clone() }),
                }
            }
        }
        let pools = snap
            .pools
            .iter()
            .filter(|p| p.owner.as_ref().is_some_and(|o| o.has_lab(lab) && wanted(o.user())))
            .map(|p| p.poolid.clone())
            .collect();
        let users = snap
            .users
            .iter()
            .filter_map(|u| {
                let o = u.owner.as_ref()?;
                if !o.has_lab(lab) || !wanted(Some(&u.userid)) {
                    return None;
                }
                Some(DoomedUser {
                    userid: u.userid.clone(),
                    other_labs: o.labs().into_iter().filter(|l| l != lab).collect(),
                })
            })
            .collect();
        let groups = if only.is_empty() {
            snap.groups
                .iter()
                .filter(|g| g.owner.as_ref().is_some_and(|o| o.has_lab(lab)))
                .map(|g| g.groupid.clone())
                .collect()
        } else {
            Vec::new()
        };
        Doomed { vms, bridges, pools, users, groups, kept_bridges }
    }

    /// Why a bridge of lab `lab` must stay although the lab goes: a VM that stays is wired
    /// to it (any lab's, or not stand's at all), or another lab that is still on the
    /// cluster ensured it too.
    fn still_used(
        snap: &Snapshot,
        lab: &str,
        leaving: &[DoomedVm],
        node: &str,
        iface: &str,
        owner: &Owner,
    ) -> Option<String> {
        let (wired, known) = snap.vms_on_bridge(node, iface);
        let staying: Vec<String> =
            wired.iter().filter(|id| !leaving.iter().any(|v| v.vmid == **id)).map(u32::to_string).collect();
        if !staying.is_empty() {
            return Some(format!("VM {} still wired to it", staying.join(", ")));
        }
        if !known {
            return Some(format!("not every VM config on {node} could be read"));
        }
        let others: Vec<String> = owner.labs().into_iter().filter(|l| l != lab && snap.lab_present(l)).collect();
        (!others.is_empty()).then(|| format!("lab {} uses it too", others.join(", ")))
    }

    /// What of lab `plan.lab_name()` is on the cluster but no longer in `plan` (`up --prune`).
    pub fn stale(snap: &Snapshot, plan: &crate::plan::Plan) -> Doomed {
        let mut d = Doomed::select(snap, plan.lab_name(), &[]);
        d.kept_bridges.clear();
        d.vms.retain(|d| !plan.vms.iter().any(|v| v.vmid == d.vmid));
        d.bridges.retain(|d| !plan.bridges.iter().any(|b| b.node == d.node && b.iface == d.iface));
        d.pools.retain(|p| !plan.users.iter().any(|u| u.pool == *p));
        d.users.retain(|d| !plan.users.iter().any(|p| p.userid == d.userid));
        d.groups.retain(|g| plan.group.as_ref().is_none_or(|pg| pg.groupid != *g));
        d
    }

    /// Nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
            && self.bridges.is_empty()
            && self.pools.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
    }
}

/// Removes `doomed`, objects of lab `lab` found in `snap` (see [`Doomed::select`]).
pub async fn destroy(
    pve: Arc<dyn Pve>,
    snap: &Snapshot,
    lab: &str,
    doomed: &Doomed,
    opts: &ApplyOptions,
) -> DestroyReport {
    let mut report = DestroyReport::default();
    let limits: BTreeMap<String, Arc<Semaphore>> =
        snap.nodes.iter().map(|n| (n.name.clone(), Arc::new(Semaphore::new(opts.per_node.max(1))))).collect();
    let mut set = JoinSet::new();
    for DoomedVm { node, vmid, running, .. } in doomed.vms.clone() {
        let (pve, limit, o) = (pve.clone(), limits.get(&node).cloned(), opts.clone());
        set.spawn(async move {
            let _permit = match limit {
                Some(l) => l.acquire_owned().await.ok(),
                None => None,
            };
            let r = o
                .retries()
                .run(
                    |e| transient(e) || matches!(e, PveError::Transport { .. }),
                    |_| {
                        let (pve, node) = (pve.clone(), node.clone());
                        async move {
                            let status = match pve.vm_status(&node, vmid).await {
                                Ok(s) => s,
                                Err(e) if gone(&e) => return Ok(()),
                                Err(e) => return Err(e),
                            };
                            if status.status == "running"
                                || running && status.lock.is_none() && status.status != "stopped"
                            {
                                let upid = pve.vm_power(&node, vmid, "stop").await?;
                                pve.wait_task(&upid, o.wait).await?;
                            }
                            match pve.delete_vm(&node, vmid).await {
                                Ok(upid) => pve.wait_task(&upid, o.wait).await.map(|_| ()),
                                Err(e) if gone(&e) => Ok(()),
                                Err(e) => Err(e),
                            }
                        }
                    },
                )
                .await;
            (vmid, r)
        });
    }
    let mut failed_vms = Vec::new();
    while let Some(Ok((vmid, r))) = set.join_next().await {
        match r {
            Ok(()) => report.vms += 1,
            Err(e) => {
                failed_vms.push(vmid);
                report.failures.push(Failure::new(format!("vm {vmid}"), &e, "re-run `stand down`"));
            }
        }
    }

    // A bridge stays while a VM that could not be removed is still wired to it.
    let mut by_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for b in &doomed.bridges {
        let (wired, _) = snap.vms_on_bridge(&b.node, &b.iface);
        if !wired.iter().any(|v| failed_vms.contains(v)) {
            by_node.entry(&b.node).or_default().push(&b.iface);
        }
    }
    // A `down` interrupted after deleting bridges left their removal pending: finish it.
    for (node, diff) in &snap.pending {
        let ours_removed =
            pending_ifaces(diff).iter().any(|p| !p.added && p.owner.as_ref().is_some_and(|o| o.has_lab(lab)));
        if ours_removed {
            by_node.entry(node).or_default();
        }
    }
    for (node, ours) in by_node {
        let mut failed = false;
        for iface in &ours {
            match opts.retries().run(transient, |_| pve.delete_iface(node, iface)).await {
                Ok(()) => report.bridges += 1,
                Err(e) if e.failure().is_some_and(|f| f.message.contains("does not exist")) => {}
                Err(e) => {
                    failed = true;
                    report.failures.push(Failure::new(format!("bridge {node}/{iface}"), &e, "re-run `stand down`"));
                }
            }
        }
        // Someone else's unapplied changes on the node are theirs to apply.
        let foreign = foreign_pending(snap, node, &ours);
        if !foreign.is_empty() && !opts.apply_foreign_network {
            report.failures.push(Failure::new(
                format!("network {node}"),
                format!(
                    "the bridges are removed but not applied: {node} has pending changes stand did not make ({})",
                    foreign.join(", ")
                ),
                "apply or revert them in the PVE GUI (System → Network), then re-run `stand down`",
            ));
            continue;
        }
        if !failed {
            let r = opts
                .retries()
                .run(transient, |_| async {
                    let upid = pve.apply_network(node).await?;
                    pve.wait_task(&upid, opts.wait).await
                })
                .await;
            if let Err(e) = r {
                report.failures.push(Failure::new(
                    format!("network {node}"),
                    &e,
                    "apply the node's network in the PVE GUI",
                ));
            }
        }
    }

    for poolid in &doomed.pools {
        match opts.retries().run(transient, |_| pve.delete_pool(poolid)).await {
            Ok(()) => report.pools += 1,
            Err(e) if gone(&e) => {}
            Err(e) => report.failures.push(Failure::new(
                format!("pool {poolid}"),
                &e,
                "remove what is left in the pool, then re-run `stand down`",
            )),
        }
    }

    for DoomedUser { userid, other_labs: rest } in &doomed.users {
        let r = if rest.is_empty() {
            opts.retries().run(transient, |_| pve.delete_user(userid)).await.map(|_| true)
        } else {
            let comment = Marker::new(&[("labs", &rest.join(","))]).to_string();
            let req = ApiRequest::put(format!("/access/users/{userid}")).param("comment", comment);
            let sdn: Vec<String> = snap
                .acl
                .iter()
                .filter(|a| a.ugid == *userid && a.path.starts_with("/sdn/zones/localnetwork/"))
                .filter(|a| {
                    snap.bridges.values().flatten().any(|b| {
                        a.path.ends_with(&format!("/{}", b.iface)) && b.owner.as_ref().is_some_and(|o| o.has_lab(lab))
                    })
                })
                .map(|a| a.path.clone())
                .collect();
            let pve = &pve;
            opts.retries()
                .run(transient, |_| {
                    let (req, sdn) = (req.clone(), sdn.clone());
                    async move {
                        pve.exec(req).await?;
                        for path in sdn {
                            pve.set_acl(&path, "PVESDNUser", Some(userid), None, true).await?;
                        }
                        Ok(())
                    }
                })
                .await
                .map(|_| false)
        };
        match r {
            Ok(true) => report.users += 1,
            Ok(false) => report.users_kept += 1,
            Err(e) if gone(&e) => {}
            Err(e) => report.failures.push(Failure::new(format!("user {userid}"), &e, "re-run `stand down`")),
        }
    }
    for g in &doomed.groups {
        match opts.retries().run(transient, |_| pve.delete_group(g)).await {
            Ok(()) => report.groups += 1,
            Err(e) if gone(&e) => {}
            Err(e) => report.failures.push(Failure::new(format!("group {g}"), &e, "re-run `stand down`")),
        }
    }
    report
}
