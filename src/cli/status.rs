//! `stand status`: the labs on the cluster, their stands, and the nodes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::arguments::Output;
use super::down::check_exists;
use super::target::Cluster;
use super::up::snapshot;
use super::{exit, lab, render};
use crate::plan::{Owner, Snapshot, expiry};

/// One VM of a stand (`status --output json`: `stands[].vms[]`).
#[derive(Debug, Serialize)]
struct VmEntry {
    vmid: u32,
    name: String,
    node: String,
    /// `running`, `stopped`, ...
    status: String,
    uptime_s: u64,
    /// A config lock (`clone`, `backup`, ...), if any.
    lock: Option<String>,
    /// What each NIC is plugged into (`net0` → `vmbr0`, `net1` → the stand's `lan`).
    nets: Vec<NicEntry>,
    /// The NICs `stand uplinks off` cut (an exam).
    cut: Vec<String>,
}

/// One NIC of a VM (`stands[].vms[].nets[]`).
#[derive(Debug, Serialize)]
struct NicEntry {
    nic: String,
    bridge: String,
    /// The stand's name for that network (`lan`), when it is one of the stand's own.
    alias: Option<String>,
    /// Unplugged (`link_down`): by `stand uplinks off`, or as a router's management port.
    link_down: bool,
}

/// One private network of a stand (`stands[].bridges[]`): a Linux bridge of a node, or an
/// SDN VNet of a zone (present on each of its nodes).
#[derive(Debug, Serialize)]
struct BridgeEntry {
    alias: String,
    /// The bridge's node; `null` for a VNet.
    node: Option<String>,
    /// The VNet's zone; `null` for a bridge.
    zone: Option<String>,
    iface: String,
    /// Applied; `false` while the node's network change (or the SDN change) is pending.
    active: bool,
}

impl BridgeEntry {
    /// `lan: pve1/vmbr1001` (node/bridge), `lan: stand/s3f9a0c1 (pending)` (zone/VNet).
    fn cell(&self) -> String {
        let place = self.zone.as_ref().or(self.node.as_ref()).map(String::as_str).unwrap_or_default();
        let pending = if self.active { "" } else { " (pending)" };
        format!("{}: {place}/{}{pending}", self.alias, self.iface)
    }
}

/// One student's stand (`status --output json`: `stands[]`).
#[derive(Debug, Default, Serialize)]
struct Stand {
    lab: String,
    user: String,
    /// Their name (from the roster, kept in PVE's `firstname`/`lastname`).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// `Иванов П. С.`, for the table.
    #[serde(skip)]
    short_name: Option<String>,
    nodes: Vec<String>,
    vms: Vec<VmEntry>,
    bridges: Vec<BridgeEntry>,
    running: usize,
    locked: usize,
}

