//! The simulator behaves as Proxmox VE does, seen through the `Pve` trait.

use std::time::Duration;

use stand::pve::{ApiRequest, BridgeParams, ClientOptions, CloneParams, Params, Pve, PveError, PveExt, WaitPolicy};
use stand::sim::{FaultSpec, Fixture, LatencyModel, Sim, SimOptions};

fn realistic(seed: u64) -> Sim {
    Sim::new(
        &Fixture::default_cluster(),
        SimOptions { latency: LatencyModel::realistic(), time_scale: 1.0, faults: FaultSpec::default(), seed },
    )
}

fn linked(newid: u32, name: &str, target: &str) -> CloneParams {
    CloneParams { newid, name: Some(name.into()), target: Some(target.into()), ..Default::default() }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn status(e: &PveError) -> u16 {
    e.status().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn parallel_linked_clones_of_one_template_contend_for_the_storage_lock() {
    let sim = realistic(1);
    let pve = sim.session("root@pam");
    let mut upids = Vec::new();
    for i in 0..40u32 {
        upids.push((200 + i, pve.clone_vm("pve1", 103, &linked(200 + i, &format!("c{i}"), "pve1")).await.unwrap()));
    }
    let mut ok = 0;
    let mut timeouts = 0;
    for (newid, upid) in &upids {
        match pve.wait_task(upid, WaitPolicy::default()).await {
            Ok(_) => {
                ok += 1;
                assert!(pve.vm_config("pve1", *newid).await.unwrap().get("lock").is_none(), "lock dropped after clone");
            }
            Err(PveError::TaskFailed { exitstatus, .. }) => {
                assert_eq!(exitstatus, "clone failed: cfs-lock 'storage-nfs-shared' error: got lock request timeout");
                timeouts += 1;
                let gone = pve.vm_config("pve1", *newid).await.unwrap_err();
                assert!(gone.to_string().contains("does not exist"), "a failed clone leaves no VM: {gone}");
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(ok >= 10, "clones within the lock timeout succeed ({ok})");
    assert!(timeouts > 0, "40 clones at once on one shared storage must hit the 10 s cfs lock timeout");
    assert_eq!(ok + timeouts, 40);
}

#[tokio::test(start_paused = true)]
async fn config_on_a_vm_that_is_still_cloning_is_refused_until_the_clone_ends() {
    let sim = realistic(2);
    let pve = sim.session("root@pam");
    let upid = pve.clone_vm("pve1", 101, &linked(300, "web", "pve2")).await.unwrap();
    assert_eq!(upid.task_type, "qmclone");
    assert_eq!(upid.id, "101", "a clone task carries the source VMID");
    let st = pve.task_status(&upid).await.unwrap();
    assert_eq!(st.status, "running");
    assert!(st.exitstatus.is_none());
    let cfg = pve.vm_config("pve2", 300).await.unwrap();
    assert_eq!(cfg.get("lock").as_deref(), Some("clone"));
    let err = pve.set_vm_config("pve2", 300, params(&[("memory", "1024")])).await.unwrap_err();
    assert_eq!(status(&err), 500);
    assert_eq!(err.failure().unwrap().message, "VM is locked (clone)");
    let done = pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    assert_eq!(done.exitstatus.as_deref(), Some("OK"));
    pve.set_vm_config("pve2", 300, params(&[("memory", "1024")])).await.unwrap();
    assert_eq!(pve.vm_config("pve2", 300).await.unwrap().memory_mib(), Some(1024));
}

#[tokio::test(start_paused = true)]
async fn clone_gives_new_macs_and_linked_volumes_and_keeps_the_nic_model() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let upid = pve.clone_vm("pve1", 100, &linked(400, "r1", "pve3")).await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let src = pve.vm_config("pve1", 100).await.unwrap();
    let cfg = pve.vm_config("pve3", 400).await.unwrap();
    let (src_net, new_net) = (src.get("net0").unwrap(), cfg.get("net0").unwrap());
    assert!(new_net.starts_with("vmxnet3="), "{new_net}");
    assert_ne!(src_net, new_net, "clone always changes the MAC");
    assert!(new_net.starts_with("vmxnet3=BC:24:11:"), "a new MAC with the Proxmox prefix: {new_net}");
    assert!(cfg.get("scsi0").unwrap().starts_with("nfs-shared:100/base-100-disk-0.qcow2/400/vm-400-disk-0.qcow2"));
    assert!(cfg.get("template").is_none());
    assert!(src.is_template());
    // A template's cloud-init drive is copied into the clone's own volume (qemu-server
    // clone_vm copies cloud-init drives in full), not shared with the template.
    assert_eq!(
        pve.vm_config("pve1", 103).await.unwrap().get("ide2").unwrap(),
        "nfs-shared:103/vm-103-cloudinit.qcow2,media=cdrom"
    );
    let upid = pve.clone_vm("pve1", 103, &linked(401, "pc", "pve2")).await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let cfg = pve.vm_config("pve2", 401).await.unwrap();
    assert_eq!(cfg.get("ide2").unwrap(), "nfs-shared:401/vm-401-cloudinit.qcow2,media=cdrom");
}

#[tokio::test(start_paused = true)]
async fn clone_checks_run_before_the_task_like_qemu_server() {
    let f = Fixture::parse(
        "nodes: [{name: a}, {name: b}]\nstorages: [{id: local-lvm, type: lvmthin}, {id: local, type: dir, content: [iso]}]\ntemplates: [{vmid: 100, name: t, node: a, storage: local-lvm}]\n",
        "test",
    )
    .unwrap();
    let sim = Sim::new(&f, SimOptions::default());
    let pve = sim.session("root@pam");
    let cross = pve.clone_vm("a", 100, &linked(200, "x", "b")).await.unwrap_err();
    assert_eq!(cross.failure().unwrap().message, "can't clone VM to node 'b' (VM uses local storage)");
    let with_storage = CloneParams { storage: Some("local-lvm".into()), ..linked(200, "x", "a") };
    let e = pve.clone_vm("a", 100, &with_storage).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "parameter 'storage' not allowed for linked clones");
    let no_images = CloneParams { storage: Some("local".into()), full: Some(true), ..linked(200, "x", "a") };
    let e = pve.clone_vm("a", 100, &no_images).await.unwrap_err();
    assert_eq!(e.failure().unwrap().errors["storage"], "storage 'local' does not support vm images");
    let e = pve.clone_vm("a", 100, &linked(100, "x", "a")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "unable to create VM 100: config file already exists");
    let e = pve.clone_vm("a", 555, &linked(200, "x", "a")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "Configuration file 'nodes/a/qemu-server/555.conf' does not exist");
    let e =
        pve.clone_vm("a", 100, &CloneParams { pool: Some("nope".into()), ..linked(200, "x", "a") }).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "pool 'nope' does not exist");
}

#[tokio::test(start_paused = true)]
async fn pending_bridges_are_listed_but_not_usable_until_the_network_is_applied() {
    let sim = realistic(3);
    let pve = sim.session("root@pam");
    let upid = pve.clone_vm("pve1", 103, &linked(500, "h1", "pve2")).await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let bridge = BridgeParams {
        iface: "vmbr1000".into(),
        autostart: true,
        comments: Some("stand: lab=t".into()),
        ..Default::default()
    };
    pve.create_bridge("pve2", &bridge).await.unwrap();
    let again = pve.create_bridge("pve2", &bridge).await.unwrap_err();
    assert_eq!(again.failure().unwrap().errors["iface"], "interface already exists");
    let net = pve.network("pve2").await.unwrap();
    let b = net.ifaces.iter().find(|i| i.iface == "vmbr1000").expect("pending bridge is listed");
    assert!(!b.active, "a pending bridge is not active");
    assert!(net.changes.as_deref().unwrap().contains("+iface vmbr1000 inet manual"));
    pve.set_vm_config("pve2", 500, params(&[("net1", "virtio,bridge=vmbr1000,firewall=1")])).await.unwrap();
    let start = pve.vm_power("pve2", 500, "start").await.unwrap();
    let err = pve.wait_task(&start, WaitPolicy::default()).await.unwrap_err();
    assert!(err.to_string().contains("bridge 'vmbr1000' does not exist"), "{err}");
    let reload = pve.apply_network("pve2").await.unwrap();
    assert_eq!((reload.task_type.as_str(), reload.id.as_str()), ("srvreload", "networking"));
    pve.wait_task(&reload, WaitPolicy::default()).await.unwrap();
    let net = pve.network("pve2").await.unwrap();
    assert!(net.ifaces.iter().find(|i| i.iface == "vmbr1000").unwrap().active);
    assert!(net.changes.is_none());
    let start = pve.vm_power("pve2", 500, "start").await.unwrap();
    pve.wait_task(&start, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.vm_status("pve2", 500).await.unwrap().status, "running");
}

#[tokio::test(start_paused = true)]
async fn reverting_the_network_drops_staged_changes() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    pve.create_bridge("pve1", &BridgeParams { iface: "vmbr1001".into(), ..Default::default() }).await.unwrap();
    pve.revert_network("pve1").await.unwrap();
    let net = pve.network("pve1").await.unwrap();
    assert!(net.ifaces.iter().all(|i| i.iface != "vmbr1001"));
    assert!(net.changes.is_none());
}

async fn make_student(pve: &impl PveExt, user: &str, pool: &str) {
    pve.create_user(user, Some("Passw0rd-x"), None).await.unwrap();
    pve.create_pool(pool, None).await.unwrap();
    pve.set_acl(&format!("/pool/{pool}"), "PVEVMAdmin", Some(user), None, false).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pool_limited_user_gets_403_on_another_pool_and_sees_only_their_vms() {
    let sim = Sim::default_instant();
    let root = sim.session("root@pam");
    make_student(&root, "s1@pve", "lab-s1").await;
    make_student(&root, "s2@pve", "lab-s2").await;
    root.set_acl("/vms/101", "PVETemplateUser", Some("s1@pve"), None, false).await.unwrap();
    root.set_acl("/storage/nfs-shared", "PVEDatastoreUser", Some("s1@pve"), None, false).await.unwrap();
    let s1 = sim.session("s1@pve");
    let mine = CloneParams { pool: Some("lab-s1".into()), ..linked(600, "mine", "pve1") };
    let upid = s1.clone_vm("pve1", 101, &mine).await.unwrap();
    s1.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let theirs = CloneParams { pool: Some("lab-s2".into()), ..linked(601, "theirs", "pve1") };
    let e = s1.clone_vm("pve1", 101, &theirs).await.unwrap_err();
    assert_eq!(status(&e), 403);
    assert_eq!(e.failure().unwrap().message, "Permission check failed (/pool/lab-s2, VM.Allocate)");
    let vms: Vec<u32> = s1.resources(Some("vm")).await.unwrap().iter().filter_map(|r| r.vmid).collect();
    assert_eq!(vms, vec![101, 600], "the template (audit by PVETemplateUser) and the own VM");
    assert!(s1.pools().await.unwrap().is_empty(), "PVEVMAdmin has no Pool.Audit: pools stay hidden");
    root.set_acl("/pool/lab-s1", "PVEPoolUser", Some("s1@pve"), None, false).await.unwrap();
    let pools: Vec<String> = s1.pools().await.unwrap().into_iter().map(|p| p.poolid).collect();
    assert_eq!(pools, vec!["lab-s1"], "never another student's pool");
    let s2 = sim.session("s2@pve");
    let e = s2.vm_config("pve1", 600).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "Permission check failed (/vms/600, VM.Audit)");
}

#[tokio::test(start_paused = true)]
async fn students_need_sdn_use_on_a_bridge_to_plug_a_nic_into_it() {
    let sim = Sim::default_instant();
    let root = sim.session("root@pam");
    make_student(&root, "s1@pve", "lab-s1").await;
    let upid = root
        .clone_vm("pve1", 103, &CloneParams { pool: Some("lab-s1".into()), ..linked(700, "h", "pve1") })
        .await
        .unwrap();
    root.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let s1 = sim.session("s1@pve");
    let e = s1.set_vm_config("pve1", 700, params(&[("net1", "virtio,bridge=vmbr0")])).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)");
    root.set_acl("/sdn/zones/localnetwork/vmbr0", "PVESDNUser", Some("s1@pve"), None, false).await.unwrap();
    s1.set_vm_config("pve1", 700, params(&[("net1", "virtio,bridge=vmbr0")])).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tokens_with_privilege_separation_have_only_their_own_acls() {
    let sim = Sim::default_instant();
    let root = sim.session("root@pam");
    root.create_user("ops@pve", None, None).await.unwrap();
    root.set_acl("/", "PVEAuditor", Some("ops@pve"), None, false).await.unwrap();
    sim.add_token("ops@pve", "sep", true).unwrap();
    sim.add_token("ops@pve", "full", false).unwrap();
    let full = sim.token_session("ops@pve", "full");
    assert_eq!(full.resources(Some("vm")).await.unwrap().len(), 4);
    let sep = sim.token_session("ops@pve", "sep");
    assert!(sep.resources(Some("vm")).await.unwrap().is_empty(), "a privsep token without ACLs sees nothing");
    let e = sep.vm_config("pve1", 100).await.unwrap_err();
    assert_eq!(status(&e), 403);
    let e = sep
        .call(stand::pve::ApiRequest::put("/access/password").param("userid", "ops@pve").param("password", "x1234567"))
        .await
        .unwrap_err();
    assert_eq!(
        e.failure().unwrap().message,
        "Permission check failed (URI '/api2/json/access/password' not available with API token, need proper ticket.)"
    );
}

#[tokio::test(start_paused = true)]
async fn errors_have_pves_shapes() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    assert_eq!(pve.nextid().await.unwrap(), 104);
    let body = pve.call(stand::pve::ApiRequest::get("/cluster/nextid")).await.unwrap();
    assert_eq!(body["data"], serde_json::json!("104"), "nextid is a JSON string on the wire");
    let e = pve.call(stand::pve::ApiRequest::get("/cluster/nextid").param("vmid", 100)).await.unwrap_err();
    assert_eq!(e.failure().unwrap().errors["vmid"], "VM 100 already exists");
    assert_eq!(e.failure().unwrap().message, "Parameter verification failed.");
    let e = pve.call(stand::pve::ApiRequest::get("/nodes/pve1/bogus")).await.unwrap_err();
    assert_eq!(status(&e), 501);
    let e = pve.call(stand::pve::ApiRequest::post("/nodes/pve1/qemu/100/clone").param("newid", "x")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().errors["newid"], "type check ('integer') failed - got 'x'");
    assert!(e.to_string().contains("newid: type check"), "one readable line: {e}");
}

