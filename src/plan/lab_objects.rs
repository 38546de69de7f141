//! Which of a lab's objects on the cluster an operation is about, chosen by marker: all of
//! them (`down`), some students' (`down --only`), or those the plan no longer has (the
//! deletions `plan` lists and `up --prune` removes). The one answer the diff and the removal
//! graph share; whether an object may really go (a VM still wired to a bridge) is the
//! removal's own question.

use serde::Serialize;

use super::model::Plan;
use super::owner::Owner;
use super::snapshot::Snapshot;

/// A lab's objects on the cluster, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LabObjects {
    /// VMIDs.
    pub vms: Vec<u32>,
    /// Bridges, as (node, interface): students' private ones and shared ones the lab ensured.
    pub bridges: Vec<(String, String)>,
    /// SDN VNets.
    pub vnets: Vec<String>,
    /// Pools.
    pub pools: Vec<String>,
    /// Users (`name@realm`).
    pub users: Vec<String>,
    /// The lab's groups (only when the whole lab is chosen).
    pub groups: Vec<String>,
}

impl LabObjects {
    /// What carries lab `lab`'s marker in `snap`: every student's, or only those in `only`
    /// (then no shared bridge and no group: the lab stays).
    pub fn owned(snap: &Snapshot, lab: &str, only: &[String]) -> LabObjects {
        let wanted = |user: Option<&str>| only.is_empty() || user.is_some_and(|u| only.iter().any(|o| o == u));
        let ours = |owner: Option<&Owner>| owner.is_some_and(|o| o.has_lab(lab) && wanted(o.user()));
        let vms = snap.vms.iter().filter(|v| ours(v.owner())).map(|v| v.vmid).collect();
        let bridges = snap
            .bridges
            .iter()
            .flat_map(|(node, list)| list.iter().map(move |b| (node, b)))
            .filter(|(_, b)| match &b.owner {
                Some(o @ Owner::Private { .. }) => o.has_lab(lab) && wanted(o.user()),
                Some(o @ Owner::Shared { .. }) => o.has_lab(lab) && only.is_empty(),
                _ => false,
            })
            .map(|(node, b)| (node.clone(), b.iface.clone()))
            .collect();
        let vnets = snap.vnets.iter().filter(|v| ours(v.owner.as_ref())).map(|v| v.vnet.clone()).collect();
        let pools = snap.pools.iter().filter(|p| ours(p.owner.as_ref())).map(|p| p.poolid.clone()).collect();
        let users = snap
            .users
            .iter()
            .filter(|u| u.owner.as_ref().is_some_and(|o| o.has_lab(lab)) && wanted(Some(&u.userid)))
            .map(|u| u.userid.clone())
            .collect();
        let groups = match only.is_empty() {
            true => snap
                .groups
                .iter()
                .filter(|g| g.owner.as_ref().is_some_and(|o| o.has_lab(lab)))
                .map(|g| g.groupid.clone())
                .collect(),
            false => Vec::new(),
        };
        LabObjects { vms, bridges, vnets, pools, users, groups }
    }

    /// What of `plan`'s lab is on the cluster but no longer in `plan`.
    pub fn stale(snap: &Snapshot, plan: &Plan) -> LabObjects {
        let mut o = Self::owned(snap, plan.lab_name(), &[]);
        o.vms.retain(|id| !plan.vms.iter().any(|v| v.vmid == *id));
        o.bridges.retain(|(node, iface)| !plan.bridges.iter().any(|b| b.node == *node && b.iface == *iface));
        let planned: Vec<&str> = plan.sdn.iter().flat_map(|s| s.vnets.iter().map(|v| v.vnet.as_str())).collect();
        o.vnets.retain(|v| !planned.contains(&v.as_str()));
        o.pools.retain(|p| !plan.users.iter().any(|u| u.pool == *p));
        o.users.retain(|id| !plan.users.iter().any(|u| u.userid == *id));
        o.groups.retain(|g| plan.group.as_ref().is_none_or(|pg| pg.groupid != *g));
        o
    }

    /// Nothing chosen.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
            && self.bridges.is_empty()
            && self.vnets.is_empty()
            && self.pools.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
    }
}