fn stands(snap: &Snapshot) -> BTreeMap<(String, String), Stand> {
    let mut out: BTreeMap<(String, String), Stand> = BTreeMap::new();
    // Each student's own networks by bridge or VNet name, to name a NIC's network.
    let mut alias_of: BTreeMap<(String, String), String> = BTreeMap::new();
    for b in snap.bridges.values().flatten().filter_map(|b| b.owner.as_ref().map(|o| (o, &b.iface))) {
        if let (Owner::Private { user, alias, .. }, iface) = b {
            alias_of.insert((user.clone(), iface.clone()), alias.clone());
        }
    }
    for v in &snap.vnets {
        if let Some(Owner::Private { user, alias, .. }) = &v.owner {
            alias_of.insert((user.clone(), v.vnet.clone()), alias.clone());
        }
    }
    for vm in &snap.vms {
        let Some(Owner::Vm { lab, user, .. }) = vm.owner() else { continue };
        let s = out.entry((lab.to_string(), user.to_string())).or_default();
        s.lab = lab.to_string();
        s.user = user.to_string();
        let name = snap.user(user).and_then(|u| u.name.as_ref());
        s.name = name.map(|n| n.display());
        s.short_name = name.map(|n| n.short());
        if !s.nodes.contains(&vm.node) {
            s.nodes.push(vm.node.clone());
        }
        s.running += usize::from(vm.status == "running");
        s.locked += usize::from(vm.lock.is_some());
        s.vms.push(VmEntry {
            vmid: vm.vmid,
            name: vm.name.clone(),
            node: vm.node.clone(),
            status: vm.status.clone(),
            uptime_s: vm.uptime,
            lock: vm.lock.clone(),
            nets: vm
                .nets()
                .into_iter()
                .map(|(i, d)| {
                    let bridge = d.bridge.unwrap_or_default();
                    let alias = alias_of.get(&(user.to_string(), bridge.clone())).cloned();
                    NicEntry { nic: format!("net{i}"), bridge, alias, link_down: d.link_down }
                })
                .collect(),
            cut: crate::plan::course::cut_nics(vm),
        });
    }
    for (node, bridges) in &snap.bridges {
        for b in bridges {
            let Some(Owner::Private { lab, user, alias }) = &b.owner else { continue };
            if let Some(s) = out.get_mut(&(lab.clone(), user.clone())) {
                s.bridges.push(BridgeEntry {
                    alias: alias.clone(),
                    node: Some(node.clone()),
                    zone: None,
                    iface: b.iface.clone(),
                    active: b.active,
                });
            }
        }
    }
    for v in &snap.vnets {
        let Some(Owner::Private { lab, user, alias }) = &v.owner else { continue };
        if let Some(s) = out.get_mut(&(lab.clone(), user.clone())) {
            s.bridges.push(BridgeEntry {
                alias: alias.clone(),
                node: None,
                zone: Some(v.zone.clone()),
                iface: v.vnet.clone(),
                active: v.state.is_none(),
            });
        }
    }
    out
}

/// A VM's state in a table cell: `up 2h 5m`, `stopped`, `stopped, lock clone`.
fn vm_state(vm: &VmEntry) -> String {
    match (&vm.lock, vm.status.as_str()) {
        (Some(l), _) => format!("{}, lock {l}", vm.status),
        (None, "running") => format!("up {}", crate::out::uptime(vm.uptime_s)),
        _ => vm.status.clone(),
    }
}

