//! `stand doctor [LAB.rhai]`: read-only preflight checks, one row each with the fix.

use std::time::Instant;

use serde_json::{Value, json};

use super::arguments::{LabInput, Output};
use super::target::Cluster;
use super::{exit, lab, render};
use crate::apply::foreign_pending;
use crate::check::{Check, Verdict, row};
use crate::plan::{Snapshot, VmSnap, templates};
use crate::pve::{Credentials, PveError, PveExt, TlsMode, presented_fingerprint};

/// Privileges `stand up`/`down` use, and where PVE checks them.
const NEEDED: &[(&str, &str)] = &[
    ("/", "Sys.Audit"),
    ("/vms", "VM.Clone"),
    ("/vms", "VM.Allocate"),
    ("/vms", "VM.Config.Network"),
    ("/vms", "VM.Config.Memory"),
    ("/vms", "VM.Config.Options"),
    ("/vms", "VM.PowerMgmt"),
    ("/vms", "VM.Audit"),
    ("/storage", "Datastore.AllocateSpace"),
    ("/storage", "Datastore.Audit"),
    ("/nodes", "Sys.Modify"),
    ("/access", "User.Modify"),
    ("/access", "Permissions.Modify"),
    ("/access/realm", "Realm.AllocateUser"),
    ("/pool", "Pool.Allocate"),
    ("/access/groups", "Group.Allocate"),
    ("/sdn/zones/localnetwork", "SDN.Use"),
];

/// Whether `perms` (path → privilege → propagate) grants `privilege` on `path`: the entry
/// of the path itself, or of its nearest ancestor with one.
fn granted(perms: &Value, path: &str, privilege: &str) -> bool {
    let mut p = path.to_string();
    loop {
        if let Some(entry) = perms.get(&p) {
            return entry.get(privilege).is_some_and(|v| v.as_i64().unwrap_or(1) != 0 || v.as_bool().unwrap_or(false));
        }
        if p == "/" {
            return false;
        }
        p = match p.rfind('/') {
            Some(0) | None => "/".into(),
            Some(i) => p[..i].to_string(),
        };
    }
}

/// The connection rows; the PVE major version when the cluster answered.
async fn connection_checks(cluster: &Cluster, checks: &mut Vec<Check>) -> Option<u32> {
    let endpoint = cluster.pve.endpoint();
    // What TLS will be once a connection proves it: shown only after the first answer.
    let tls = match &cluster.connection {
        None => row("TLS", Verdict::Ok, "the simulator, in this process", ""),
        Some(c) => match &c.tls {
            TlsMode::Verify { extra_ca: None } => {
                row("TLS", Verdict::Ok, "verified by the system's root certificates", "")
            }
            TlsMode::Verify { extra_ca: Some(_) } => {
                row("TLS", Verdict::Ok, "verified by the CA given (PVE_CA / ca)", "")
            }
            TlsMode::Pinned(fp) => row("TLS", Verdict::Ok, format!("certificate pinned: {fp}"), ""),
            TlsMode::Insecure => row(
                "TLS",
                Verdict::Warn,
                "verification is off (--insecure)",
                "pin the certificate: export PVE_FINGERPRINT=<SHA-256 shown by the node>",
            ),
        },
    };
    let started = Instant::now();
    match cluster.pve.version().await {
        Ok(v) => {
            checks.push(tls);
            checks.push(row(
                "reachable",
                Verdict::Ok,
                format!("{endpoint} answered in {} ms", started.elapsed().as_millis()),
                "",
            ));
            let who = match cluster.connection.as_ref().map(|c| &c.credentials) {
                Some(Credentials::Token { id, .. }) => format!("API token {id}"),
                Some(Credentials::Password { user, .. }) => format!("password of {user}"),
                Some(Credentials::Ticket { user, .. }) => format!("ticket of {user}"),
                None => "root@pam".into(),
            };
            checks.push(row("auth", Verdict::Ok, who, ""));
            let major: u32 = v.version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            checks.push(match major {
                8.. => row("version", Verdict::Ok, format!("Proxmox VE {}", v.version), ""),
                7 => row(
                    "version",
                    Verdict::Warn,
                    format!("Proxmox VE {}", v.version),
                    "PVE 7 is out of support; upgrade to 8",
                ),
                _ => row("version", Verdict::Fail, format!("Proxmox VE {}", v.version), "stand needs PVE 7 or later"),
            });
            Some(major)
        }
        Err(e) => {
            let failed = failed_connection(&endpoint, &e).await;
            if failed.name != "TLS" {
                checks.push(row("TLS", Verdict::Warn, "not checked: no connection was made", "see the row below"));
            }
            checks.push(failed);
            None
        }
    }
}

