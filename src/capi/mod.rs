//! Kubernetes clusters for a lab's students through Cluster API: `stand export capi` turns a
//! planned lab into the manifests a CAPI management cluster with the Proxmox provider
//! (CAPMOX) applies, one cluster per student on their own part of the Proxmox VE cluster
//! (their nodes, their pool, their network, their addresses), and the API token CAPMOX
//! works with, limited to the lab's pools.

mod addresses;
mod checks;
mod class;
mod credentials;
mod manifests;
mod settings;

use std::collections::BTreeSet;

pub use addresses::{Range, parse as parse_addresses, split};
pub use checks::checks;
pub use class::{Class, Student, decode as decode_settings, encode as encode_settings};
pub use credentials::{Grant, TokenPlan, token_plan};
pub use manifests::{StudentCluster, secret, to_yaml};
pub use settings::CapiSettings;

use crate::plan::{Snapshot, TemplateRef, VmSnap, dns_safe, resolve_template};

/// Why a lab cannot be exported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapiError {
    /// The lab has no `capi` settings.
    #[error(
        "lab {lab} has no Cluster API settings: add lab(#{{ capi: #{{ addresses: \"10.10.0.0/25\", prefix: 24, gateway: \"10.10.0.1\", endpoint: \"10.10.0.200\", network: \"lan\", template: \"debian-12\" }} }})"
    )]
    NotConfigured {
        /// The lab.
        lab: String,
    },
    /// A setting is wrong for this class.
    #[error("capi.{key}: {message}")]
    Setting {
        /// The key of `capi`.
        key: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// A student's stand cannot carry a cluster.
    #[error("{user}: {message}")]
    Student {
        /// `name@realm`.
        user: String,
        /// What is wrong and what to do.
        message: String,
    },
}

fn setting(key: &'static str, message: impl Into<String>) -> CapiError {
    CapiError::Setting { key, message: message.into() }
}

/// Whether a template can be a CAPMOX machine: it has a cloud-init drive (CAPMOX writes the
/// machine's network and bootstrap data there).
pub fn has_cloud_init(t: &VmSnap) -> bool {
    t.config.as_ref().is_some_and(|c| c.0.values().any(|v| v.as_str().is_some_and(|s| s.contains("cloudinit"))))
}

/// Each student's cluster of `class` (on the cluster of `snap`), in the class's order;
/// `secret` names the credentials Secret when one is made.
pub fn export(class: &Class, snap: &Snapshot, secret: Option<&str>) -> Result<Vec<StudentCluster>, CapiError> {
    let lab = class.lab.clone();
    let s = class.settings.clone().ok_or_else(|| CapiError::NotConfigured { lab: lab.clone() })?;
    let (pool, cidr_prefix) = addresses::parse(&s.addresses).map_err(|m| setting("addresses", m))?;
    let prefix = s
        .prefix
        .or(cidr_prefix)
        .ok_or_else(|| setting("prefix", "`addresses` is a range: give the subnet's prefix length, e.g. prefix: 24"))?;
    if !addresses::same_subnet(s.gateway, pool.first, prefix) || !addresses::same_subnet(s.gateway, pool.last, prefix) {
        return Err(setting("gateway", format!("{} is not in the subnet of {} (/{prefix})", s.gateway, s.addresses)));
    }
    let students = class.students.len();
    if students == 0 {
        return Err(setting("addresses", "the lab has no students: nothing to export"));
    }
    let ranges = addresses::split(pool, s.block(), students, &[s.gateway]).map_err(|m| setting("addresses", m))?;
    let endpoints: Vec<std::net::Ipv4Addr> =
        (0..students as u32).map(|i| std::net::Ipv4Addr::from(u32::from(s.endpoint).wrapping_add(i))).collect();
    for e in &endpoints {
        if pool.contains(*e) {
            return Err(setting(
                "endpoint",
                format!(
                    "{e} (a control plane endpoint; the class's are {} to {}) is inside `addresses` {}: CAPMOX would give it to a machine too; put the endpoints outside it",
                    endpoints[0],
                    endpoints[students - 1],
                    s.addresses
                ),
            ));
        }
        if !addresses::same_subnet(*e, s.gateway, prefix) || *e == s.gateway {
            return Err(setting(
                "endpoint",
                format!("{e} (one of the class's endpoints) is not a free address of the machines' subnet"),
            ));
        }
    }
    let vmids = match s.vmids {
        Some((first, last)) => {
            let per = u64::from(s.block());
            if u64::from(last) + 1 < u64::from(first) + per * students as u64 {
                return Err(setting(
                    "vmids",
                    format!("[{first}, {last}] is too small for {students} students at {per} machines each"),
                ));
            }
            (0..students as u32).map(|i| Some((first + i * s.block(), first + (i + 1) * s.block() - 1))).collect()
        }
        None => vec![None; students],
    };
    let template = match s.template.parse::<u32>() {
        Ok(id) => TemplateRef::Id(id),
        Err(_) => TemplateRef::Name(s.template.clone()),
    };
    let mut out = Vec::with_capacity(students);
    for (i, u) in class.students.iter().enumerate() {
        let student = |message: String| CapiError::Student { user: u.userid.clone(), message };
        let node = u.node.clone().ok_or_else(|| student("the stand has no node yet: place it in the script".into()))?;
        let mut nodes: BTreeSet<String> = u.nodes.clone();
        nodes.insert(node.clone());
        let bridge = network_of(class, snap, u, &node, &s.network).map_err(student)?;
        let t = resolve_template(snap, &template, &node).map_err(|e| setting("template", e.to_string()))?;
        if !has_cloud_init(&t) {
            return Err(setting(
                "template",
                format!(
                    "{} ({}) has no cloud-init drive, which CAPMOX writes each machine's network and bootstrap to: `qm set {} --ide2 <storage>:cloudinit` on the template",
                    t.name, t.vmid, t.vmid
                ),
            ));
        }
        let name = u.pool.replace('_', "-");
        if name.len() > 63 {
            return Err(student(format!("the cluster name {name} is longer than 63 characters: shorten the lab name")));
        }
        out.push(StudentCluster {
            lab: lab.clone(),
            user: u.userid.clone(),
            key: u.pool.strip_prefix(&format!("{lab}-")).map(str::to_string).unwrap_or_else(|| dns_safe(&u.userid)),
            name,
            pool: u.pool.clone(),
            nodes: nodes.into_iter().collect(),
            bridge,
            source_node: t.node.clone(),
            template_id: t.vmid,
            addresses: ranges[i],
            prefix,
            endpoint: endpoints[i],
            vmids: vmids[i],
            credentials: secret.map(str::to_string),
        });
    }
    Ok(out)
}

/// The bridge (or VNet) of a student's network `network`: their alias of that name, else a
/// shared bridge of that name on their node.
fn network_of(class: &Class, snap: &Snapshot, student: &Student, node: &str, network: &str) -> Result<String, String> {
    if let Some((_, iface, _)) = student.networks.iter().find(|(alias, _, _)| alias == network) {
        return Ok(iface.clone());
    }
    let shared = class.shared.iter().any(|(n, iface)| n == node && iface == network)
        || snap.bridges.get(node).is_some_and(|bs| bs.iter().any(|b| b.iface == network && b.owner.is_none()));
    if shared {
        return Ok(network.to_string());
    }
    let mut known: Vec<&str> = student.networks.iter().map(|(alias, _, _)| alias.as_str()).collect();
    known.dedup();
    Err(format!(
        "no network '{network}' (capi.network): their networks are {}; name one of them, or a shared bridge of {node}",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    ))
}