/// A VM's networks in a table cell, each once: the stand's own by their names, the rest by
/// bridge, a cut uplink marked `✗`, an unplugged NIC (a management port) left out:
/// `vmbr0✗,dmz,lan`.
fn vm_nets(vm: &VmEntry) -> String {
    let mut names: Vec<String> = Vec::new();
    for n in vm.nets.iter().filter(|n| !n.link_down || vm.cut.contains(&n.nic)) {
        let name = n.alias.clone().unwrap_or_else(|| n.bridge.clone());
        let name = if vm.cut.contains(&n.nic) { format!("{name}✗") } else { name };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(",")
}

/// A lab's last day as a cell: `2026-12-31`, `2026-12-31 (past)`, or `-`.
fn expiry_cell(snap: &Snapshot, lab: &str) -> String {
    match snap.lab_expires(lab) {
        Some(d) if expiry::is_past(&d, expiry::today()) => format!("{d} (past)"),
        Some(d) => d,
        None => "-".into(),
    }
}

/// `stand status [LAB]`.
pub async fn status(cluster: &Cluster, only_lab: Option<&str>, only: &[String]) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let only_lab = only_lab.map(lab::lab_name);
    let only = match &only_lab {
        Some(l) => check_exists(&snap, l, only)?,
        None => Vec::new(),
    };
    let all = stands(&snap);
    let chosen: Vec<&Stand> = all
        .values()
        .filter(|s| only_lab.as_ref().is_none_or(|l| *l == s.lab))
        .filter(|s| only.is_empty() || only.contains(&s.user))
        .collect();
    if cluster.output == Output::Json {
        let labs: Vec<_> = snap
            .labs()
            .into_iter()
            .filter(|l| only_lab.as_ref().is_none_or(|o| o == l))
            .map(|l| {
                let expires = snap.lab_expires(&l);
                let expired = expires.as_deref().is_some_and(|d| expiry::is_past(d, expiry::today()));
                json!({ "lab": l, "expires": expires, "expired": expired })
            })
            .collect();
        crate::outln!(
            "{}",
            json!({ "simulated": cluster.simulated(), "labs": labs, "stands": chosen, "nodes": snap.nodes })
        );
        return Ok(exit::OK);
    }
    if let Some(l) = &only_lab {
        // One line per VM, so that a class fits 80 columns; the stand's networks below.
        let mut t = render::table(&["student", "VM", "node", "state", "networks"]);
        for s in &chosen {
            // The login on the stand's first line, the name (short) on its second.
            let short = s.short_name.clone();
            for (i, vm) in s.vms.iter().enumerate() {
                let who = match i {
                    0 => s.user.clone(),
                    1 => short.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                t.add_row(vec![who, format!("{} {}", vm.vmid, vm.name), vm.node.clone(), vm_state(vm), vm_nets(vm)]);
            }
            if let (Some(short), 1) = (&short, s.vms.len()) {
                t.add_row(vec![short.clone(), String::new(), String::new(), String::new(), String::new()]);
            }
        }
        let expires = match expiry_cell(&snap, l) {
            e if e == "-" => String::new(),
            e => format!(", expires after {e}"),
        };
        let vms: usize = chosen.iter().map(|s| s.vms.len()).sum();
        let running: usize = chosen.iter().map(|s| s.running).sum();
        let cut = chosen.iter().filter(|s| s.vms.iter().any(|v| !v.cut.is_empty())).count();
        let exam = match cut {
            0 => String::new(),
            n => format!("; uplinks cut (✗) on {} (exam)", render::count(n, "stand")),
        };
        crate::outln!(
            "{}",
            render::wrap(
                &format!(
                    "lab {l}: {}, {running} of {vms} VMs running{expires}{exam}",
                    render::count(chosen.len(), "stand")
                ),
                2
            )
        );
        if !chosen.is_empty() {
            crate::outln!("{t}");
            let networks: Vec<String> = chosen
                .iter()
                .filter(|s| !s.bridges.is_empty())
                .map(|s| {
                    let cells: Vec<String> = s.bridges.iter().map(BridgeEntry::cell).collect();
                    format!("{}: {}", s.user, cells.join(", "))
                })
                .collect();
            if !networks.is_empty() {
                crate::outln!("networks of each stand:");
                for n in networks {
                    crate::outln!("{}", render::wrap(&format!("  {n}"), 4));
                }
            }
        }
    } else {
        let mut labs: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
        for s in &chosen {
            let e = labs.entry(&s.lab).or_default();
            e.0 += 1;
            e.1 += s.vms.len();
            e.2 += s.running;
            e.3 += s.locked;
        }
        let mut t = render::table(&["lab", "stands", "VMs", "running", "locked", "last day"]);
        for (l, (n, vms, running, locked)) in &labs {
            t.add_row(vec![
                l.to_string(),
                n.to_string(),
                vms.to_string(),
                running.to_string(),
                locked.to_string(),
                expiry_cell(&snap, l),
            ]);
        }
        if labs.is_empty() {
            crate::outln!("no labs deployed by stand");
        } else {
            crate::outln!("{t}");
        }
    }
    let mut t = render::table(&["node", "online", "CPUs", "memory used", "stand VMs"]);
    for n in &snap.nodes {
        let ours = snap.vms.iter().filter(|v| v.node == n.name && v.owner().is_some()).count();
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        t.add_row(vec![
            n.name.clone(),
            if n.online { "yes".into() } else { "NO".into() },
            n.maxcpu.to_string(),
            format!("{:.1} / {:.1} GiB", gib(n.mem), gib(n.maxmem)),
            ours.to_string(),
        ]);
    }
    crate::outln!("{t}");
    Ok(exit::OK)
}

/// `stand status [LAB [--only USER..]] [--watch [SECONDS]]`.
pub async fn watch(
    cluster: &mut Cluster,
    only_lab: Option<&str>,
    only: &[String],
    every: Option<f64>,
) -> anyhow::Result<u8> {
    let Some(seconds) = every else { return status(cluster, only_lab, only).await };
    anyhow::ensure!(seconds > 0.0 && seconds.is_finite(), "--watch needs a number of seconds > 0");
    let clear = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if clear {
            crate::out!("\x1b[2J\x1b[H");
        }
        cluster.reload()?;
        status(cluster, only_lab, only).await?;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
        }
    }
}
