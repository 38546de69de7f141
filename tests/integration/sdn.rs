use std::collections::BTreeSet;

use stand::pve::{ApiRequest, PveExt};

use super::common::{served_in_process, stand, text, token_env};

const SPANNING: &str = r#"lab(#{ network: "vxlan", zone: "stand", spread: true, vmid_range: [5000, 5999] });
for s in ["ivanov@pve", "петрова@pve"] {
    let u = create_user(s);
    let lan = alias(u, "lan");
    clone(u, #{ template: "debian-12", name: "a", nets: [lan], node: "pve1" });
    clone(u, #{ template: "debian-12", name: "b", nets: [lan], node: "pve2" });
    clone(u, #{ template: "alt-server", name: "c", nets: [lan] });
}
"#;

/// The bridge of each NIC of the lab's VMs, by owner (from the VM name's suffix).
fn nics(sim: &stand::sim::Sim, suffix: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let st = sim.state();
    let mut nodes = BTreeSet::new();
    let mut bridges = BTreeSet::new();
    for vm in st.vms.values().filter(|v| v.config.get("name").is_some_and(|n| n.ends_with(suffix))) {
        nodes.insert(vm.node.clone());
        for (k, v) in &vm.config {
            if k.starts_with("net") {
                let bridge = v.split(',').find_map(|p| p.strip_prefix("bridge=")).unwrap_or_default();
                bridges.insert(bridge.to_string());
            }
        }
    }
    (nodes, bridges)
}

fn reloads(sim: &stand::sim::Sim) -> usize {
    sim.state().tasks.iter().filter(|t| t.kind == "reloadnetworkall").count()
}

#[test]
fn a_stand_spans_nodes_on_one_vxlan_vnet_and_students_stay_apart() {
    let (sim, rt, server) = served_in_process();
    let env = token_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("span.rhai");
    std::fs::write(&script, SPANNING).unwrap();
    let script = script.to_str().unwrap();

    // The plan shows the zone, each VNet and its grant.
    let out = stand(dir.path(), &["plan", script], &env);
    let shown = text(&out);
    assert!(shown.contains("+ zone   stand"), "{shown}");
    assert_eq!(shown.matches("+ vnet   s").count(), 2, "{shown}");
    assert!(shown.contains("lan of петрова@pve, VNI "), "{shown}");
    assert_eq!(shown.matches("PVESDNUser").count(), 2, "{shown}");

    let out = stand(dir.path(), &["up", script], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 VNets created, SDN applied once"), "{}", text(&out));
    let (a_nodes, a_nets) = nics(&sim, "-ivanov");
    let (b_nodes, b_nets) = nics(&sim, "-petrova");
    assert!(a_nodes.len() >= 2 && b_nodes.len() >= 2, "stands span nodes: {a_nodes:?} {b_nodes:?}");
    assert_eq!(a_nets.len(), 1, "one VNet for ivanov's stand: {a_nets:?}");
    assert_eq!(b_nets.len(), 1);
    assert_ne!(a_nets, b_nets);
    let (a_vnet, b_vnet) = (a_nets.first().unwrap().clone(), b_nets.first().unwrap().clone());
    assert!((2..=8).contains(&a_vnet.len()));
    {
        let st = sim.state();
        let zone = &st.sdn.applied.zones["stand"];
        assert_eq!(zone["type"], "vxlan");
        assert_eq!(zone["peers"], "192.0.2.11,192.0.2.12,192.0.2.13");
        assert!(st.sdn.applied.vnets.contains_key(&a_vnet) && st.sdn.applied.vnets.contains_key(&b_vnet));
        assert_eq!(st.sdn.config, st.sdn.running, "nothing left pending");
        // SDN.Use on each VNet for its owner only.
        let grants: Vec<(String, String)> = st
            .acl
            .iter()
            .filter(|a| a.path.starts_with("/sdn/zones/stand/"))
            .map(|a| (a.path.clone(), a.ugid.clone()))
            .collect();
        assert_eq!(grants.len(), 2, "{grants:?}");
        assert!(grants.contains(&(format!("/sdn/zones/stand/{a_vnet}"), "ivanov@pve".into())));
        assert!(grants.contains(&(format!("/sdn/zones/stand/{b_vnet}"), "петрова@pve".into())));
    }
    assert_eq!(reloads(&sim), 1, "one SDN apply for the run");

    // Isolation across nodes: ivanov may wire his VM to his VNet, not to петрова's.
    let vmid = sim
        .state()
        .vms
        .iter()
        .find(|(_, v)| v.config.get("name").map(String::as_str) == Some("b-ivanov"))
        .map(|(id, v)| (*id, v.node.clone()))
        .unwrap();
    let ivanov = sim.session("ivanov@pve");
    let set = |bridge: &str| {
        ApiRequest::put(format!("/nodes/{}/qemu/{}/config", vmid.1, vmid.0))
            .param("net1", format!("virtio,bridge={bridge}"))
    };
    let theirs = rt.block_on(ivanov.exec(set(&b_vnet))).unwrap_err();
    assert!(theirs.to_string().contains(&format!("/sdn/zones/stand/{b_vnet}, SDN.Use")), "{theirs}");
    rt.block_on(ivanov.exec(set(&a_vnet))).unwrap();

    // A second `up` changes nothing and applies nothing.
    let out = stand(dir.path(), &["up", script], &env);
    assert!(text(&out).contains("nothing to do") || out.status.success(), "{}", text(&out));
    assert_eq!(reloads(&sim), 1);

    // `status` lists each stand's VNet as its `lan`.
    let out = stand(dir.path(), &["status", "span", "--output", "json"], &env);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (user, vnet) in [("ivanov@pve", &a_vnet), ("петрова@pve", &b_vnet)] {
        let stand = v["stands"].as_array().unwrap().iter().find(|s| s["user"] == user).unwrap();
        let nets = stand["bridges"].as_array().unwrap();
        assert_eq!(nets.len(), 1, "{nets:?}");
        assert_eq!(
            (&nets[0]["alias"], &nets[0]["zone"], &nets[0]["iface"]),
            (&"lan".into(), &"stand".into(), &vnet.as_str().into())
        );
        assert!(nets[0]["node"].is_null() && nets[0]["active"] == true, "{nets:?}");
    }
    let out = stand(dir.path(), &["status", "span"], &env);
    assert!(text(&out).contains(&format!("lan: stand/{a_vnet}")), "{}", text(&out));

    // `up --prune` of the same script removes nothing; without петрова it removes her VMs and
    // her VNet only, in one SDN apply.
    let out = stand(dir.path(), &["up", "--yes", script, "--prune", "--output", "json"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.state().sdn.applied.vnets.contains_key(&a_vnet) && sim.state().sdn.applied.vnets.contains_key(&b_vnet));
    assert_eq!(reloads(&sim), 1);
    let alone = dir.path().join("span.rhai");
    std::fs::write(&alone, SPANNING.replace(", \"петрова@pve\"", "")).unwrap();
    let out = stand(dir.path(), &["up", "--yes", script, "--prune"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pruned 3 VMs, 0 bridges, 1 VNet, 1 pool, 1 user"), "{}", text(&out));
    {
        let st = sim.state();
        assert!(st.sdn.applied.vnets.contains_key(&a_vnet), "ivanov's VNet stays");
        assert!(!st.sdn.applied.vnets.contains_key(&b_vnet), "петрова's VNet goes");
        assert_eq!(st.sdn.config, st.sdn.running, "nothing left pending");
    }
    assert_eq!(reloads(&sim), 2);

    // A VM that is not the lab's, wired to ivanov's VNet, keeps it through `down`.
    let root = sim.session("root@pam");
    let clone = ApiRequest::post("/nodes/pve1/qemu/103/clone").param("newid", "950").param("name", "other");
    rt.block_on(root.task(clone)).unwrap();
    let wire = ApiRequest::put("/nodes/pve1/qemu/950/config").param("net1", format!("virtio,bridge={a_vnet}"));
    rt.block_on(root.exec(wire)).unwrap();
    let out = stand(dir.path(), &["down", "--yes", "span"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("removed 3 VMs, 0 bridges, 1 pool, 1 user"), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("keeping VNet {a_vnet} of zone stand: VM 950 still wired to it")),
        "{}",
        text(&out)
    );
    assert!(sim.state().sdn.applied.vnets.contains_key(&a_vnet));
    assert_eq!(reloads(&sim), 2, "nothing to apply");

    // Unwired, the next `down` removes it and applies once; the zone stays for other labs.
    rt.block_on(root.exec(ApiRequest::put("/nodes/pve1/qemu/950/config").param("delete", "net1"))).unwrap();
    let out = stand(dir.path(), &["down", "--yes", "span"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("removed 0 VMs, 0 bridges, 1 VNet, 0 pools, 0 users"), "{}", text(&out));
    let st = sim.state();
    assert!(st.sdn.applied.vnets.is_empty(), "{:?}", st.sdn.applied.vnets);
    assert!(st.sdn.applied.zones.contains_key("stand"));
    assert!(!st.acl.iter().any(|a| a.path.starts_with("/sdn/zones/stand/")));
    drop(st);
    assert_eq!(reloads(&sim), 3);
}

#[test]
fn placement_across_nodes_without_vxlan_and_bad_zones_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |script: &str| {
        let path = dir.path().join("bad.rhai");
        std::fs::write(&path, script).unwrap();
        stand(dir.path(), &["--sim", "plan", path.to_str().unwrap()], &[])
    };
    let out = plan("lab(#{ spread: true });");
    assert!(!out.status.success());
    assert!(text(&out).contains("add `network: \"vxlan\"`"), "{}", text(&out));
    let out = plan(
        "let u = create_user(\"a@pve\"); place(u, \"pve1\"); let lan = alias(u, \"lan\");
         clone(u, #{ template: \"debian-12\", name: \"x\", nets: [lan], node: \"pve2\" });",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("bad.rhai:2"), "{}", text(&out));
    assert!(text(&out).contains("lab(#{ network: \"vxlan\" })"), "{}", text(&out));
    let out = plan("lab(#{ network: \"vxlan\", zone: \"labs-zone-1\" });");
    assert!(text(&out).contains("not a valid SDN zone id"), "{}", text(&out));
    let out = plan("lab(#{ network: \"mesh\" });");
    assert!(text(&out).contains("`network` is \"bridges\" (default) or \"vxlan\""), "{}", text(&out));
    // Pinning a VM without private networks to another node is fine.
    let out = plan(
        "let u = create_user(\"a@pve\"); place(u, \"pve1\");
         clone(u, #{ template: \"debian-12\", name: \"x\", nets: [\"vmbr0\"], node: \"pve3\" });",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("on pve3"), "{}", text(&out));
}

#[tokio::test]
async fn the_simulated_sdn_keeps_changes_pending_until_applied_and_follows_pve_8_and_9() {
    let sim = stand::sim::Sim::default_instant();
    let root = sim.session("root@pam");
    let post = |path: &str| ApiRequest::post(path.to_string());
    root.exec(post("/cluster/sdn/zones").param("zone", "z1").param("type", "vxlan").param("peers", "192.0.2.11"))
        .await
        .unwrap();
    let e =
        root.exec(post("/cluster/sdn/zones").param("zone", "toolongzone").param("type", "simple")).await.unwrap_err();
    assert!(e.to_string().contains("can't be more length than 8 characters"), "{e}");
    let e = root.exec(post("/cluster/sdn/vnets").param("vnet", "v1").param("zone", "z1")).await.unwrap_err();
    assert!(e.to_string().contains("missing vxlan tag"), "{e}");
    root.exec(post("/cluster/sdn/vnets").param("vnet", "v1").param("zone", "z1").param("tag", 100)).await.unwrap();
    let e = root
        .exec(post("/cluster/sdn/vnets").param("vnet", "v2").param("zone", "z1").param("tag", 100))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("vxlan tag 100 already exist in vnet v1"), "{e}");
    let pending: Vec<serde_json::Value> =
        root.data(ApiRequest::get("/cluster/sdn/vnets").param("pending", 1)).await.unwrap();
    assert_eq!(pending[0]["state"], "new");
    // Not a bridge anywhere before the apply; on every node after it.
    assert!(!sim.state().sdn.bridge_on("pve2", "v1"));
    let upid = root.apply_sdn().await.unwrap();
    assert!(upid.to_string().contains(":reloadnetworkall:"), "{upid}");
    root.wait_task(&upid, stand::pve::WaitPolicy::default()).await.unwrap();
    assert!(sim.state().sdn.bridge_on("pve2", "v1"));
    let pending: Vec<serde_json::Value> =
        root.data(ApiRequest::get("/cluster/sdn/vnets").param("pending", 1)).await.unwrap();
    assert!(pending[0].get("state").is_none());
    // PVE 8 knows no SDN lock tokens or fabrics (PVE 9 added both).
    let e = root
        .exec(
            post("/cluster/sdn/vnets").param("vnet", "v3").param("zone", "z1").param("tag", 7).param("lock-token", "x"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("lock-token"), "{e}");
    // A user without SDN.Allocate cannot make a zone.
    sim.state().users.insert("eve@pve".into(), Default::default());
    let e = sim
        .session("eve@pve")
        .exec(post("/cluster/sdn/zones").param("zone", "z2").param("type", "simple"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/sdn/zones, SDN.Allocate"), "{e}");
}

/// The class page draws a stand's VNet by its alias, as it does a bridge.
#[tokio::test(start_paused = true)]
async fn the_class_page_draws_a_stands_vnet_by_its_alias() {
    use std::sync::Arc;

    use stand::apply::apply;
    use stand::plan::Snapshot;
    use stand::pve::Pve;
    use stand::script::{RunOptions, run_source};
    use stand::serve::{ServeConfig, router};

    use super::serve::{Client, PASSWORD, backend, fast};

    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let sim = stand::sim::Sim::default_instant();
    let pve: Arc<dyn Pve> = Arc::new(sim.client());
    let snap = Arc::new(Snapshot::take(&*pve).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { lab: Some("span".into()), ..RunOptions::default() };
    let mut plan = run_source("span", dir.path(), SPANNING, snap.clone(), &opts).unwrap().plan;
    for u in plan.users.iter_mut().filter(|u| u.new_password) {
        u.password = Some(PASSWORD.to_string());
    }
    let report = apply(pve, &plan, snap, &fast()).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let (_, nets) = nics(&sim, "-ivanov");
    let vnet = nets.first().unwrap().clone();

    let app = router(backend(&sim), ServeConfig::default());
    let mut c = Client::new(&app);
    c.log_in("ivanov@pve", PASSWORD).await;
    let (_, _, page) = c.get("/").await;
    assert!(page.contains("<svg") && page.contains(&format!("lan ({vnet})")), "the VNet in the picture:\n{page}");
}
