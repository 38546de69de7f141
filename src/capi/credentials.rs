//! The API token CAPMOX works with: one per lab, privilege-separated, with what CAPMOX's
//! least-privilege setup lists (docs/advanced-setups.md of
//! ionos-cloud/cluster-api-provider-proxmox, "Proxmox RBAC with least privileges"), limited
//! to the lab: `Sys.Audit` on `/` and the nodes, `PVEVMAdmin` on each student's pool,
//! `PVETemplateUser` on the templates, `Datastore.AllocateSpace` on the disks' storages,
//! `PVEDatastoreAdmin` on the storage of its cloud-init ISOs and `SDN.Use` on the students'
//! networks. Built-in roles only (`PVEAuditor` for `Sys.Audit`, `PVEDatastoreUser` for
//! `Datastore.AllocateSpace`), so nothing is added to the cluster's roles.

use std::collections::BTreeSet;

use super::Class;
use super::manifests::StudentCluster;
use super::settings::CapiSettings;
use crate::plan::Snapshot;

/// One ACL entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// ACL path.
    pub path: String,
    /// Role.
    pub role: &'static str,
    /// Whether it reaches below the path.
    pub propagate: bool,
}

/// The user, token and ACL entries of a lab's CAPMOX credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPlan {
    /// `capmox-<lab>@pve`.
    pub userid: String,
    /// `capi`.
    pub tokenid: String,
    /// What the user and its token get (both: a privilege-separated token has what both have).
    pub grants: Vec<Grant>,
    /// The Secret's name (`<lab>-capmox`).
    pub secret: String,
}

impl TokenPlan {
    /// `user@realm!token`.
    pub fn full_tokenid(&self) -> String {
        format!("{}!{}", self.userid, self.tokenid)
    }
}

/// The token plan of a class's clusters.
pub fn token_plan(class: &Class, snap: &Snapshot, settings: &CapiSettings, clusters: &[StudentCluster]) -> TokenPlan {
    let lab = class.lab.as_str();
    let mut grants: BTreeSet<Grant> = BTreeSet::new();
    let mut grant = |path: String, role: &'static str, propagate: bool| {
        grants.insert(Grant { path, role, propagate });
    };
    grant("/".into(), "PVEAuditor", false);
    grant("/nodes".into(), "PVEAuditor", true);
    let zone = class.zone.clone();
    for c in clusters {
        grant(format!("/pool/{}", c.pool), "PVEVMAdmin", true);
        grant(format!("/vms/{}", c.template_id), "PVETemplateUser", false);
        let vnet = class.students.iter().flat_map(|s| &s.networks).any(|(_, iface, vnet)| *vnet && *iface == c.bridge);
        match (&zone, vnet) {
            (Some(z), true) => grant(format!("/sdn/zones/{z}/{}", c.bridge), "PVESDNUser", true),
            _ => grant(format!("/sdn/zones/localnetwork/{}", c.bridge), "PVESDNUser", true),
        }
        if let Some(t) = snap.vm(c.template_id) {
            for storage in t.disk_storages() {
                grant(format!("/storage/{storage}"), "PVEDatastoreUser", false);
            }
        }
    }
    if let Some(storage) = settings.storage.as_ref().filter(|_| settings.full) {
        grant(format!("/storage/{storage}"), "PVEDatastoreUser", false);
    }
    grant(format!("/storage/{}", settings.iso_storage), "PVEDatastoreAdmin", false);
    TokenPlan {
        userid: format!("capmox-{}@pve", lab.replace('_', "-")),
        tokenid: "capi".into(),
        grants: grants.into_iter().collect(),
        secret: format!("{}-capmox", lab.replace('_', "-")),
    }
}
