//! The plan against the cluster: what is created, kept, updated, or (with `--prune`)
//! deleted because it carries this lab's marker but is no longer wanted.

use serde::Serialize;

use super::lab_objects::LabObjects;
use super::model::Plan;
use super::snapshot::Snapshot;

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Made by this run.
    Create,
    /// Already as wanted.
    Keep,
    /// Exists, some settings change.
    Update,
    /// Ours, no longer in the plan (removed only with `--prune`).
    Delete,
}

/// One object's change.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// What happens.
    pub kind: ChangeKind,
    /// `user`, `pool`, `acl`, `bridge`, `vm`.
    pub object: &'static str,
    /// Its id (`s1@pve`, `pve1/vmbr1000`, `1000 web-s1`).
    pub id: String,
    /// Details (`node pve2`, `net1, memory`).
    pub detail: String,
}

/// All changes of a plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    /// In plan order: users, pools, ACLs, bridges, SDN zone and VNets, VMs, then deletions.
    pub changes: Vec<Change>,
}

impl Diff {
    /// Compares `plan` with the cluster.
    pub fn compute(plan: &Plan, snap: &Snapshot) -> Diff {
        let mut changes = Vec::new();
        let mut push = |kind, object, id: String, detail: String| changes.push(Change { kind, object, id, detail });
        let lab = plan.lab_name().to_string();
        if let Some(g) = &plan.group {
            let kind = match (g.exists, g.comment_update) {
                (false, _) => ChangeKind::Create,
                (true, true) => ChangeKind::Update,
                (true, false) => ChangeKind::Keep,
            };
            let detail = match plan.lab.as_ref().and_then(|l| l.expires.as_deref()) {
                Some(day) => format!("the students; last day {day}"),
                None => "the students".into(),
            };
            push(kind, "group", g.groupid.clone(), detail);
            if let Some((teacher, bridges)) = &g.teacher_bridges {
                for b in bridges {
                    let id = format!("/sdn/zones/localnetwork/{b} {teacher}");
                    push(ChangeKind::Create, "acl", id, "PVESDNUser: the teacher cuts uplinks".into());
                }
            }
        }
        for u in &plan.users {
            let kind = if !u.exists {
                ChangeKind::Create
            } else if u.comment_update || u.new_password || u.expire_update || u.name_update {
                ChangeKind::Update
            } else {
                ChangeKind::Keep
            };
            let detail = match (u.exists, u.ours) {
                (true, false) => "exists, not made by stand: left as it is".to_string(),
                _ if u.new_password => "new password".to_string(),
                _ if u.expire_update => "account expiry changes".to_string(),
                _ if u.name_update => "name from the roster".to_string(),
                _ => String::new(),
            };
            // Whose account it is, as the roster names them.
            let detail = match (&u.full_name, detail.is_empty()) {
                (Some(n), true) => n.display(),
                (Some(n), false) => format!("{}; {detail}", n.display()),
                (None, _) => detail,
            };
            push(kind, "user", u.userid.clone(), detail);
            push(
                if u.pool_exists { ChangeKind::Keep } else { ChangeKind::Create },
                "pool",
                u.pool.clone(),
                u.node.clone().map(|n| format!("node {n}")).unwrap_or_default(),
            );
            push(
                if u.acl_exists { ChangeKind::Keep } else { ChangeKind::Create },
                "acl",
                format!("/pool/{} {}", u.pool, u.userid),
                "PVEVMAdmin".into(),
            );
            if let Some(t) = &u.teacher_acl {
                push(ChangeKind::Create, "acl", format!("/pool/{} {t}", u.pool), "teacher".into());
            }
            for b in &u.sdn_acls {
                push(
                    ChangeKind::Create,
                    "acl",
                    format!("/sdn/zones/localnetwork/{b} {}", u.userid),
                    "PVESDNUser".into(),
                );
            }
        }
        for b in &plan.bridges {
            let detail = match (&b.owner, &b.alias) {
                (Some(o), Some(a)) => format!("{a} of {o}{}", if b.vlan_aware { ", VLAN aware" } else { "" }),
                _ if b.comment_update => "shared: this lab joins the labs that use it".into(),
                _ => "shared".into(),
            };
            push(
                match (b.exists, b.comment_update) {
                    (false, _) => ChangeKind::Create,
                    (true, true) => ChangeKind::Update,
                    (true, false) => ChangeKind::Keep,
                },
                "bridge",
                format!("{}/{}", b.node, b.iface),
                detail,
            );
        }
        if let Some(sdn) = &plan.sdn {
            if !sdn.zone_exists {
                push(ChangeKind::Create, "zone", sdn.zone.clone(), "VXLAN, the nodes' addresses as peers".into());
            }
            for v in &sdn.vnets {
                let kind = if v.exists { ChangeKind::Keep } else { ChangeKind::Create };
                push(kind, "vnet", v.vnet.clone(), format!("{} of {}, VNI {}", v.alias, v.owner, v.tag));
                let kind = if v.acl_exists { ChangeKind::Keep } else { ChangeKind::Create };
                push(kind, "acl", format!("/sdn/zones/{}/{} {}", sdn.zone, v.vnet, v.owner), "PVESDNUser".into());
            }
        }
        for v in &plan.vms {
            let (kind, detail) = if !v.exists {
                (
                    ChangeKind::Create,
                    format!("{} clone of {} on {}", if v.full { "full" } else { "linked" }, v.template, v.node),
                )
            } else if !v.update.is_empty() || v.needs_start || v.baseline.is_some() {
                let mut what = v.update.clone();
                if let Some(name) = &v.baseline {
                    what.push(format!("missing snapshot '{name}' taken"));
                }
                if v.needs_start {
                    what.push("start".into());
                }
                (ChangeKind::Update, what.join(", "))
            } else {
                (ChangeKind::Keep, format!("on {}", v.node))
            };
            push(kind, "vm", format!("{} {}", v.vmid, v.name), detail);
        }
        // What the lab has that the plan no longer has: removed by `up --prune`.
        let stale = LabObjects::stale(snap, plan);
        for vm in snap.vms.iter().filter(|v| stale.vms.contains(&v.vmid)) {
            push(ChangeKind::Delete, "vm", format!("{} {}", vm.vmid, vm.name), format!("on {}", vm.node));
        }
        for (node, iface) in &stale.bridges {
            push(ChangeKind::Delete, "bridge", format!("{node}/{iface}"), String::new());
        }
        for v in snap.vnets.iter().filter(|v| stale.vnets.contains(&v.vnet)) {
            push(ChangeKind::Delete, "vnet", v.vnet.clone(), format!("zone {}", v.zone));
        }
        for p in &stale.pools {
            push(ChangeKind::Delete, "pool", p.clone(), String::new());
        }
        for u in snap.users.iter().filter(|u| stale.users.contains(&u.userid)) {
            let others: Vec<String> = u.owner.iter().flat_map(|o| o.labs()).filter(|l| *l != lab).collect();
            let detail = match others.is_empty() {
                true => String::new(),
                false => format!("lab {} keeps the account: only this lab's mark goes", others.join(", ")),
            };
            push(ChangeKind::Delete, "user", u.userid.clone(), detail);
        }
        for g in &stale.groups {
            push(ChangeKind::Delete, "group", g.clone(), String::new());
        }
        Diff { changes }
    }

    /// How many changes of a kind.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }

    /// Whether applying changes nothing (deletions need `--prune`).
    pub fn is_empty(&self) -> bool {
        self.changes.iter().all(|c| c.kind == ChangeKind::Keep || c.kind == ChangeKind::Delete)
    }
}
