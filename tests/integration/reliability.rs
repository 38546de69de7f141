//! Kills, concurrent instructors and student isolation, with the real binary over HTTPS
//! where it matters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use stand::apply::{ApplyOptions, Cause, apply};
use stand::plan::{Marker, ObjectRef, Snapshot};
use stand::pve::{ApiRequest, Pve, PveExt, WaitPolicy};
use stand::script::{RunOptions, run_source};
use stand::sim::{Fixture, LatencyModel, RunningServer, Sim, SimOptions, SimState};

/// Apply options for the in-process simulator: tasks polled soon after they start.
fn quick() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(50), ..WaitPolicy::default() },
        ..ApplyOptions::default()
    }
}

fn lab_script(prefix: &str, users: usize) -> String {
    let list: Vec<String> = (1..=users).map(|i| format!("\"{prefix}{i}@pve\"")).collect();
    format!(
        "for u in users([{}]) {{ let user = create_user(u); place_balanced(user); let lan = alias(user, \"lan\");
            clone(user, #{{ template: \"ecorouter\", name: \"r\", device: \"ecorouter\", nets: [\"vmbr0\", lan], memory: 512 }});
            clone(user, #{{ template: \"debian-12\", name: \"a\", nets: [lan], memory: 512 }});
            clone(user, #{{ template: \"debian-12\", name: \"b\", nets: [lan], memory: 512 }}); }}",
        list.join(", ")
    )
}

/// Serves `sim` over HTTPS on a runtime of its own (the test drives processes meanwhile).
fn serve(sim: &Sim) -> (tokio::runtime::Runtime, RunningServer, Vec<(String, String)>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    let env = vec![
        ("PVE_URL".to_string(), server.url.clone()),
        ("PVE_TOKEN".to_string(), server.token.clone()),
        ("PVE_FINGERPRINT".to_string(), server.fingerprint.clone()),
    ];
    (rt, server, env)
}

fn stand(dir: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stand"));
    c.current_dir(dir).args(args).env_remove("STAND_CLUSTER").envs(env.iter().cloned());
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// VMs carrying `lab`'s marker: name → (vmid, bridges of its NICs).
fn lab_vms(st: &SimState, lab: &str) -> Vec<(String, u32, Vec<String>)> {
    st.vms
        .iter()
        .filter(|(_, v)| {
            v.config.get("description").and_then(|d| Marker::parse(d)).is_some_and(|m| m.get("lab") == Some(lab))
        })
        .map(|(id, v)| {
            let bridges = v
                .config
                .iter()
                .filter(|(k, _)| k.starts_with("net"))
                .filter_map(|(_, n)| n.split(',').find_map(|p| p.strip_prefix("bridge=")).map(str::to_string))
                .collect();
            (v.config.get("name").cloned().unwrap_or_default(), *id, bridges)
        })
        .collect()
}

/// Every VM of `lab` is there once, runs, and its NICs use only vmbr0 and bridges that
/// carry the same lab's and student's marker.
fn assert_lab_intact(st: &SimState, lab: &str, vms: usize) {
    let list = lab_vms(st, lab);
    let names: BTreeSet<_> = list.iter().map(|(n, _, _)| n.clone()).collect();
    assert_eq!((list.len(), names.len()), (vms, vms), "lab {lab}: no duplicates, nothing missing: {list:?}");
    for (name, id, bridges) in &list {
        let vm = &st.vms[id];
        assert!(vm.running && !vm.config.contains_key("lock"), "{name} runs, unlocked");
        let user =
            vm.config.get("description").and_then(|d| Marker::parse(d)).and_then(|m| m.get("user").map(str::to_string));
        for b in bridges.iter().filter(|b| *b != "vmbr0") {
            let iface =
                st.net[&vm.node].active.get(b).unwrap_or_else(|| panic!("{name}: bridge {b} is active on {}", vm.node));
            let marker = iface.comments.as_deref().and_then(Marker::parse).unwrap_or_default();
            assert_eq!(marker.get("lab"), Some(lab), "{name} is on {b}, a bridge of another lab");
            assert_eq!(marker.get("user").map(str::to_string), user, "{name} is on another student's bridge {b}");
        }
    }
}

#[test]
fn stand_up_killed_with_sigkill_at_twenty_moments_then_rerun_converges() {
    let sim = Sim::new(
        &Fixture::default_cluster(),
        SimOptions { latency: LatencyModel::realistic(), time_scale: 0.15, ..SimOptions::default() },
    );
    let (_rt, server, env) = serve(&sim);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("killed.rhai"), lab_script("k", 6)).unwrap();
    // Kill points follow progress, not the wall clock: each run is killed the moment a clone
    // of it appears (so mid-clone), at alternating depths into its work.
    let count = || lab_vms(&sim.state(), "killed").len();
    let mut killed_mid_clone = 0;
    for i in 0..20 {
        let before = count();
        let depth = 1 + i % 3;
        let mut child = stand(dir.path(), &["up", "killed.rhai", "--quiet"], &env).spawn().unwrap();
        loop {
            if count() >= before + depth || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !finished && sim.state().vms.values().any(|v| v.config.get("lock").is_some_and(|l| l == "clone")) {
            killed_mid_clone += 1;
        }
    }
    let out = stand(dir.path(), &["up", "killed.rhai", "--output", "json"], &env).output().unwrap();
    assert!(out.status.success(), "the run after the kills converges: {}", text(&out));
    assert_lab_intact(&sim.state(), "killed", 18);
    eprintln!("{killed_mid_clone} of 20 kills hit a clone in flight");
    assert!(killed_mid_clone >= 3, "the kills hit clones in flight ({killed_mid_clone})");
    let creds = std::fs::read_to_string(dir.path().join("killed-credentials.csv")).unwrap();
    assert_eq!(creds.lines().count(), 7, "every student's password survived the kills:\n{creds}");
    server.shutdown();
}

#[test]
fn two_instructors_deploying_at_once_get_separate_vmids_and_bridges() {
    let sim = Sim::new(
        &Fixture::default_cluster(),
        SimOptions { latency: LatencyModel::realistic(), time_scale: 0.05, ..SimOptions::default() },
    );
    let (_rt, server, env) = serve(&sim);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("course-a.rhai"), lab_script("a", 6)).unwrap();
    std::fs::write(dir.path().join("course-b.rhai"), lab_script("b", 6)).unwrap();
    // Both plan against the same empty cluster: the same VMIDs and bridge names.
    let a = stand(dir.path(), &["up", "course-a.rhai", "--output", "json"], &env).spawn().unwrap();
    let b = stand(dir.path(), &["up", "course-b.rhai", "--output", "json"], &env).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let st = sim.state();
    assert_lab_intact(&st, "course-a", 18);
    assert_lab_intact(&st, "course-b", 18);
    let report = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["report"].clone();
    let replanned = report(&a)["replanned_vmids"].as_array().unwrap().len()
        + report(&b)["replanned_vmids"].as_array().unwrap().len();
    let renamed = report(&a)["renamed_bridges"].as_array().unwrap().len()
        + report(&b)["renamed_bridges"].as_array().unwrap().len();
    assert!(
        replanned > 0 && renamed > 0,
        "the collisions happened and were re-planned ({replanned} VMIDs, {renamed} bridges)"
    );
    server.shutdown();
}

#[tokio::test(start_paused = true)]
async fn a_student_cannot_use_another_students_bridge_nor_see_their_pool() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let root: Arc<dyn Pve> = Arc::new(sim.session("root@pam"));
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let script =
        "let a = create_user(\"alice@pve\"); place(a, \"pve1\"); let b = create_user(\"bob@pve\"); place(b, \"pve1\");
        clone(a, #{ template: \"debian-12\", name: \"pc\", nets: [alias(a, \"lan\")] });
        clone(b, #{ template: \"debian-12\", name: \"pc\", nets: [alias(b, \"lan\")] });";
    let plan = run_source(
        "iso.rhai",
        Path::new("."),
        script,
        snap.clone(),
        &RunOptions { lab: Some("iso".into()), ..RunOptions::default() },
    )
    .unwrap()
    .plan;
    let opts = quick();
    assert!(apply(root.clone(), &plan, snap, &opts).await.ok());

    let bridge_of = |user: &str| plan.bridges.iter().find(|b| b.owner.as_deref() == Some(user)).unwrap().iface.clone();
    let vm_of = |user: &str| plan.vms.iter().find(|v| v.user == user).unwrap().vmid;
    let pool_of = |user: &str| plan.users.iter().find(|u| u.userid == user).unwrap().pool.clone();
    let alice = sim.session("alice@pve");

    // Her own bridge: allowed.
    let own = ApiRequest::put(format!("/nodes/pve1/qemu/{}/config", vm_of("alice@pve")))
        .param("net1", format!("virtio,bridge={}", bridge_of("alice@pve")));
    alice.call(own).await.expect("a student may wire her own VM to her own bridge");
    // Bob's bridge: refused like PVE refuses it.
    let theirs = ApiRequest::put(format!("/nodes/pve1/qemu/{}/config", vm_of("alice@pve")))
        .param("net2", format!("virtio,bridge={}", bridge_of("bob@pve")));
    let e = alice.call(theirs).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("SDN.Use"), "{e}");
    // Bob's pool and VM: invisible.
    let e = alice.call(ApiRequest::get(format!("/pools/{}", pool_of("bob@pve")))).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let seen: Vec<u32> = alice.resources(Some("vm")).await.unwrap().iter().filter_map(|r| r.vmid).collect();
    assert_eq!(seen, vec![vm_of("alice@pve")], "alice sees only her own VM");
    let acl: BTreeMap<String, String> = sim
        .state()
        .acl
        .iter()
        .filter(|a| a.path.starts_with("/sdn/"))
        .map(|a| (a.path.clone(), a.ugid.clone()))
        .collect();
    assert_eq!(acl.len(), 2, "one SDN grant per private bridge, to its owner only: {acl:?}");
}

#[tokio::test(start_paused = true)]
async fn pending_bridges_of_another_stand_run_are_applied_but_someone_elses_are_not() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let root: Arc<dyn Pve> = Arc::new(sim.session("root@pam"));
    let staged = |iface: &str, comment: &str| stand::pve::BridgeParams {
        iface: iface.into(),
        autostart: true,
        vlan_aware: false,
        ports: None,
        comments: Some(comment.into()),
    };
    // Another instructor's `stand up` has staged a bridge on pve1 and not applied it yet.
    root.create_bridge("pve1", &staged("vmbr1000", "stand: alias=lan lab=other user=x@pve")).await.unwrap();
    let script = "let u = create_user(\"s@pve\"); place(u, \"pve1\"); clone(u, #{ template: \"debian-12\", name: \"pc\", nets: [alias(u, \"lan\")] });";
    let run = |snap| {
        run_source(
            "mine.rhai",
            Path::new("."),
            script,
            snap,
            &RunOptions { lab: Some("mine".into()), ..RunOptions::default() },
        )
    };
    let opts = quick();
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let report = apply(root.clone(), &run(snap.clone()).unwrap().plan, snap, &opts).await;
    assert!(report.ok(), "{:#?}", report.failures);
    assert!(sim.state().net["pve1"].active.contains_key("vmbr1000"), "the other run's bridge went live with ours");

    // A change someone made by hand in the GUI is theirs to apply.
    root.create_bridge("pve2", &staged("vmbr77", "lab switch, do not apply yet")).await.unwrap();
    let script = "let u = create_user(\"t@pve\"); place(u, \"pve2\"); clone(u, #{ template: \"debian-12\", name: \"pc\", nets: [alias(u, \"lan\")] });";
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let plan = run_source(
        "mine.rhai",
        Path::new("."),
        script,
        snap.clone(),
        &RunOptions { lab: Some("mine".into()), ..RunOptions::default() },
    )
    .unwrap()
    .plan;
    let report = apply(root.clone(), &plan, snap, &opts).await;
    let failure = report
        .failures
        .iter()
        .find(|f| f.object == ObjectRef::Network { node: "pve2".into() })
        .expect("the node's network is refused");
    assert_eq!(failure.cause, Cause::Stand, "stand refused it before any call");
    assert!(failure.message.contains("vmbr77") && failure.hint.contains("--apply-foreign-network"), "{failure:?}");
    assert!(!sim.state().net["pve2"].active.contains_key("vmbr77"), "their change is still theirs");
}

#[tokio::test(start_paused = true)]
async fn the_labs_teacher_sees_every_stand_and_students_only_their_own() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let root: Arc<dyn Pve> = Arc::new(sim.session("root@pam"));
    let script = "lab(#{ teacher: \"teacher@pve\" });
        for u in users([\"s1@pve\", \"s2@pve\"]) { let user = create_user(u); clone(user, #{ template: \"debian-12\", name: \"pc\" }); }";
    let run = |snap| {
        run_source(
            "class.rhai",
            Path::new("."),
            script,
            snap,
            &RunOptions { lab: Some("class".into()), ..RunOptions::default() },
        )
    };
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let e = run(snap).unwrap_err().to_string();
    assert!(e.contains("teacher 'teacher@pve' does not exist"), "{e}");

    root.create_user("teacher@pve", None, Some("the instructor")).await.unwrap();
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let plan = run(snap.clone()).unwrap().plan;
    let opts = quick();
    assert!(apply(root.clone(), &plan, snap, &opts).await.ok());
    let vms = |who: &str| {
        let s = sim.session(who);
        async move {
            let mut ids: Vec<u32> =
                s.resources(Some("vm")).await.unwrap().iter().filter(|r| !r.template).filter_map(|r| r.vmid).collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(vms("teacher@pve").await.len(), 2, "the teacher sees both stands");
    assert_eq!(vms("s1@pve").await.len(), 1, "a student sees their own");
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let again = run(snap.clone()).unwrap().plan;
    let diff = stand::plan::Diff::compute(&again, &snap);
    assert!(
        again.is_noop(),
        "the teacher's access is in place: nothing to do: {:?}",
        diff.changes.iter().filter(|c| c.kind != stand::plan::ChangeKind::Keep).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_down_interrupted_after_deleting_bridges_is_finished_by_the_next_one() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let root: Arc<dyn Pve> = Arc::new(sim.session("root@pam"));
    let opts = quick();
    let script = "let u = create_user(\"s@pve\"); place(u, \"pve1\"); clone(u, #{ template: \"debian-12\", name: \"pc\", nets: [alias(u, \"lan\")] });";
    let snap = Arc::new(Snapshot::take(&root).await.unwrap());
    let plan = run_source(
        "gone.rhai",
        Path::new("."),
        script,
        snap.clone(),
        &RunOptions { lab: Some("gone".into()), ..RunOptions::default() },
    )
    .unwrap()
    .plan;
    assert!(apply(root.clone(), &plan, snap, &opts).await.ok());
    // `down` removed the VM and staged the bridge's deletion, then was killed.
    let vm = &plan.vms[0];
    let upid = root.vm_power(&vm.node, vm.vmid, "stop").await.unwrap();
    root.wait_task(&upid, opts.wait).await.unwrap();
    let upid = root.delete_vm(&vm.node, vm.vmid).await.unwrap();
    root.wait_task(&upid, opts.wait).await.unwrap();
    root.delete_iface("pve1", &plan.bridges[0].iface).await.unwrap();
    assert!(sim.state().net["pve1"].pending.is_some());

    let snap = Snapshot::take(&root).await.unwrap();
    let doomed = stand::apply::Doomed::select(&snap, "gone", &[]);
    let report = stand::apply::destroy(root.clone(), &snap, "gone", &doomed, &opts).await;
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    let st = sim.state();
    assert!(st.net["pve1"].pending.is_none(), "the staged removal was applied");
    assert!(!st.net["pve1"].active.contains_key(&plan.bridges[0].iface), "the bridge is gone");
    assert!(!st.users.contains_key("s@pve") && st.pools.is_empty());
}