#[tokio::test(start_paused = true)]
async fn destroy_refuses_running_vms_and_templates_with_linked_clones() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(800, "d", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let s = pve.vm_power("pve1", 800, "start").await.unwrap();
    pve.wait_task(&s, WaitPolicy::default()).await.unwrap();
    let e = pve.delete_vm("pve1", 800).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "VM 800 is running - destroy failed");
    let t = pve.delete_vm("pve1", 103).await.unwrap();
    let e = pve.wait_task(&t, WaitPolicy::default()).await.unwrap_err();
    assert!(e.to_string().contains("still in use by linked cloned VM 800"), "{e}");
    let s = pve.vm_power("pve1", 800, "stop").await.unwrap();
    pve.wait_task(&s, WaitPolicy::default()).await.unwrap();
    let d = pve.delete_vm("pve1", 800).await.unwrap();
    pve.wait_task(&d, WaitPolicy::default()).await.unwrap();
    assert!(pve.vm_config("pve1", 800).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn task_list_and_log_look_like_pve() {
    let sim = realistic(4);
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(900, "t", "pve1")).await.unwrap();
    let running = pve.tasks("pve1").await.unwrap();
    assert!(running[0].status.is_none() && running[0].endtime == 0, "a running task has no status yet");
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let list = pve.tasks("pve1").await.unwrap();
    assert_eq!(list[0].upid, up.to_string());
    assert_eq!(list[0].status.as_deref(), Some("OK"));
    let log = pve.task_log(&up).await.unwrap();
    assert_eq!(log.last().map(String::as_str), Some("TASK OK"));
    assert!(log[0].starts_with("create linked clone of drive scsi0"));
}