async fn failed_connection(endpoint: &str, e: &PveError) -> Check {
    match e {
        PveError::Tls(msg) => {
            let fix = match presented_fingerprint(endpoint).await {
                Some(fp) => format!("if this is your cluster's certificate, pin it: export PVE_FINGERPRINT={fp}"),
                None => "pin the node's certificate with PVE_FINGERPRINT or give its CA with PVE_CA".into(),
            };
            row("TLS", Verdict::Fail, msg.clone(), fix)
        }
        e if e.status() == Some(401) => {
            row("auth", Verdict::Fail, e.to_string(), "check PVE_TOKEN (user@realm!tokenid=secret) or the password")
        }
        e => row(
            "reachable",
            Verdict::Fail,
            e.to_string(),
            "check PVE_URL, the network, and that pveproxy runs (port 8006)",
        ),
    }
}

/// The access rows; the caller's permissions when PVE listed them.
async fn access_checks(cluster: &Cluster, checks: &mut Vec<Check>) -> Option<Value> {
    let pve = &cluster.pve;
    match pve.cluster_status().await {
        Ok(items) => {
            let quorate = items.iter().find(|i| i.kind == "cluster").is_none_or(|c| c.quorate);
            let nodes: Vec<_> = items.iter().filter(|i| i.kind == "node").collect();
            let offline: Vec<&str> = nodes.iter().filter(|n| !n.online).map(|n| n.name.as_str()).collect();
            checks.push(if !quorate {
                row(
                    "quorum",
                    Verdict::Fail,
                    "the cluster has no quorum",
                    "bring nodes back online; PVE refuses writes without quorum",
                )
            } else if !offline.is_empty() {
                row(
                    "quorum",
                    Verdict::Warn,
                    format!("{} of {} nodes offline: {}", offline.len(), nodes.len(), offline.join(", ")),
                    "stands are placed on online nodes only",
                )
            } else {
                row("quorum", Verdict::Ok, format!("quorate, {} nodes online", nodes.len()), "")
            });
        }
        Err(e) => checks.push(row("quorum", Verdict::Fail, e.to_string(), "the token needs Sys.Audit on /")),
    }
    let perms = match pve.permissions(None).await {
        Ok(perms) => {
            let missing: Vec<String> = NEEDED
                .iter()
                .filter(|(path, p)| !granted(&perms, path, p))
                .map(|(path, p)| format!("{p} on {path}"))
                .collect();
            checks.push(if missing.is_empty() {
                row("privileges", Verdict::Ok, "everything a lab needs", "")
            } else {
                row(
                    "privileges",
                    Verdict::Fail,
                    format!("missing: {}", missing.join(", ")),
                    "grant them (e.g. the Administrator role on / to the token's user, without privilege separation)",
                )
            });
            Some(perms)
        }
        Err(e) => {
            checks.push(row(
                "privileges",
                Verdict::Fail,
                e.to_string(),
                "GET /access/permissions must work for the token",
            ));
            None
        }
    };
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        if pve.version().await.is_ok() {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let (p50, p95) = (pct(0.5), pct(0.95));
    checks.push(if p95 > 500.0 {
        row(
            "latency",
            Verdict::Warn,
            format!("p50 {p50:.0} ms, p95 {p95:.0} ms over 20 calls"),
            "a slow API makes every step slower; check the network and pveproxy load",
        )
    } else {
        row("latency", Verdict::Ok, format!("p50 {p50:.1} ms, p95 {p95:.1} ms over 20 calls"), "")
    });
    perms
}

/// VMs wired to a bridge their node does not have (they cannot start): stand's are a
/// failure, others' worth a warning.
fn missing_bridges(snap: &Snapshot) -> Check {
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for vm in snap.vms.iter().filter(|v| !v.template) {
        let Some(bridges) = snap.bridges.get(&vm.node) else { continue };
        for (i, nic) in vm.nets() {
            let Some(b) = nic.bridge else { continue };
            if !bridges.iter().any(|x| x.iface == b) {
                let line = format!("VM {} ({}) on {}: net{i} on {b}", vm.vmid, vm.name, vm.node);
                if vm.owner().is_some() { ours.push(line) } else { others.push(line) }
            }
        }
    }
    let all: Vec<String> = ours.iter().chain(&others).cloned().collect();
    let fix = "create the bridge again (ensure_bridge in the lab, then `stand up`), or rewire the VM";
    match (ours.is_empty(), others.is_empty()) {
        (true, true) => row("bridges", Verdict::Ok, "every NIC is on a bridge of its node", ""),
        (false, _) => row("bridges", Verdict::Fail, format!("wired to a missing bridge: {}", all.join("; ")), fix),
        (true, false) => row("bridges", Verdict::Warn, format!("wired to a missing bridge: {}", all.join("; ")), fix),
    }
}

/// What to change when a lab does not fit, by what its plan error says.
fn lab_fix(message: &str) -> &'static str {
    if message.contains("not enough memory") {
        "start fewer VMs (`start: false` in clone), allow overcommit (lab(#{ overcommit: 1.5 }) or --overcommit 1.5), lower `memory`, or add nodes"
    } else if message.contains("no free VMID") {
        "widen lab(#{ vmid_range: [..] }), or `stand down` old labs"
    } else if message.contains("no free bridge") {
        "`stand down` old labs, or lower lab(#{ bridge_base })"
    } else if message.contains("does not exist") {
        "create what is missing, or fix its name in the script (the message lists what exists)"
    } else {
        "change the script or the cluster as the message says, then run `stand doctor` again"
    }
}

