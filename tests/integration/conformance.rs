//! One set of scenarios, three arms: the simulator in this process (as `--sim` reaches it),
//! `stand sim serve` over HTTPS (as a real cluster is reached), and a real Proxmox VE when
//! `STAND_PVE_URL` is set. If the simulator's arms pass and the real one does too, the
//! simulator can be relied on for what the scenarios cover.
//!
//! Real arm: `STAND_PVE_URL`, `STAND_PVE_TOKEN` (`user@realm!id=secret`), optional
//! `STAND_PVE_FINGERPRINT`, `STAND_PVE_NODE` (default `pve1`), `STAND_PVE_TEMPLATE` (a
//! template VMID on that node, default 103) and `STAND_PVE_NETWORK=1` to include the network
//! scenario (it reloads the node's network). Everything it makes is named `stand-conf-*`
//! and removed at the end.

use std::sync::Arc;

use stand::pve::{
    BridgeParams, ClientOptions, CloneParams, Credentials, Params, Pve, PveClient, PveError, PveExt, Secret, TlsMode,
    WaitPolicy,
};
use stand::sim::{Fixture, Sim, SimOptions};

/// Where the scenarios run.
struct Arm {
    pve: Arc<dyn Pve>,
    node: String,
    template: u32,
    network: bool,
}

fn status(e: &PveError) -> u16 {
    e.status().unwrap_or(0)
}

/// A VMID free on the cluster, from PVE itself.
async fn free_vmid(pve: &dyn Pve) -> u32 {
    pve.nextid().await.expect("GET /cluster/nextid")
}

/// Version, nodes, a linked clone and its config, errors, a user and a pool, a bridge.
async fn scenarios(arm: &Arm) {
    let pve = &*arm.pve;
    let wait = WaitPolicy { first: std::time::Duration::from_millis(100), ..WaitPolicy::default() };
    assert!(!pve.version().await.unwrap().version.is_empty(), "GET /version names a version");
    let nodes = pve.nodes().await.unwrap();
    assert!(nodes.iter().any(|n| n.node == arm.node), "the node is listed: {nodes:?}");

    // A linked clone: a task, a new MAC, the name, no lock once done.
    let template = pve.vm_config(&arm.node, arm.template).await.unwrap();
    let vmid = free_vmid(pve).await;
    let p = CloneParams { newid: vmid, name: Some("stand-conf-vm".into()), ..Default::default() };
    let upid = pve.clone_vm(&arm.node, arm.template, &p).await.unwrap();
    assert_eq!((upid.task_type.as_str(), upid.node.as_str()), ("qmclone", arm.node.as_str()));
    pve.wait_task(&upid, wait).await.unwrap();
    let cfg = pve.vm_config(&arm.node, vmid).await.unwrap();
    assert_eq!(cfg.get("name").as_deref(), Some("stand-conf-vm"));
    assert!(cfg.get("lock").is_none(), "no lock once the clone ended");
    if let (Some(a), Some(b)) = (template.get("net0"), cfg.get("net0")) {
        assert_ne!(a, b, "a clone gets a new MAC");
    }
    let mut p = Params::new();
    p.insert("memory".into(), "512".into());
    pve.set_vm_config(&arm.node, vmid, p).await.unwrap();
    assert_eq!(pve.vm_config(&arm.node, vmid).await.unwrap().get("memory").as_deref(), Some("512"));
    assert_eq!(pve.vm_status(&arm.node, vmid).await.unwrap().status, "stopped");

    // Errors as PVE shapes them.
    let e = pve.vm_config(&arm.node, 999_999_999).await.unwrap_err();
    assert_eq!(status(&e), 500, "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let bad = CloneParams { newid: 99, ..Default::default() };
    match pve.clone_vm(&arm.node, arm.template, &bad).await.unwrap_err() {
        PveError::Api { failure, .. } => {
            assert_eq!(failure.status, 400);
            assert!(failure.errors.contains_key("newid"), "{:?}", failure.errors);
        }
        other => panic!("a 400 with errors.newid, got {other}"),
    }

    // A user and a pool, made and removed.
    pve.create_user("stand-conf-user@pve", Some("Conf-pass-123"), Some("stand conformance")).await.unwrap();
    assert!(pve.users().await.unwrap().iter().any(|u| u.userid == "stand-conf-user@pve"));
    pve.create_pool("stand-conf-pool", Some("stand conformance")).await.unwrap();
    assert!(pve.pools().await.unwrap().iter().any(|p| p.poolid == "stand-conf-pool"));
    pve.delete_pool("stand-conf-pool").await.unwrap();
    pve.delete_user("stand-conf-user@pve").await.unwrap();

    // A bridge is pending until the node's network is applied.
    if arm.network {
        let taken: Vec<String> = pve.network(&arm.node).await.unwrap().ifaces.into_iter().map(|i| i.iface).collect();
        let iface = (9000..9999).map(|n| format!("vmbr{n}")).find(|n| !taken.contains(n)).unwrap();
        let b = BridgeParams {
            iface: iface.clone(),
            autostart: true,
            vlan_aware: false,
            ports: None,
            comments: Some("stand conformance".into()),
        };
        pve.create_bridge(&arm.node, &b).await.unwrap();
        let staged = pve.network(&arm.node).await.unwrap();
        assert!(staged.ifaces.iter().any(|i| i.iface == iface && !i.active), "pending, not active");
        assert!(staged.changes.is_some_and(|c| c.contains(&iface)), "the diff names it");
        pve.wait_task(&pve.apply_network(&arm.node).await.unwrap(), wait).await.unwrap();
        let applied = pve.network(&arm.node).await.unwrap();
        assert!(applied.ifaces.iter().any(|i| i.iface == iface && i.active), "active once applied");
        pve.delete_iface(&arm.node, &iface).await.unwrap();
        pve.wait_task(&pve.apply_network(&arm.node).await.unwrap(), wait).await.unwrap();
        assert!(!pve.network(&arm.node).await.unwrap().ifaces.iter().any(|i| i.iface == iface));
    }

    // The clone goes; its config with it.
    pve.wait_task(&pve.delete_vm(&arm.node, vmid).await.unwrap(), wait).await.unwrap();
    assert_eq!(status(&pve.vm_config(&arm.node, vmid).await.unwrap_err()), 500);
}

#[tokio::test]
async fn the_simulator_in_process() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let pve: Arc<dyn Pve> = Arc::new(sim.client());
    scenarios(&Arm { pve, node: "pve1".into(), template: 103, network: true }).await;
}

