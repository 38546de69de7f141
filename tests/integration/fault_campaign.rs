//! The fault campaign: many seeded schedules of mixed faults (5xx, dropped connections, lock
//! timeouts, failed and slow tasks, a node going offline mid-run), each followed by a
//! fault-free `up`. Every schedule must converge with no duplicate, no orphan, and nothing
//! that is not ours touched.
//!
//! `STAND_CAMPAIGN_SEEDS=N` sets the number of schedules (default 1,000, split over two
//! tests); `STAND_CAMPAIGN_SEED=S` replays one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use stand::apply::{ApplyOptions, apply};
use stand::plan::{Plan, Snapshot};
use stand::pve::{Pve, WaitPolicy};
use stand::script::{RunOptions, run_source};
use stand::sim::{DEFAULT_FIXTURE, FaultSpec, Fixture, LatencyModel, Sim, SimOptions};

const SCRIPT: &str = "lab(#{ vmid_range: [4000, 4999] });
    for u in users([\"c1@pve\", \"c2@pve\", \"c3@pve\", \"c4@pve\"]) {
        let user = create_user(u); place_balanced(user); let lan = alias(user, \"lan\");
        clone(user, #{ template: \"ecorouter\", name: \"r\", device: \"ecorouter\", nets: [\"vmbr0\", lan], memory: 512 });
        clone(user, #{ template: \"debian-12\", name: \"h\", nets: [lan], memory: 512 }); }";
const PLANNED_VMS: usize = 8;

/// The default cluster plus another course's VM, bridge and user, which must survive.
fn fixture() -> Fixture {
    let text = DEFAULT_FIXTURE
        .replace(
            "bridges:\n",
            "bridges:\n  - { iface: vmbr99, node: pve2, comments: other course }\n",
        )
        .replace(
            "users:\n",
            "vms:\n  - { vmid: 4000, name: other-course, node: pve1, storage: local-lvm, running: true, tags: [course-b] }\nusers:\n  - { userid: colleague@pve, comment: another course }\n",
        );
    Fixture::parse(&text, "campaign.yaml").unwrap()
}

fn faults(rng: &mut StdRng) -> FaultSpec {
    FaultSpec {
        http5xx: rng.gen_range(0.0..0.08),
        reset: rng.gen_range(0.0..0.04),
        lock_timeout: rng.gen_range(0.0..0.06),
        task_fail: rng.gen_range(0.0..0.05),
        slow_task: rng.gen_range(0.0..0.05),
    }
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(200), ..WaitPolicy::default() },
        ..ApplyOptions::default()
    }
}

async fn plan(pve: &Arc<dyn Pve>) -> (Plan, Arc<Snapshot>) {
    let snap = Arc::new(Snapshot::take(pve).await.expect("snapshot (reads are retried)"));
    let plan = run_source(
        "campaign.rhai",
        Path::new("."),
        SCRIPT,
        snap.clone(),
        &RunOptions { lab: Some("campaign".into()), ..RunOptions::default() },
    )
    .expect("plans")
    .plan;
    (plan, snap)
}

/// What is not ours, serialized, to compare before and after.
fn foreign(sim: &Sim) -> String {
    let st = sim.state();
    let vm = st.vms.get(&4000).map(|v| format!("{:?} {:?} {}", v.node, v.config, v.running));
    let bridge = st.net.get("pve2").and_then(|n| n.active.get("vmbr99")).map(|b| format!("{b:?}"));
    let user = st.users.get("colleague@pve").map(|u| format!("{u:?}"));
    format!("{vm:?}\n{bridge:?}\n{user:?}")
}

/// Everything ours is planned, once, finished and running; nothing of ours is left over.
fn check_converged(sim: &Sim, seed: u64) -> Result<(), String> {
    let st = sim.state();
    let ours: Vec<_> =
        st.vms.values().filter(|v| v.config.get("description").is_some_and(|d| d.contains("lab=campaign "))).collect();
    let mut names: Vec<_> = ours.iter().filter_map(|v| v.config.get("name").cloned()).collect();
    names.sort();
    names.dedup();
    if ours.len() != PLANNED_VMS || names.len() != PLANNED_VMS {
        let list: Vec<String> = st
            .vms
            .iter()
            .filter(|(_, v)| v.config.get("description").is_some_and(|d| d.contains("lab=campaign ")))
            .map(|(id, v)| format!("{id} {:?} on {} tags {:?}", v.config.get("name"), v.node, v.config.get("tags")))
            .collect();
        return Err(format!(
            "seed {seed}: {} VMs of ours, {} names (want {PLANNED_VMS}): {list:#?}",
            ours.len(),
            names.len()
        ));
    }
    if let Some(v) = ours.iter().find(|v| !v.running || v.config.contains_key("lock")) {
        return Err(format!("seed {seed}: {:?} not running or locked", v.config.get("name")));
    }
    for (id, p) in &st.pools {
        if let Some(vmid) = p.vms.iter().find(|id| !st.vms.contains_key(id)) {
            return Err(format!("seed {seed}: pool {id} lists missing VM {vmid}"));
        }
        let is_ours = |id: &u32| {
            st.vms.get(id).and_then(|v| v.config.get("description")).is_some_and(|d| d.contains("lab=campaign "))
        };
        if let Some(vmid) = p.vms.iter().find(|id| !is_ours(id)) {
            return Err(format!("seed {seed}: pool {id} holds VM {vmid}, which is not ours"));
        }
    }
    if st.pools.len() != 4 {
        return Err(format!("seed {seed}: {} pools, want 4", st.pools.len()));
    }
    for (node, n) in &st.net {
        if n.pending.is_some() {
            return Err(format!("seed {seed}: pending network changes left on {node}"));
        }
    }
    let bridges: usize = st.net.values().map(|n| n.active.keys().filter(|k| k.starts_with("vmbr1")).count()).sum();
    if bridges != 4 {
        return Err(format!("seed {seed}: {bridges} private bridges in all, want 4"));
    }
    Ok(())
}

/// Totals over a campaign, for the closing figures.
#[derive(Default)]
struct Totals {
    schedules: AtomicU64,
    faults: AtomicU64,
    offline: AtomicU64,
}

async fn schedule(seed: u64, totals: &Totals) -> Result<(), String> {
    stand::pve::seed_jitter(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = faults(&mut rng);
    let sim =
        Sim::new(&fixture(), SimOptions { latency: LatencyModel::realistic(), faults: spec, seed, time_scale: 1.0 });
    let before = foreign(&sim);
    let pve: Arc<dyn Pve> = Arc::new(sim.client());

    // A node goes offline for a while in a third of the schedules.
    let outage = rng.gen_bool(0.33).then(|| {
        let node = ["pve1", "pve2", "pve3"][rng.gen_range(0..3)];
        (node, Duration::from_millis(rng.gen_range(0..20_000)), Duration::from_millis(rng.gen_range(1_000..40_000)))
    });
    let outage_task = outage.map(|(node, at, length)| {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            sim.set_node_online(node, false);
            tokio::time::sleep(length).await;
            sim.set_node_online(node, true);
        })
    });

    // The faulty run may fail, even to take its snapshot while a node is away.
    if let Ok(snap) = Snapshot::take(&pve).await {
        let snap = Arc::new(snap);
        if let Ok(outcome) = run_source(
            "campaign.rhai",
            Path::new("."),
            SCRIPT,
            snap.clone(),
            &RunOptions { lab: Some("campaign".into()), ..RunOptions::default() },
        ) {
            let _ = apply(pve.clone(), &outcome.plan, snap, &opts()).await;
        }
    }
    if let Some(t) = outage_task {
        let _ = t.await;
        totals.offline.fetch_add(1, Ordering::Relaxed);
    }
    let stats = sim.stats();
    totals.faults.fetch_add(
        stats.http5xx + stats.resets + stats.lock_timeouts + stats.task_fails + stats.slow_tasks,
        Ordering::Relaxed,
    );

    sim.set_faults(FaultSpec::default());
    let (plan, snap) = plan(&pve).await;
    let report = apply(pve.clone(), &plan, snap, &opts()).await;
    if !report.ok() {
        return Err(format!("seed {seed}: the fault-free up failed: {:#?}", report.failures));
    }
    check_converged(&sim, seed)?;
    if foreign(&sim) != before {
        return Err(format!("seed {seed}: another course's VM, bridge or user changed"));
    }
    totals.schedules.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn seeds(part: u64, parts: u64) -> Vec<u64> {
    if let Some(one) = std::env::var("STAND_CAMPAIGN_SEED").ok().and_then(|s| s.parse().ok()) {
        return if part == 0 { vec![one] } else { Vec::new() };
    }
    let n: u64 = std::env::var("STAND_CAMPAIGN_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    (0..n).filter(|s| s % parts == part).collect()
}

async fn campaign(part: u64) {
    let totals = Totals::default();
    let mut failures = Vec::new();
    for seed in seeds(part, 2) {
        if let Err(e) = schedule(seed, &totals).await {
            failures.push(format!("{e}\n  replay: STAND_CAMPAIGN_SEED={seed} cargo test --test fault_campaign"));
        }
    }
    eprintln!(
        "fault campaign part {part}: {} schedules converged, {} faults injected, {} node outages, {} failed",
        totals.schedules.load(Ordering::Relaxed),
        totals.faults.load(Ordering::Relaxed),
        totals.offline.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn campaign_even_seeds() {
    campaign(0).await;
}

#[tokio::test(start_paused = true)]
async fn campaign_odd_seeds() {
    campaign(1).await;
}