#[tokio::test(start_paused = true)]
async fn snapshots_can_be_taken_rolled_back_and_deleted() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(950, "s", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let t = pve.snapshot("pve1", 950, "clean", "").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    pve.set_vm_config("pve1", 950, params(&[("memory", "4096")])).await.unwrap();
    let t = pve.rollback("pve1", 950, "clean", false).await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.vm_config("pve1", 950).await.unwrap().memory_mib(), Some(1024));
    let names: Vec<String> =
        pve.snapshots("pve1", 950).await.unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["clean", "current"]);
    let t = pve.delete_snapshot("pve1", 950, "clean").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.snapshots("pve1", 950).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn seeded_faults_are_deterministic() {
    async fn run(seed: u64) -> Vec<String> {
        let faults: FaultSpec = "http5xx=0.2,reset=0.1,lock_timeout=0.2".parse().unwrap();
        let sim = Sim::new(&Fixture::default_cluster(), SimOptions { seed, ..SimOptions::default() });
        let pve = sim.client_with(ClientOptions { attempts: 1, ..ClientOptions::default() });
        pve.version().await.unwrap(); // logged in before the faults begin
        sim.set_faults(faults);
        let mut out = Vec::new();
        for i in 0..40 {
            let r = pve.set_vm_config("pve1", 103, params(&[("description", &format!("n{i}"))])).await;
            out.push(match r {
                Ok(()) => "ok".to_string(),
                Err(e) => e.status().map(|s| s.to_string()).unwrap_or_else(|| "reset".into()),
            });
        }
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await, "same seed, same faults");
    assert_ne!(a, run(8).await, "another seed, other faults");
    assert!(a.iter().any(|x| x == "500") && a.iter().any(|x| x == "ok") && a.iter().any(|x| x == "reset"));
}