#[test]
fn the_simulator_over_https() {
    let (_sim, rt, server) = crate::common::served_in_process();
    let creds = Credentials::Token {
        id: server.token.rsplit_once('=').unwrap().0.to_string(),
        secret: Secret::new(server.token.rsplit_once('=').unwrap().1),
    };
    let tls = TlsMode::Pinned(server.fingerprint.clone());
    let client = PveClient::new(&server.url, creds, &tls, ClientOptions::default()).unwrap();
    rt.block_on(scenarios(&Arm { pve: Arc::new(client), node: "pve1".into(), template: 103, network: true }));
}

#[test]
#[ignore = "needs a real Proxmox VE (STAND_PVE_URL, STAND_PVE_TOKEN)"]
fn a_real_proxmox_ve() {
    let var = |k: &str| std::env::var(k).ok();
    let url = var("STAND_PVE_URL").expect("STAND_PVE_URL");
    let token = var("STAND_PVE_TOKEN").expect("STAND_PVE_TOKEN: user@realm!id=secret");
    let (id, secret) = token.rsplit_once('=').expect("STAND_PVE_TOKEN: user@realm!id=secret");
    let creds = Credentials::Token { id: id.to_string(), secret: Secret::new(secret) };
    let tls = match var("STAND_PVE_FINGERPRINT") {
        Some(fp) => TlsMode::Pinned(fp),
        None => TlsMode::Verify { extra_ca: None },
    };
    let client = PveClient::new(&url, creds, &tls, ClientOptions::default()).unwrap();
    let arm = Arm {
        pve: Arc::new(client),
        node: var("STAND_PVE_NODE").unwrap_or_else(|| "pve1".into()),
        template: var("STAND_PVE_TEMPLATE").and_then(|t| t.parse().ok()).unwrap_or(103),
        network: var("STAND_PVE_NETWORK").as_deref() == Some("1"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(scenarios(&arm));
}
