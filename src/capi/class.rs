//! A lab's students as the export needs them: whose they are, their pool and nodes, and
//! their networks by alias. From a plan (`LAB.rhai`), or from what a deployed lab has on the
//! cluster (its markers, with the `capi` settings `up` recorded in the lab group's marker).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::CapiSettings;
use crate::plan::{Owner, Plan, Snapshot};

/// One student.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Student {
    /// `name@realm`.
    pub userid: String,
    /// Their pool.
    pub pool: String,
    /// Their stand's node.
    pub node: Option<String>,
    /// The nodes of their VMs.
    pub nodes: BTreeSet<String>,
    /// Their networks: alias, bridge or VNet, and whether it is a VNet.
    pub networks: Vec<(String, String, bool)>,
    /// The lowest VMID of their stand: students are taken in the order their stands were
    /// made, so a student added later never moves another's addresses.
    pub first_vmid: Option<u32>,
}

/// A lab's class.
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    /// The lab.
    pub lab: String,
    /// `lab(#{ capi })`.
    pub settings: Option<CapiSettings>,
    /// The lab's VXLAN zone, when its networks are VNets.
    pub zone: Option<String>,
    /// Students, in the order their stands were made (lowest VMID), then the plan's.
    pub students: Vec<Student>,
    /// Shared bridges the lab ensures, as (node, interface).
    pub shared: Vec<(String, String)>,
}

impl Class {
    /// The class `plan` makes.
    pub fn of_plan(plan: &Plan) -> Class {
        let vnets = plan.sdn.iter().flat_map(|s| &s.vnets);
        let students = plan
            .users
            .iter()
            .map(|u| Student {
                userid: u.userid.clone(),
                pool: u.pool.clone(),
                node: u.node.clone(),
                nodes: plan.vms.iter().filter(|v| v.user == u.userid).map(|v| v.node.clone()).collect(),
                first_vmid: plan.vms.iter().filter(|v| v.user == u.userid).map(|v| v.vmid).min(),
                networks: plan
                    .bridges
                    .iter()
                    .filter(|b| b.owner.as_deref() == Some(&u.userid))
                    .filter_map(|b| Some((b.alias.clone()?, b.iface.clone(), false)))
                    .chain(
                        vnets.clone().filter(|v| v.owner == u.userid).map(|v| (v.alias.clone(), v.vnet.clone(), true)),
                    )
                    .collect(),
            })
            .collect();
        Class {
            lab: plan.lab_name().to_string(),
            settings: plan.lab.as_ref().and_then(|l| l.capi.clone()),
            zone: plan.sdn.as_ref().map(|s| s.zone.clone()),
            students: in_order_made(students),
            shared: plan
                .bridges
                .iter()
                .filter(|b| b.owner.is_none())
                .map(|b| (b.node.clone(), b.iface.clone()))
                .collect(),
        }
    }

    /// The class of lab `lab` as deployed on the cluster; `None` when nothing of it is there.
    pub fn deployed(snap: &Snapshot, lab: &str) -> Option<Class> {
        let students = snap.students(lab);
        if students.is_empty() {
            return None;
        }
        let private = |user: &str| {
            let bridges = snap.bridges.iter().flat_map(|(node, bs)| bs.iter().map(move |b| (node, b)));
            let mut nets: Vec<(String, String, bool)> = bridges
                .filter_map(|(_, b)| match &b.owner {
                    Some(Owner::Private { lab: l, user: u, alias }) if l == lab && u == user => {
                        Some((alias.clone(), b.iface.clone(), false))
                    }
                    _ => None,
                })
                .chain(snap.vnets.iter().filter_map(|v| match &v.owner {
                    Some(Owner::Private { lab: l, user: u, alias }) if l == lab && u == user => {
                        Some((alias.clone(), v.vnet.clone(), true))
                    }
                    _ => None,
                }))
                .collect();
            nets.sort();
            nets.dedup();
            nets
        };
        let students = students
            .into_iter()
            .map(|user| {
                let vms: Vec<&crate::plan::VmSnap> =
                    snap.lab_vms(lab).filter(|v| v.owner().and_then(Owner::user) == Some(user.as_str())).collect();
                let pool = snap
                    .pools
                    .iter()
                    .find(|p| p.owner.as_ref().is_some_and(|o| o.is_stand_of(lab, &user)))
                    .map(|p| p.poolid.clone())
                    .or_else(|| vms.iter().find_map(|v| v.pool.clone()))
                    .unwrap_or_default();
                Student {
                    pool,
                    node: vms.first().map(|v| v.node.clone()),
                    nodes: vms.iter().map(|v| v.node.clone()).collect(),
                    networks: private(&user),
                    first_vmid: vms.iter().map(|v| v.vmid).min(),
                    userid: user,
                }
            })
            .collect();
        let students = in_order_made(students);
        let zone = snap
            .vnets
            .iter()
            .find(|v| matches!(&v.owner, Some(Owner::Private { lab: l, .. }) if l == lab))
            .map(|v| v.zone.clone());
        Some(Class {
            lab: lab.to_string(),
            settings: snap.lab_setting(lab, "capi").and_then(|s| decode(&s)),
            zone,
            students,
            shared: Vec::new(),
        })
    }
}

/// Students by the lowest VMID of their stand (a stable sort: those without VMs keep their
/// order, last).
fn in_order_made(mut students: Vec<Student>) -> Vec<Student> {
    students.sort_by_key(|s| s.first_vmid.unwrap_or(u32::MAX));
    students
}

/// The settings as a marker field (`capi=<base64url of JSON>`: no spaces, any length).
pub fn encode(settings: &CapiSettings) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(settings).unwrap_or_default())
}

/// The settings back from a marker field.
pub fn decode(field: &str) -> Option<CapiSettings> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(field).ok()?).ok()
}
