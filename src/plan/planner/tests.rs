//! Planner and diff tests on a snapshot built by hand, without a simulator.

use std::collections::BTreeMap;

use super::*;
use crate::plan::{BridgeSnap, ChangeKind, Diff, NodeSnap, StorageSnap, VmSnap};
use crate::pve::VmConfig;

const GIB: u64 = 1 << 30;

/// Three 64 GiB nodes with vmbr0, a shared storage, the template 103 `debian-12`, and
/// optionally a running guest of someone else on pve1: a cluster read by hand, no
/// simulator.
fn cluster(busy_pve1_gib: u64) -> Arc<Snapshot> {
    let names = ["pve1", "pve2", "pve3"];
    let vm = |vmid: u32, name: &str, template: bool, maxmem: u64, status: &str, config: serde_json::Value| {
        let mut v = VmSnap {
            vmid,
            node: "pve1".into(),
            name: name.into(),
            template,
            maxmem,
            status: status.into(),
            ..VmSnap::default()
        };
        v.set_config(VmConfig(serde_json::from_value(config).unwrap()));
        v
    };
    let template = serde_json::json!({
        "memory": 1024, "template": 1, "scsi0": "nfs:base-103-disk-0,size=8G",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
    });
    let mut vms = vec![vm(103, "debian-12", true, GIB, "stopped", template)];
    if busy_pve1_gib > 0 {
        vms.push(vm(500, "other-course", false, busy_pve1_gib * GIB, "running", serde_json::json!({})));
    }
    let vmbr0 = BridgeSnap { iface: "vmbr0".into(), active: true, vlan_aware: false, comments: None, owner: None };
    Arc::new(Snapshot {
        nodes: names
            .iter()
            .map(|n| NodeSnap { name: n.to_string(), online: true, maxmem: 64 * GIB, mem: 0, maxcpu: 16 })
            .collect(),
        storages: vec![StorageSnap {
            id: "nfs".into(),
            kind: "nfs".into(),
            shared: true,
            content: vec!["images".into()],
            nodes: names.iter().map(|n| n.to_string()).collect(),
        }],
        vms,
        bridges: names.iter().map(|n| (n.to_string(), vec![vmbr0.clone()])).collect::<BTreeMap<_, _>>(),
        realms: vec!["pam".into(), "pve".into()],
        ..Snapshot::default()
    })
}

fn spec(name: &str, memory_mib: u64, start: bool) -> CloneSpec {
    CloneSpec {
        template: TemplateRef::Name("debian-12".into()),
        name: name.into(),
        device: Device::Linux,
        nets: vec!["vmbr0".into()],
        full: false,
        storage: None,
        memory: Some(memory_mib),
        cores: None,
        start,
        tags: Vec::new(),
        node: None,
        span: None,
    }
}

/// `students` stands of `vms` VMs of `memory_mib` each.
fn class(snap: Arc<Snapshot>, students: usize, vms: usize, memory_mib: u64, start: bool) -> Result<Plan, PlanError> {
    let mut p = Planner::new(snap, "lab").unwrap();
    for i in 1..=students {
        let user = format!("s{i}@pve");
        p.add_user(&user)?;
        p.place_balanced(&user, None)?;
        for v in 0..vms {
            p.clone_vm(&user, spec(&format!("vm{v}"), memory_mib, start))?;
        }
    }
    p.finish().map_err(|(e, _)| e)
}

#[test]
fn planning_is_pure_it_asks_for_passwords_and_gives_the_same_plan_twice() {
    let a = class(cluster(0), 6, 2, 1024, true).unwrap();
    let b = class(cluster(0), 6, 2, 1024, true).unwrap();
    assert_eq!(a, b, "the same cluster and script plan the same, VMIDs, nodes and MACs included");
    assert!(a.users.iter().all(|u| u.new_password && u.password.is_none()), "passwords come from the edge");
    let mut filled = a.clone();
    filled.fill_passwords(|len| "x".repeat(len));
    assert!(filled.users.iter().all(|u| u.password.as_deref() == Some("xxxxxxxxxxxx")));
}

#[test]
fn stands_spread_by_memory_and_a_busy_node_gets_fewer() {
    let plan = class(cluster(0), 6, 2, 2048, true).unwrap();
    let on = |p: &Plan, n: &str| p.users.iter().filter(|u| u.node.as_deref() == Some(n)).count();
    assert_eq!([on(&plan, "pve1"), on(&plan, "pve2"), on(&plan, "pve3")], [2, 2, 2]);
    let plan = class(cluster(40), 6, 2, 2048, true).unwrap();
    assert!(on(&plan, "pve1") < on(&plan, "pve2"), "pve1 runs 40 GiB of another course");
}

#[test]
fn memory_counts_what_runs_and_says_how_many_stands_fit() {
    // 30 stands × 8 GiB = 240 GiB on 3 × 64 GiB: fine while stopped.
    assert!(class(cluster(0), 30, 2, 4096, false).is_ok());
    match class(cluster(0), 30, 2, 4096, true) {
        Err(PlanError::NoMemory { fit, stands, .. }) => assert_eq!((fit, stands), (24, 30)),
        other => panic!("expected NoMemory, got {other:?}"),
    }
}

#[test]
fn a_fresh_plan_diffs_to_creations_only() {
    let snap = cluster(0);
    let plan = class(snap.clone(), 2, 1, 1024, true).unwrap();
    let diff = Diff::compute(&plan, &snap);
    assert!(diff.changes.iter().all(|c| c.kind == ChangeKind::Create), "{:?}", diff.changes);
    assert_eq!(diff.count(ChangeKind::Create), 1 + 2 * 3 + 2, "group; user, pool, ACL each; two VMs");
}

#[test]
fn a_quota_refuses_the_clone_that_exceeds_it_naming_student_and_limit() {
    let mut p = Planner::new(cluster(0), "lab").unwrap();
    let mut settings = p.settings().clone();
    settings.quota = Some(crate::plan::Quota { vms: Some(2), memory_gib: Some(3.0), cores: None });
    p.set_settings(settings).unwrap();
    p.add_user("ivanov@pve").unwrap();
    p.place_balanced("ivanov@pve", None).unwrap();
    p.clone_vm("ivanov@pve", spec("gw", 1024, true)).unwrap();
    let err = p.clone_vm("ivanov@pve", spec("web", 3072, true)).unwrap_err().to_string();
    assert!(err.contains("ivanov@pve's stand would have 4.0 GiB of memory with 'web'"), "{err}");
    assert!(err.contains("quota of 3 GiB") && err.contains("memory_gib"), "{err}");
    p.clone_vm("ivanov@pve", spec("web", 1024, true)).unwrap();
    let err = p.clone_vm("ivanov@pve", spec("pc", 512, true)).unwrap_err().to_string();
    assert!(err.contains("3 VMs") && err.contains("quota of 2 VMs"), "{err}");
}

#[test]
fn expiry_is_in_the_group_marker_and_the_accounts_expire_after_the_last_day() {
    let mut p = Planner::new(cluster(0), "lab").unwrap();
    let mut settings = p.settings().clone();
    settings.expires = Some("2026-12-31".into());
    p.set_settings(settings).unwrap();
    p.add_user("ivanov@pve").unwrap();
    let plan = p.finish().unwrap();
    assert_eq!(plan.group.unwrap().comment, "stand: expires=2026-12-31 lab=lab");
    assert_eq!(plan.users[0].expire, 1_798_761_600, "2027-01-01T00:00:00Z");
}