fn snapshot_checks(snap: &Snapshot, checks: &mut Vec<Check>) {
    let templates: Vec<_> = snap.vms.iter().filter(|v| v.template).collect();
    let copies = templates.iter().filter(|t| templates::copy_state(snap, t).is_some()).count();
    checks.push(if templates.is_empty() {
        row("templates", Verdict::Fail, "no templates", "convert the VMs to clone into templates (qm template <vmid>)")
    } else {
        let originals = templates.iter().filter(|t| templates::copy_state(snap, t).is_none());
        let names: Vec<String> = originals.map(|t| format!("{} {}", t.vmid, t.name)).collect();
        let copies =
            if copies > 0 { format!("; {copies} copies on the nodes (`stand templates`)") } else { String::new() };
        row("templates", Verdict::Ok, format!("{}{copies}", names.join(", ")), "")
    });
    // A name is cloneable (linked) on a node when a template of that name is on shared
    // storage, or on that node's own storage (a copy per node, `stand templates sync`).
    // (A template without disks clones anywhere.)
    let on_shared = |t: &VmSnap| t.disk_storages().is_empty() || snap.on_shared_storage(t);
    let online: Vec<&str> = snap.nodes.iter().filter(|n| n.online).map(|n| n.name.as_str()).collect();
    let mut local = Vec::new();
    for name in templates.iter().map(|t| t.name.as_str()).collect::<std::collections::BTreeSet<_>>() {
        let named: Vec<&&VmSnap> = templates.iter().filter(|t| t.name == name).collect();
        if named.iter().any(|t| on_shared(t)) {
            continue;
        }
        let on: Vec<&str> = named.iter().map(|t| t.node.as_str()).collect();
        if online.iter().any(|n| !on.contains(n)) {
            local.push(format!("{name} only on {}", on.join(", ")));
        }
    }
    let with_images = snap.storages.iter().filter(|s| s.content.iter().any(|c| c == "images")).count();
    checks.push(if with_images == 0 {
        row("storage", Verdict::Fail, "no storage holds VM images", "enable the `images` content on a storage")
    } else if !local.is_empty() {
        row(
            "storage",
            Verdict::Warn,
            format!("templates on local storage: {} (linked clones only there)", local.join(", ")),
            "`stand templates sync` (a copy on every node), move them to shared storage, or use full: true",
        )
    } else {
        let shared: Vec<String> = templates
            .iter()
            .filter(|t| on_shared(t))
            .flat_map(|t| t.disk_storages())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let detail = match (shared.is_empty(), copies > 0) {
            (true, _) => {
                "a template of each name on every online node's own storage: the nodes clone in parallel".into()
            }
            (false, false) => format!(
                "templates on shared storage ({}): linked clones on any node; clones queue on its allocation lock",
                shared.join(", ")
            ),
            (false, true) => format!(
                "templates on shared storage ({}), copies on the nodes' own storage: linked clones on any node",
                shared.join(", ")
            ),
        };
        row("storage", Verdict::Ok, detail, "")
    });
    let no_uplink: Vec<&str> = online
        .iter()
        .copied()
        .filter(|n| !snap.bridges.get(*n).is_some_and(|b| b.iter().any(|x| x.iface == "vmbr0")))
        .collect();
    checks.push(if no_uplink.is_empty() {
        row("vmbr0", Verdict::Ok, format!("on every online node ({})", online.len()), "")
    } else {
        row(
            "vmbr0",
            Verdict::Fail,
            format!("missing on {}", no_uplink.join(", ")),
            "create the uplink bridge vmbr0 on those nodes",
        )
    });
    // The same rule `up` and `down` apply: pending changes without a stand marker.
    let foreign: Vec<String> = snap
        .pending
        .keys()
        .filter_map(|node| {
            let theirs = foreign_pending(snap, node, &[]);
            (!theirs.is_empty()).then(|| format!("{node} ({})", theirs.join(", ")))
        })
        .collect();
    checks.push(if foreign.is_empty() {
        row("pending network", Verdict::Ok, "no changes waiting that stand did not make", "")
    } else {
        row(
            "pending network",
            Verdict::Warn,
            format!("changes waiting on {}", foreign.join(", ")),
            "apply or revert them (System → Network); stand will not apply a node's network over them",
        )
    });
    checks.push(missing_bridges(snap));
    let free_bridges = online
        .iter()
        .map(|n| {
            let used: Vec<&str> =
                snap.bridges.get(*n).map(|b| b.iter().map(|x| x.iface.as_str()).collect()).unwrap_or_default();
            (1000..=9999).filter(|i| !used.contains(&format!("vmbr{i}").as_str())).count()
        })
        .min()
        .unwrap_or(0);
    let used_ids = snap.vms.len();
    checks.push(row(
        "capacity",
        Verdict::Ok,
        format!("{free_bridges} free bridge numbers per node at least; {used_ids} VMIDs in use"),
        "",
    ));
}

