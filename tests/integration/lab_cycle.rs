//! The main job end to end on the simulator: plan, apply, re-plan, down.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stand::apply::{ApplyOptions, Doomed, apply, destroy};
use stand::plan::{ChangeKind, Diff, Snapshot};
use stand::pve::{Pve, PveExt, WaitPolicy};
use stand::script::{RunOptions, run_file, run_source};
use stand::sim::{FaultSpec, Fixture, LatencyModel, Sim, SimOptions};

fn scripts() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts"))
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: std::time::Duration::from_millis(100), ..WaitPolicy::default() },
        ..ApplyOptions::default()
    }
}

/// The cluster as `stand` reaches it: every call retried by the client's policy.
fn connect(sim: &Sim) -> Arc<dyn Pve> {
    Arc::new(sim.client())
}

async fn snapshot(pve: &Arc<dyn Pve>) -> Arc<Snapshot> {
    Arc::new(Snapshot::take(pve).await.unwrap())
}

/// Everything a user would compare before and after: VMs, bridges, users, pools, ACLs.
fn fingerprint(sim: &Sim) -> String {
    let st = sim.state();
    let vms: Vec<_> = st.vms.iter().map(|(id, v)| (*id, v.node.clone(), v.config.get("name").cloned())).collect();
    let net: Vec<_> = st
        .net
        .iter()
        .map(|(n, x)| (n.clone(), x.active.keys().cloned().collect::<Vec<_>>(), x.pending.is_some()))
        .collect();
    let users: Vec<_> = st.users.keys().cloned().collect();
    let pools: Vec<_> = st.pools.keys().cloned().collect();
    let groups: Vec<_> = st.groups.keys().cloned().collect();
    format!("{vms:?}\n{net:?}\n{users:?}\n{pools:?}\n{groups:?}\n{:?}", st.acl)
}

#[tokio::test(start_paused = true)]
async fn lab3_deploys_replans_to_nothing_and_goes_down_cleanly() {
    let sim = Sim::new(
        &Fixture::default_cluster(),
        SimOptions { latency: LatencyModel::realistic(), ..SimOptions::default() },
    );
    let pve = connect(&sim);
    // Things that are not ours and must survive.
    pve.create_user("colleague@pve", None, Some("another course")).await.unwrap();
    let before = fingerprint(&sim);

    let snap = snapshot(&pve).await;
    let plan = run_file(&scripts().join("lab3.rhai"), snap.clone(), &RunOptions::default()).unwrap().plan;
    assert_eq!(plan.users.len(), 12);
    assert_eq!(plan.vms.len(), 48);
    let report = apply(pve.clone(), &plan, snap, &opts()).await;
    assert!(report.ok(), "{:#?}", report.failures);
    assert_eq!((report.vms_created, report.vms_started, report.users_created), (48, 48, 12));
    assert_eq!(report.credentials.len(), 12);
    assert!(report.networks_applied <= 3, "one network reload per node");

    let stats = sim.stats();
    let snap = snapshot(&pve).await;
    let again = run_file(&scripts().join("lab3.rhai"), snap.clone(), &RunOptions::default()).unwrap().plan;
    let diff = Diff::compute(&again, &snap);
    assert!(
        diff.is_empty(),
        "re-plan after apply shows no changes: {:#?}",
        diff.changes.iter().filter(|c| c.kind != ChangeKind::Keep).collect::<Vec<_>>()
    );
    assert!(again.users.iter().all(|u| u.password.is_none()), "existing users keep their passwords");
    let writes_before = sim.stats().writes;
    let report = apply(pve.clone(), &again, snap, &opts()).await;
    assert!(report.ok());
    assert_eq!(sim.stats().writes, writes_before, "a second up makes zero writes");
    assert!(sim.stats().requests > stats.requests);

    let members = sim.state().users.values().filter(|u| u.groups.contains("lab3-students")).count();
    assert_eq!(members, 12, "every student is in the lab's group");
    for vm in sim.state().vms.values().filter(|v| v.config.get("tags").is_some_and(|t| t.contains("lab-lab3"))) {
        assert!(vm.running, "every VM runs");
        assert!(!vm.config.contains_key("lock"));
    }

    let snap = snapshot(&pve).await;
    let down = destroy(pve.clone(), &snap, "lab3", &Doomed::select(&snap, "lab3", &[]), &opts()).await;
    assert!(down.failures.is_empty(), "{:#?}", down.failures);
    assert_eq!((down.vms, down.users, down.pools, down.groups), (48, 12, 12, 1));
    assert_eq!(fingerprint(&sim), before, "down leaves the cluster exactly as before up");
}

