//! What CAPMOX needs of the cluster for a lab (`stand doctor LAB.rhai --capi`): a template
//! with a cloud-init drive, storage for the machines' disks on every node they may go to,
//! the storage of its cloud-init ISOs, the lab's token and its grants, and addresses no
//! existing VM uses.

use std::net::Ipv4Addr;

use super::{CapiError, Class, StudentCluster, export, token_plan};
use crate::check::{Check, Verdict, row as finding};
use crate::plan::Snapshot;

/// The checks of `class`'s Cluster API export against `snap` (read with every VM's config).
pub fn checks(class: &Class, snap: &Snapshot) -> Vec<Check> {
    let clusters = match export(class, snap, None) {
        Ok(c) => c,
        Err(e) => {
            let fix = match &e {
                CapiError::NotConfigured { .. } => "add lab(#{ capi: #{ .. } }) (README, Kubernetes labs)",
                CapiError::Setting { key: "template", .. } => "give a template with a cloud-init drive",
                _ => "fix lab(#{ capi }) and run it again",
            };
            return vec![finding("capi", Verdict::Fail, e.to_string(), fix)];
        }
    };
    let Some(settings) = class.settings.clone() else { return Vec::new() };
    let mut out = vec![finding(
        "capi template",
        Verdict::Ok,
        format!("{} clusters from template {} (cloud-init drive)", clusters.len(), settings.template),
        "",
    )];
    out.push(storage_check(snap, &clusters, &settings));
    out.push(iso_check(snap, &settings.iso_storage));
    out.push(token_check(class, snap, &settings, &clusters));
    out.push(address_check(snap, &clusters));
    out
}

fn serves(s: &crate::plan::StorageSnap, node: &str) -> bool {
    s.nodes.is_empty() || s.nodes.iter().any(|n| n == node)
}

/// Disks: a linked clone's go to its template's storage, a full clone's to `storage`.
fn storage_check(snap: &Snapshot, clusters: &[StudentCluster], s: &super::CapiSettings) -> Check {
    let mut missing = Vec::new();
    for c in clusters {
        let wanted: Vec<String> = match (&s.storage, s.full) {
            (Some(storage), true) => vec![storage.clone()],
            _ => snap.vm(c.template_id).map(|t| t.disk_storages()).unwrap_or_default(),
        };
        for node in &c.nodes {
            for id in &wanted {
                let ok =
                    snap.storage(id).is_some_and(|st| st.content.iter().any(|x| x == "images") && serves(st, node));
                if !ok {
                    missing.push(format!("{id} on {node}"));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        finding("capi storage", Verdict::Ok, "the machines' disks have storage with `images` on every allowed node", "")
    } else {
        finding(
            "capi storage",
            Verdict::Fail,
            format!("no storage with `images` for the machines' disks: {}", missing.join(", ")),
            "enable `images` on that storage for those nodes, or set capi.full and capi.storage",
        )
    }
}

fn iso_check(snap: &Snapshot, iso_storage: &str) -> Check {
    match snap.storage(iso_storage) {
        Some(st) if st.content.iter().any(|c| c == "iso") => {
            finding("capi ISO storage", Verdict::Ok, format!("{iso_storage} takes CAPMOX's cloud-init ISOs"), "")
        }
        Some(_) => finding(
            "capi ISO storage",
            Verdict::Fail,
            format!("{iso_storage} has no `iso` content, where CAPMOX uploads each machine's cloud-init ISO"),
            "enable `iso` on it, or set capi.iso_storage",
        ),
        None => finding(
            "capi ISO storage",
            Verdict::Fail,
            format!("no storage {iso_storage} (capi.iso_storage)"),
            "name a storage with `iso` content",
        ),
    }
}

fn token_check(class: &Class, snap: &Snapshot, s: &super::CapiSettings, clusters: &[StudentCluster]) -> Check {
    let t = token_plan(class, snap, s, clusters);
    let full = t.full_tokenid();
    let has = |ugid: &str, g: &super::Grant| {
        snap.acl.iter().any(|a| a.ugid == ugid && a.path == g.path && a.roleid == g.role && a.propagate == g.propagate)
    };
    let granted_to_token = snap.acl.iter().any(|a| a.ugid == full);
    if snap.user(&t.userid).is_none() || !granted_to_token {
        return finding(
            "capi token",
            Verdict::Warn,
            format!("no token {full} with grants yet"),
            "`stand export capi LAB.rhai --with-credentials` makes it",
        );
    }
    let missing: Vec<String> = t
        .grants
        .iter()
        .filter(|g| !has(&full, g) || !has(&t.userid, g))
        .map(|g| format!("{} on {}", g.role, g.path))
        .collect();
    if missing.is_empty() {
        finding(
            "capi token",
            Verdict::Ok,
            format!("{full} has the {} grants CAPMOX needs for this lab", t.grants.len()),
            "",
        )
    } else {
        finding(
            "capi token",
            Verdict::Fail,
            format!("{full} lacks {}", missing.join(", ")),
            "students or templates changed since it was made: remove the token and run `stand export capi --with-credentials` again",
        )
    }
}

/// Addresses existing VMs are known by: their cloud-init `ipconfigN` (`ip=10.10.0.5/24`).
fn known_addresses(snap: &Snapshot) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    for v in &snap.vms {
        let Some(config) = &v.config else { continue };
        for (key, value) in &config.0 {
            if !key.starts_with("ipconfig") {
                continue;
            }
            let text = value.as_str().unwrap_or_default();
            for part in text.split(',') {
                let ip = part.strip_prefix("ip=").and_then(|a| a.split('/').next()).and_then(|a| a.parse().ok());
                if let Some(ip) = ip {
                    out.push((ip, format!("{} {} ({key})", v.vmid, v.name)));
                }
            }
        }
    }
    out
}

fn address_check(snap: &Snapshot, clusters: &[StudentCluster]) -> Check {
    let known = known_addresses(snap);
    let mut clashes = Vec::new();
    for c in clusters {
        for (ip, vm) in &known {
            if c.addresses.contains(*ip) || c.endpoint == *ip {
                clashes.push(format!("{ip} of VM {vm} is {}'s", c.user));
            }
        }
    }
    if clashes.is_empty() {
        finding(
            "capi addresses",
            Verdict::Ok,
            format!("no VM's known address (cloud-init ipconfig) is in the students' ranges ({} checked)", known.len()),
            "",
        )
    } else {
        finding(
            "capi addresses",
            Verdict::Fail,
            clashes.join("; "),
            "move capi.addresses or capi.endpoint off those addresses",
        )
    }
}