/// The privileges `stand check` needs on a lab's VMs: PVE 8 guards every guest agent call
/// with `VM.Monitor`; PVE 9 (qemu-server b92a40ce) with `VM.GuestAgent.*`, of which exec
/// needs `Unrestricted` (which also allows the reads).
fn grading_privileges(major: u32) -> &'static [&'static str] {
    if major >= 9 { &["VM.GuestAgent.Unrestricted"] } else { &["VM.Monitor"] }
}

/// Rows for a lab with `fn check`: the privileges its guest agent calls need on the
/// version found (`perms` as the access rows read them), and whether the templates its VMs
/// come from have the agent enabled.
fn grading_checks(
    major: u32,
    perms: Option<&Value>,
    plan: &crate::plan::Plan,
    snap: &Snapshot,
    checks: &mut Vec<Check>,
) {
    let needed = grading_privileges(major);
    checks.push(match perms {
        Some(perms) => {
            let missing: Vec<&str> = needed.iter().copied().filter(|p| !granted(perms, "/vms", p)).collect();
            if missing.is_empty() {
                row("grading access", Verdict::Ok, format!("{} on /vms (PVE {major})", needed.join(", ")), "")
            } else {
                row(
                    "grading access",
                    Verdict::Fail,
                    format!("`stand check` needs {} on /vms on PVE {major}", missing.join(", ")),
                    "grant it (PVEVMAdmin has it) to the user or token on /vms or the lab's pools",
                )
            }
        }
        None => row(
            "grading access",
            Verdict::Fail,
            "not checked: the privileges could not be read",
            "see the privileges row",
        ),
    });
    let mut without: Vec<String> = Vec::new();
    for vmid in plan.vms.iter().map(|v| v.template).collect::<std::collections::BTreeSet<_>>() {
        let Some(t) = snap.vms.iter().find(|v| v.vmid == vmid) else { continue };
        let enabled = t.config.as_ref().and_then(|c| c.get("agent")).is_some_and(|a| crate::pve::agent_enabled(&a));
        if !enabled {
            without.push(format!("{} ({vmid})", t.name));
        }
    }
    checks.push(if without.is_empty() {
        row("guest agent", Verdict::Ok, "every template of the lab has the QEMU guest agent enabled", "")
    } else {
        row(
            "guest agent",
            Verdict::Warn,
            format!(
                "templates without `agent` enabled: {}; `stand check` cannot reach their clones",
                without.join(", ")
            ),
            "install qemu-guest-agent in the template and set it: qm set <vmid> --agent enabled=1",
        )
    });
}