#[tokio::test(start_paused = true)]
async fn a_reset_after_the_write_still_applied_it() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions { seed: 3, ..SimOptions::default() });
    let pve = sim.client_with(ClientOptions { attempts: 1, ..ClientOptions::default() });
    pve.version().await.unwrap(); // logged in before the faults begin
    sim.set_faults("reset=1".parse().unwrap());
    let mut applied = 0;
    for i in 0..20 {
        let _ = pve.create_pool(&format!("p{i}"), None).await.unwrap_err();
        if sim.state().pools.contains_key(&format!("p{i}")) {
            applied += 1;
        }
    }
    assert!(applied > 0 && applied < 20, "some writes land before the connection drops ({applied}/20)");
}

#[tokio::test(start_paused = true)]
async fn offline_nodes_do_not_answer_and_the_cluster_keeps_quorum_with_two_of_three() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    sim.set_node_online("pve3", false);
    let e = pve.vms("pve3").await.unwrap_err();
    assert_eq!(status(&e), 595);
    let up = pve.clone_vm("pve1", 103, &linked(990, "q", "pve2")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    sim.set_node_online("pve2", false);
    let e = pve.clone_vm("pve1", 103, &linked(991, "q", "pve1")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "cluster not ready - no quorum?");
}

#[tokio::test(start_paused = true)]
async fn saved_state_is_the_same_cluster_after_loading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(321, "kept", "pve2")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    sim.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = Sim::load(&path, SimOptions::default()).unwrap();
    let cfg = again.session("root@pam").vm_config("pve2", 321).await.unwrap();
    assert_eq!(cfg.get("name").as_deref(), Some("kept"));
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Offline migration as qemu-server does it (semantics.md §13): the config moves, local
/// disks are copied at the storage's bandwidth, shared ones stay; `lock: migrate` meanwhile.
#[tokio::test(start_paused = true)]
async fn migrate_moves_the_config_copies_local_disks_and_refuses_what_pve_refuses() {
    let sim = realistic(40);
    let pve = sim.session("root@pam");
    let full = CloneParams {
        newid: 300,
        name: Some("local".into()),
        full: Some(true),
        storage: Some("local-lvm".into()),
        ..Default::default()
    };
    let upid = pve.clone_vm("pve1", 103, &full).await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let migrate =
        |node: &'static str, vmid: u32, target: &'static str, online: bool| pve.migrate_vm(node, vmid, target, online);

    let e = migrate("pve1", 300, "pve1", false).await.unwrap_err();
    assert_eq!((status(&e), e.failure().unwrap().message.as_str()), (500, "target is local node."));
    let e = migrate("pve1", 300, "pve9", false).await.unwrap_err();
    assert_eq!(status(&e), 400, "an unknown target is a parameter error: {e}");

    let started = tokio::time::Instant::now();
    let upid = migrate("pve1", 300, "pve2", true).await.unwrap();
    assert_eq!((upid.task_type.as_str(), upid.id.as_str()), ("qmigrate", "300"));
    assert_eq!(pve.vm_config("pve1", 300).await.unwrap().get("lock").as_deref(), Some("migrate"));
    let e = pve.set_vm_config("pve1", 300, params(&[("memory", "512")])).await.unwrap_err();
    assert!(e.to_string().contains("VM is locked (migrate)"), "{e}");
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let local_copy = started.elapsed();
    let log = pve.task_log(&upid).await.unwrap();
    assert!(log.iter().any(|l| l == "VM isn't running. Doing offline migration instead."), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("copying local disk 'local-lvm:")), "{log:?}");
    let gone = pve.vm_config("pve1", 300).await.unwrap_err();
    assert!(gone.to_string().contains("Configuration file 'nodes/pve1/qemu-server/300.conf' does not exist"));
    let cfg = pve.vm_config("pve2", 300).await.unwrap();
    assert!(cfg.get("lock").is_none() && cfg.get("scsi0").is_some_and(|d| d.starts_with("local-lvm:")), "{cfg:?}");

    // A template on shared storage moves without copying: the node changes, nothing else.
    let started = tokio::time::Instant::now();
    let upid = migrate("pve1", 103, "pve3", false).await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    assert!(started.elapsed() < local_copy, "no copy for shared volumes ({:?} vs {local_copy:?})", started.elapsed());
    assert_eq!(pve.vm_config("pve3", 103).await.unwrap().get("template").as_deref(), Some("1"));

    // A running VM needs `online`.
    let upid = pve.vm_power("pve2", 300, "start").await.unwrap();
    pve.wait_task(&upid, WaitPolicy::default()).await.unwrap();
    let e = migrate("pve2", 300, "pve1", false).await.unwrap_err();
    assert!(e.to_string().contains("can't migrate running VM without --online"), "{e}");
}