#[tokio::test(start_paused = true)]
async fn thirty_students_with_four_vms_converge_under_faults_and_the_rerun_repairs_the_rest() {
    let faults: FaultSpec = "http5xx=0.02,lock_timeout=0.03,task_fail=0.02".parse().unwrap();
    let sim = Sim::new(
        &Fixture::default_cluster(),
        SimOptions { latency: LatencyModel::realistic(), faults, seed: 11, time_scale: 1.0 },
    );
    let pve = connect(&sim);
    let users: Vec<String> = (1..=30).map(|i| format!("\"s{i}@pve\"")).collect();
    let script = format!(
        "for u in users([{}]) {{ let user = create_user(u); let lan = alias(user, \"lan\");
           clone(user, #{{ template: \"ecorouter\", name: \"r\", device: \"ecorouter\", nets: [\"vmbr0\", lan], memory: 512 }});
           for n in [\"a\", \"b\", \"c\"] {{ clone(user, #{{ template: 103, name: n, nets: [lan], memory: 512 }}); }} }}",
        users.join(",")
    );
    let run = |snap| {
        run_source(
            "class.rhai",
            Path::new("."),
            &script,
            snap,
            &RunOptions { lab: Some("class".into()), ..RunOptions::default() },
        )
    };
    let snap = snapshot(&pve).await;
    let plan = run(snap.clone()).unwrap().plan;
    assert_eq!(plan.vms.len(), 120);
    let first = apply(pve.clone(), &plan, snap, &opts()).await;
    let mut rounds = 1;
    let mut last = first;
    while !last.ok() && rounds < 4 {
        let snap = snapshot(&pve).await;
        let plan = run(snap.clone()).unwrap().plan;
        last = apply(pve.clone(), &plan, snap, &opts()).await;
        rounds += 1;
    }
    assert!(last.ok(), "converged after {rounds} runs: {:#?}", last.failures);
    let stats = sim.stats();
    assert!(stats.http5xx > 0 && stats.task_fails > 0 && stats.lock_timeouts > 0, "the faults did happen: {stats:?}");
    eprintln!("converged in {rounds} runs; {stats:?}");
    let st = sim.state();
    let ours: Vec<_> =
        st.vms.values().filter(|v| v.config.get("tags").is_some_and(|t| t.contains("lab-class"))).collect();
    assert_eq!(ours.len(), 120, "no duplicates, nothing missing");
    let mut names: Vec<_> = ours.iter().map(|v| v.config.get("name").cloned().unwrap_or_default()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 120);
    assert!(ours.iter().all(|v| v.running && !v.config.contains_key("lock")));
    let bridges_per_node: usize =
        st.net.values().map(|n| n.active.keys().filter(|k| k.starts_with("vmbr1")).count()).sum();
    assert_eq!(bridges_per_node, 30, "one private bridge per student");
}

/// Everything of lab `lab` on the cluster is planned, once, finished, and running.
fn assert_converged(sim: &Sim, lab: &str, planned: usize) {
    let st = sim.state();
    let marker = format!("lab={lab} ");
    let ours: Vec<_> =
        st.vms.values().filter(|v| v.config.get("description").is_some_and(|d| d.contains(&marker))).collect();
    let mut names: Vec<_> = ours.iter().map(|v| v.config.get("name").cloned().unwrap_or_default()).collect();
    names.sort();
    names.dedup();
    assert_eq!((ours.len(), names.len()), (planned, planned), "no duplicates and nothing missing");
    for v in &ours {
        assert!(v.running && !v.config.contains_key("lock"), "{:?} runs, unlocked", v.config.get("name"));
        assert!(v.config.get("tags").is_some_and(|t| t.contains(&format!("lab-{lab}"))), "tagged");
    }
    let orphans: Vec<_> = st.pools.values().flat_map(|p| p.vms.iter()).filter(|id| !st.vms.contains_key(id)).collect();
    assert!(orphans.is_empty(), "pools list no missing VMs: {orphans:?}");
    assert!(st.net.values().all(|n| n.pending.is_none()), "no network change left pending");
}

#[tokio::test(start_paused = true)]
async fn a_run_killed_at_any_moment_is_finished_by_the_next_without_duplicates_or_orphans() {
    use rand::{Rng, SeedableRng};
    let script = "lab(#{ vmid_range: [5000, 5999] });
        for u in users([\"k1@pve\", \"k2@pve\", \"k3@pve\", \"k4@pve\", \"k5@pve\", \"k6@pve\"]) {
            let user = create_user(u); place_balanced(user); let lan = alias(user, \"lan\");
            clone(user, #{ template: \"ecorouter\", name: \"r\", device: \"ecorouter\", nets: [\"vmbr0\", lan] });
            clone(user, #{ template: \"debian-12\", name: \"a\", nets: [lan], memory: 512 });
            clone(user, #{ template: \"debian-12\", name: \"b\", nets: [lan], memory: 512 }); }";
    let run = |snap| {
        run_source(
            "kill.rhai",
            Path::new("."),
            script,
            snap,
            &RunOptions { lab: Some("kill".into()), ..RunOptions::default() },
        )
    };
    let mut kills_mid_clone = 0;
    for seed in 0..24u64 {
        let sim = Sim::new(
            &Fixture::default_cluster(),
            SimOptions { latency: LatencyModel::realistic(), seed, ..SimOptions::default() },
        );
        let pve = connect(&sim);
        let snap = snapshot(&pve).await;
        let plan = run(snap.clone()).unwrap().plan;
        let start = tokio::time::Instant::now();
        let kill_after = Duration::from_millis(rand::rngs::StdRng::seed_from_u64(seed).gen_range(0..40_000));
        let killed = tokio::time::timeout(kill_after, apply(pve.clone(), &plan, snap, &opts())).await.is_err();
        if killed && sim.state().vms.values().any(|v| v.config.get("lock").is_some_and(|l| l == "clone")) {
            kills_mid_clone += 1;
        }
        let mut runs = 0;
        loop {
            runs += 1;
            let snap = snapshot(&pve).await;
            let plan = run(snap.clone()).unwrap().plan;
            let report = apply(pve.clone(), &plan, snap, &opts()).await;
            if report.ok() {
                break;
            }
            assert!(
                runs < 3,
                "seed {seed} (killed at {kill_after:?}, {:?} in): {:#?}",
                start.elapsed(),
                report.failures
            );
        }
        assert_converged(&sim, "kill", 18);
    }
    eprintln!("kills mid-clone: {kills_mid_clone}");
    assert!(kills_mid_clone >= 5, "the kills hit clones in flight ({kills_mid_clone} of 24)");
}

#[tokio::test(start_paused = true)]
async fn a_vm_of_ours_with_wrong_nics_is_updated_and_a_stopped_one_started() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let pve = connect(&sim);
    let snap = snapshot(&pve).await;
    let plan = run_file(&scripts().join("lab3.rhai"), snap.clone(), &RunOptions::default()).unwrap().plan;
    assert!(apply(pve.clone(), &plan, snap, &opts()).await.ok());
    let web = plan.vms.iter().find(|v| v.spec_name == "web").unwrap().clone();
    let admin = plan.vms.iter().find(|v| v.spec_name == "admin").unwrap().clone();
    // Someone rewired the web server to the uplink, and stopped the admin host.
    let params = [("net0".to_string(), "virtio,bridge=vmbr0".to_string())].into_iter().collect();
    pve.set_vm_config(&web.node, web.vmid, params).await.unwrap();
    let upid = pve.vm_power(&admin.node, admin.vmid, "stop").await.unwrap();
    pve.wait_task(&upid, opts().wait).await.unwrap();

    let snap = snapshot(&pve).await;
    let again = run_file(&scripts().join("lab3.rhai"), snap.clone(), &RunOptions::default()).unwrap().plan;
    let diff = Diff::compute(&again, &snap);
    let updates: Vec<_> = diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Update)
        .map(|c| (c.id.clone(), c.detail.clone()))
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates.iter().any(|(id, d)| id.contains(&web.name) && d.contains("net0")), "{updates:?}");
    assert!(updates.iter().any(|(id, d)| id.contains(&admin.name) && d.contains("start")), "{updates:?}");
    let report = apply(pve.clone(), &again, snap, &opts()).await;
    assert!(report.ok(), "{:#?}", report.failures);
    assert_eq!((report.vms_created, report.vms_updated, report.vms_started), (0, 1, 1));
    let st = sim.state();
    let bridge = |nic: &str| nic.split(',').find(|p| p.starts_with("bridge=")).unwrap_or_default().to_string();
    let now = st.vms[&web.vmid].config.get("net0").cloned().unwrap_or_default();
    assert_eq!(bridge(&now), bridge(web.nets[0].as_deref().unwrap()), "the NIC is on its planned bridge again: {now}");
    assert!(st.vms[&admin.vmid].running);
}