/// `stand doctor [LAB.rhai]`.
/// Whether `stand reset` will have a baseline to go back to: each new VM's storage must
/// take snapshots (not thick LVM, not raw files).
/// A VXLAN lab: its zone, and the rights to make VNets and apply them.
fn sdn_check(sdn: &crate::plan::SdnPlan, perms: Option<&Value>) -> Check {
    let zone_path = format!("/sdn/zones/{}", sdn.zone);
    let missing: Vec<String> = [(zone_path.as_str(), "SDN.Allocate"), ("/sdn", "SDN.Allocate")]
        .iter()
        .filter(|(path, privilege)| perms.is_some_and(|p| !granted(p, path, privilege)))
        .map(|(path, privilege)| format!("{privilege} on {path}"))
        .collect();
    let zone = if sdn.zone_exists {
        format!("zone {} exists", sdn.zone)
    } else {
        format!("zone {} will be made (vxlan, the nodes' addresses as peers)", sdn.zone)
    };
    if !missing.is_empty() {
        row(
            "sdn",
            Verdict::Fail,
            format!("{zone}; the token lacks {}", missing.join(", ")),
            "grant PVESDNAdmin on /sdn",
        )
    } else if !sdn.foreign.is_empty() {
        row(
            "sdn",
            Verdict::Warn,
            format!("{zone}; SDN changes stand did not make are pending ({})", sdn.foreign.join(", ")),
            "apply or revert them (Datacenter → SDN); `up` will not apply over them",
        )
    } else {
        row("sdn", Verdict::Ok, format!("{zone}; {} VNets, one apply per run", sdn.vnets.len()), "")
    }
}

/// Where the lab's linked clones queue, and what `stand templates sync` would gain.
fn clone_queue_check(plan: &crate::plan::Plan, snap: &Snapshot) -> Check {
    let queues = super::up::clone_queues(plan, snap);
    match (queues.advice(), queues.summary()) {
        (Some(advice), _) => row("template copies", Verdict::Warn, advice, "stand templates sync"),
        (None, Some(summary)) => row("template copies", Verdict::Ok, summary, ""),
        (None, None) => row("template copies", Verdict::Ok, "the lab makes no new linked clones", ""),
    }
}