/// What proxmoxer and fakepve found missing or different from PVE.
#[tokio::test]
async fn shapes_that_third_party_clients_rely_on() {
    use stand::pve::ApiRequest;
    let sim = Sim::default_instant();
    sim.add_token("root@pam", "ci", false).unwrap();
    let pve = sim.session("root@pam");

    // GET .../status is an index; a missing VM is PVE's 500.
    let index = pve.data::<serde_json::Value>(ApiRequest::get("/nodes/pve1/qemu/103/status")).await.unwrap();
    let subs: Vec<&str> = index.as_array().unwrap().iter().filter_map(|v| v["subcmd"].as_str()).collect();
    assert!(subs.contains(&"current") && subs.contains(&"start") && subs.contains(&"stop"), "{index}");
    let e = pve.call(ApiRequest::get("/nodes/pve1/qemu/999/status")).await.unwrap_err();
    assert_eq!(status(&e), 500);
    assert!(e.to_string().contains("Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"));

    // Pools and groups: `poolid` named, empty keys omitted (never `null`).
    pve.create_pool("bare", None).await.unwrap();
    let pool = pve.data::<serde_json::Value>(ApiRequest::get("/pools/bare")).await.unwrap();
    assert_eq!(pool["poolid"], "bare");
    assert!(pool.get("comment").is_none(), "{pool}");
    pve.create_group("g1", None).await.unwrap();
    let groups = pve.data::<serde_json::Value>(ApiRequest::get("/access/groups")).await.unwrap();
    assert!(groups.as_array().unwrap().iter().all(|g| g.get("comment").is_none_or(|c| !c.is_null())), "{groups}");

    // /nodes carries each node's certificate fingerprint.
    let nodes = pve.data::<serde_json::Value>(ApiRequest::get("/nodes")).await.unwrap();
    let fp = nodes[0]["ssl_fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 95, "SHA-256 as AA:BB:..: {fp}");

    // A token's task lists user and tokenid apart.
    let by_token = sim.token_session("root@pam", "ci");
    let full = CloneParams { newid: 301, name: Some("t".into()), ..Default::default() };
    by_token.clone_vm("pve1", 103, &full).await.unwrap();
    let tasks = pve.data::<serde_json::Value>(ApiRequest::get("/nodes/pve1/tasks")).await.unwrap();
    let t = tasks.as_array().unwrap().iter().find(|t| t["type"] == "qmclone").unwrap();
    assert_eq!((t["user"].as_str(), t["tokenid"].as_str()), (Some("root@pam"), Some("ci")), "{t}");

    // status/current of a stopped VM has the counters too.
    let cur = pve.data::<serde_json::Value>(ApiRequest::get("/nodes/pve1/qemu/103/status/current")).await.unwrap();
    for key in ["cpu", "diskread", "diskwrite", "netin", "netout", "mem", "maxmem", "uptime"] {
        assert!(cur.get(key).is_some(), "status/current has {key}: {cur}");
    }

    // newid=99 fails the format before the range, as PVE's verifier does.
    let e = pve.call(ApiRequest::post("/nodes/pve1/qemu/103/clone").param("newid", 99)).await.unwrap_err();
    match e {
        PveError::Api { failure, .. } => {
            assert_eq!(failure.errors.get("newid").map(String::as_str), Some("value does not look like a valid VM ID"))
        }
        other => panic!("{other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_the_config_and_starts_the_vm_when_asked() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(951, "r", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let t = pve.snapshot("pve1", 951, "start", "").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    pve.set_vm_config("pve1", 951, params(&[("cores", "4")])).await.unwrap();
    let t = pve.vm_power("pve1", 951, "start").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();

    // Rolling back a running VM stops it; without `start` it stays off.
    let t = pve.rollback("pve1", 951, "start", false).await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.vm_status("pve1", 951).await.unwrap().status, "stopped");
    assert_eq!(pve.vm_config("pve1", 951).await.unwrap().get("cores").as_deref(), Some("1"));
    // With `start` it runs again at the end of the same task.
    let t = pve.rollback("pve1", 951, "start", true).await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.vm_status("pve1", 951).await.unwrap().status, "running");
    assert_eq!(pve.vm_config("pve1", 951).await.unwrap().get("lock"), None);

    // A VM with snapshots cannot become a template (qemu-server `template`).
    let t = pve.vm_power("pve1", 951, "stop").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    let e = pve.call(ApiRequest::post("/nodes/pve1/qemu/951/template")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "unable to create template, because VM contains snapshots");
}

#[tokio::test(start_paused = true)]
async fn storage_without_snapshots_refuses_and_names_the_feature() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(952, "raw", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    sim.state()
        .vms
        .get_mut(&952)
        .unwrap()
        .config
        .insert("scsi0".into(), "nfs-shared:952/vm-952-disk-0.raw,size=8G".into());
    let e = pve.snapshot("pve1", 952, "start", "").await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "snapshot feature is not available");
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_guest_and_falls_back_to_stop_only_when_forced() {
    let sim = realistic(1);
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(953, "acpi", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let e = pve.call(ApiRequest::post("/nodes/pve1/qemu/953/status/reboot")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "VM 953 not running");
    pve.set_vm_config("pve1", 953, params(&[("acpi", "0")])).await.unwrap();
    let t = pve.vm_power("pve1", 953, "start").await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    // The guest ignores ACPI: without forceStop the task fails after the timeout.
    let t = pve.shutdown_vm("pve1", 953, 5, false).await.unwrap();
    let e = pve.wait_task(&t, WaitPolicy::default()).await.unwrap_err();
    assert!(e.to_string().contains("VM quit/powerdown failed - got timeout"), "{e}");
    assert_eq!(pve.vm_status("pve1", 953).await.unwrap().status, "running");
    let t = pve.shutdown_vm("pve1", 953, 5, true).await.unwrap();
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert_eq!(pve.vm_status("pve1", 953).await.unwrap().status, "stopped");
    let log = pve.task_log(&t).await.unwrap();
    assert!(log.iter().any(|l| l.contains("terminating now with SIGTERM")), "{log:?}");
}

/// A task's UPID from a call's `data`.
fn upid_of(body: &serde_json::Value) -> stand::pve::Upid {
    body["data"].as_str().unwrap().parse().unwrap()
}

async fn config_value(pve: &impl PveExt, vmid: u32, key: &str) -> String {
    pve.vm_config("pve1", vmid).await.unwrap().get(key).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_disk_grows_in_a_resize_task_and_a_cloud_init_drive_is_allocated_as_a_cdrom() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    let up = pve.clone_vm("pve1", 103, &linked(960, "r", "pve1")).await.unwrap();
    pve.wait_task(&up, WaitPolicy::default()).await.unwrap();
    let resize =
        |size: &str, disk: &str| ApiRequest::put("/nodes/pve1/qemu/960/resize").param("disk", disk).param("size", size);
    let t = upid_of(&pve.call(resize("+2G", "scsi0")).await.unwrap());
    assert_eq!(t.task_type, "resize");
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    assert!(config_value(&pve, 960, "scsi0").await.ends_with(",size=10G"), "8G + 2G");
    let t = upid_of(&pve.call(resize("10240M", "scsi0")).await.unwrap());
    pve.wait_task(&t, WaitPolicy::default()).await.unwrap();
    // Errors of the worker end the task, as in qemu-server's resize_vm.
    for (size, disk, error) in
        [("4G", "scsi0", "shrinking disks is not supported"), ("+1G", "scsi5", "disk 'scsi5' does not exist")]
    {
        let t = upid_of(&pve.call(resize(size, disk)).await.unwrap());
        let e = pve.wait_task(&t, WaitPolicy::default()).await.unwrap_err();
        assert!(e.to_string().contains(error), "{e}");
    }
    let e = pve.call(resize("lots", "scsi0")).await.unwrap_err();
    assert_eq!(status(&e), 400, "the size pattern is the schema's");

    pve.set_vm_config("pve1", 960, params(&[("ide2", "local-lvm:cloudinit"), ("ciuser", "student")])).await.unwrap();
    assert_eq!(config_value(&pve, 960, "ide2").await, "local-lvm:vm-960-cloudinit,media=cdrom");
    let t = upid_of(&pve.call(resize("+1G", "ide2")).await.unwrap());
    let e = pve.wait_task(&t, WaitPolicy::default()).await.unwrap_err();
    assert!(e.to_string().contains("you can't resize a cdrom"), "{e}");
    let e = pve.set_vm_config("pve1", 960, params(&[("ide0", "local:cloudinit")])).await.unwrap_err();
    assert!(e.to_string().contains("ide0 - cloud-init drive is already attached at 'ide2'"), "{e}");
    pve.set_vm_config("pve1", 960, params(&[("ide0", "none,media=cdrom")])).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_subnet_is_read_changed_and_deleted_by_its_id_and_lists_what_its_id_says() {
    let sim = Sim::default_instant();
    let pve = sim.session("root@pam");
    pve.call(ApiRequest::post("/cluster/sdn/zones").param("zone", "z1").param("type", "simple")).await.unwrap();
    pve.call(ApiRequest::post("/cluster/sdn/vnets").param("vnet", "v1").param("zone", "z1")).await.unwrap();
    let add = ApiRequest::post("/cluster/sdn/vnets/v1/subnets").param("subnet", "10.9.0.0/24").param("type", "subnet");
    pve.call(add.param("gateway", "10.9.0.1")).await.unwrap();
    let listed = pve.call(ApiRequest::get("/cluster/sdn/vnets/v1/subnets")).await.unwrap();
    let s = &listed["data"][0];
    assert_eq!(
        (&s["subnet"], &s["id"], &s["cidr"], &s["network"], &s["mask"], &s["zone"]),
        (
            &"z1-10.9.0.0-24".into(),
            &"z1-10.9.0.0-24".into(),
            &"10.9.0.0/24".into(),
            &"10.9.0.0".into(),
            &"24".into(),
            &"z1".into()
        )
    );
    let one = pve.call(ApiRequest::get("/cluster/sdn/vnets/v1/subnets/z1-10.9.0.0-24")).await.unwrap();
    assert_eq!(one["data"]["gateway"], "10.9.0.1");
    pve.call(ApiRequest::put("/cluster/sdn/vnets/v1/subnets/z1-10.9.0.0-24").param("delete", "gateway")).await.unwrap();
    let one = pve.call(ApiRequest::get("/cluster/sdn/vnets/v1/subnets/z1-10.9.0.0-24")).await.unwrap();
    assert!(one["data"].get("gateway").is_none());
    let e = pve.call(ApiRequest::delete("/cluster/sdn/vnets/v1")).await.unwrap_err();
    assert!(e.to_string().contains("Can't delete vnet 'v1', it has subnets"), "{e}");
    pve.call(ApiRequest::delete("/cluster/sdn/vnets/v1/subnets/z1-10.9.0.0-24")).await.unwrap();
    let e = pve.call(ApiRequest::get("/cluster/sdn/vnets/v1/subnets/z1-10.9.0.0-24")).await.unwrap_err();
    assert!(e.to_string().contains("sdn subnet 'z1-10.9.0.0-24' does not exist"), "{e}");
    pve.call(ApiRequest::delete("/cluster/sdn/vnets/v1")).await.unwrap();
}