fn baseline_check(plan: &crate::plan::Plan) -> Check {
    let Some(name) = plan.lab.as_ref().and_then(|l| l.baseline.clone()) else {
        return row(
            "snapshots",
            Verdict::Ok,
            "the lab takes no baseline (snapshot: false): `stand reset` needs --to",
            "",
        );
    };
    let new: Vec<&crate::plan::VmPlan> = plan.vms.iter().filter(|v| !v.exists).collect();
    let without: Vec<&str> = new.iter().filter(|v| v.baseline.is_none()).map(|v| v.name.as_str()).collect();
    if without.is_empty() {
        return row(
            "snapshots",
            Verdict::Ok,
            format!("each new VM ({}) gets snapshot '{name}' before its first start", new.len()),
            "",
        );
    }
    let shown: Vec<&str> = without.iter().take(5).copied().collect();
    row(
        "snapshots",
        Verdict::Warn,
        format!(
            "{} of {} new VMs cannot take snapshot '{name}' (thick LVM or raw files): {}{}",
            without.len(),
            new.len(),
            shown.join(", "),
            if without.len() > shown.len() { ", ..." } else { "" }
        ),
        "clone them to a storage with snapshots (`storage` in clone: LVM-thin, ZFS, Ceph, qcow2), or set lab(#{ snapshot: false })",
    )
}

pub async fn doctor(cluster: &Cluster, lab_file: Option<&LabInput>, capi: bool) -> anyhow::Result<u8> {
    let mut checks = Vec::new();
    if let Some(major) = connection_checks(cluster, &mut checks).await {
        let perms = access_checks(cluster, &mut checks).await;
        let taken = Snapshot::take_all(&cluster.pve).await;
        match taken {
            Ok(snap) => {
                let snap = std::sync::Arc::new(snap);
                snapshot_checks(&snap, &mut checks);
                if let Some(input) = lab_file {
                    let plan = lab::plan_lab(input, snap.clone(), false);
                    if let Some(token) = cluster.token_id() {
                        let students = plan.as_ref().map(|p| p.users.iter().filter(|u| u.exists).count()).unwrap_or(0);
                        checks.push(row(
                            "password reset",
                            if students > 0 { Verdict::Warn } else { Verdict::Ok },
                            format!("logged in with the API token {token}, which PVE lets change no password ({students} students exist)"),
                            if students > 0 {
                                "for `stand up --reset-passwords`, log in with PVE_USER and PVE_PASSWORD instead"
                            } else {
                                ""
                            },
                        ));
                    }
                    if let Ok(plan) = &plan {
                        checks.push(baseline_check(plan));
                        checks.push(clone_queue_check(plan, &snap));
                        if let Some(sdn) = &plan.sdn {
                            checks.push(sdn_check(sdn, perms.as_ref()));
                        }
                        let grades = input.lab.as_deref().is_some_and(|p| {
                            crate::script::CheckScript::load(p, &crate::script::RunOptions::default()).is_ok()
                        });
                        if grades {
                            grading_checks(major, perms.as_ref(), plan, &snap, &mut checks);
                        }
                        if capi {
                            checks.extend(crate::capi::checks(&crate::capi::Class::of_plan(plan), &snap));
                        }
                    }
                    checks.push(match plan {
                        Ok(plan) => row(
                            "lab",
                            Verdict::Ok,
                            format!(
                                "{}: {} stands, {} VMs fit (templates, memory, names)",
                                plan.lab_name(),
                                plan.users.len(),
                                plan.vms.len()
                            ),
                            "",
                        ),
                        Err(e) => {
                            let message = format!("{e:#}");
                            row("lab", Verdict::Fail, message.trim_end().to_string(), lab_fix(&message))
                        }
                    });
                }
            }
            Err(e) => checks.push(row(
                "read",
                Verdict::Fail,
                e.to_string(),
                "the token needs Sys.Audit, VM.Audit and Datastore.Audit",
            )),
        }
    }
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    match cluster.output {
        Output::Json => {
            crate::outln!("{}", json!({ "simulated": cluster.simulated(), "ok": !failed, "checks": checks }))
        }
        Output::Text => {
            let mut t = render::table(&["check", "", "found", "fix"]);
            for c in &checks {
                let mark = match c.verdict {
                    Verdict::Ok => console::style("ok").green(),
                    Verdict::Warn => console::style("warn").yellow(),
                    Verdict::Fail => console::style("FAIL").red(),
                };
                t.add_row(vec![c.name.to_string(), mark.to_string(), c.detail.clone(), c.fix.clone()]);
            }
            crate::outln!("{t}");
        }
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}
