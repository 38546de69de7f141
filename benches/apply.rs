//! `cargo bench`: how close `stand` gets to what the cluster can do. Prints figures and
//! ratios measured in this one run; never fails on a slow machine. See BENCHMARKS.md.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stand::apply::{ApplyOptions, Doomed, apply, destroy};
use stand::plan::course::Scope;
use stand::plan::templates::{self, Catalog, SyncRequest};
use stand::plan::{Plan, Snapshot, VmSnap};
use stand::pve::{BridgeParams, CloneParams, Params, Pve, PveClient, PveExt, WaitPolicy};
use stand::script::{RunOptions, run_source};
use stand::sim::{DEFAULT_FIXTURE, Fixture, LatencyModel, Sim, SimOptions};

/// A class: `users` students with one EcoRouter and `vms - 1` Linux hosts on a private LAN.
fn class_script(users: usize, vms: usize, memory: u32) -> String {
    format!(
        "lab(#{{ vmid_range: [1000, 99999] }});
        for i in 1..={users} {{ let user = create_user(`s${{i}}@pve`); place_balanced(user); let lan = alias(user, \"lan\");
            clone(user, #{{ template: \"ecorouter\", name: \"r\", device: \"ecorouter\", nets: [\"vmbr0\", lan], memory: {memory} }});
            for h in 1..{vms} {{ clone(user, #{{ template: \"debian-12\", name: `h${{h}}`, nets: [lan], memory: {memory} }}); }} }}"
    )
}

fn plan_of(script: &str, snap: Arc<Snapshot>) -> Plan {
    let opts = RunOptions { lab: Some("bench".into()), ..RunOptions::default() };
    run_source("bench.rhai", Path::new("."), script, snap, &opts).expect("the bench script plans").plan
}

fn connect(sim: &Sim) -> Arc<dyn Pve> {
    Arc::new(sim.client())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

fn options() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(100), ..WaitPolicy::default() },
        ..ApplyOptions::default()
    }
}

/// The model's lower bound on the makespan of `plan`: the busiest storage allocation lock
/// (every volume of every clone on it, one after the other) between the earliest moment a
/// clone can take it and the shortest finish after the last one, or the longest chain of
/// one VM, whichever is longer.
fn lower_bound(plan: &Plan, snap: &Snapshot, lat: &LatencyModel) -> f64 {
    let mut per_lock: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for v in &plan.vms {
        let tpl = snap.vm(v.template).expect("template in snapshot");
        let disks = tpl.disk_storages().len().max(1) as u64;
        let storage = tpl.disk_storages().into_iter().next().unwrap_or_default();
        let shared = snap.storage(&storage).is_some_and(|s| s.shared);
        let key = if shared { storage } else { format!("{}/{storage}", v.template_node) };
        *per_lock.entry(key).or_default() += disks * if v.full { lat.full_alloc_ms } else { lat.linked_lock_ms };
    }
    // Before a clone: user, pool, the clone POST, half the task overhead.
    let lead = 3 * lat.request_ms + lat.task_overhead_ms / 2;
    // After the last volume: the rest of the clone task, the config PUT, the baseline
    // snapshot, the start task.
    let tail = lat.task_overhead_ms / 2
        + lat.request_ms
        + lat.request_ms
        + lat.snapshot_ms
        + lat.request_ms
        + lat.task_overhead_ms
        + lat.start_ms;
    let busiest = per_lock.values().copied().max().unwrap_or(0);
    let chain = lead + lat.linked_lock_ms + tail;
    let network = lat.request_ms * 2 + lat.network_reload_ms + lat.request_ms + lat.task_overhead_ms + lat.start_ms;
    (lead + busiest + tail).max(chain).max(network) as f64 / 1000.0
}

/// deploy-stand's way: one operation at a time, waiting for each.
async fn sequential(pve: &dyn Pve, plan: &Plan, wait: WaitPolicy) {
    for u in &plan.users {
        pve.create_user(&u.userid, u.password.as_deref(), Some(&u.comment)).await.expect("user");
        pve.create_pool(&u.pool, None).await.expect("pool");
        pve.set_acl(&format!("/pool/{}", u.pool), "PVEVMAdmin", Some(&u.userid), None, false).await.expect("acl");
        for b in &u.sdn_acls {
            pve.set_acl(&format!("/sdn/zones/localnetwork/{b}"), "PVESDNUser", Some(&u.userid), None, false)
                .await
                .expect("acl");
        }
    }
    for b in &plan.bridges {
        let p = BridgeParams {
            iface: b.iface.clone(),
            autostart: true,
            vlan_aware: b.vlan_aware,
            ports: None,
            comments: Some(b.comment.clone()),
        };
        pve.create_bridge(&b.node, &p).await.expect("bridge");
    }
    let mut nodes: Vec<&str> = plan.bridges.iter().map(|b| b.node.as_str()).collect();
    nodes.dedup();
    for n in nodes {
        let upid = pve.apply_network(n).await.expect("network");
        pve.wait_task(&upid, wait).await.expect("reload");
    }
    for v in &plan.vms {
        let params = CloneParams {
            newid: v.vmid,
            name: Some(v.name.clone()),
            target: (v.node != v.template_node).then(|| v.node.clone()),
            full: v.full.then_some(true),
            storage: None,
            pool: Some(v.pool.clone()),
            description: Some(v.description.clone()),
        };
        let upid = pve.clone_vm(&v.template_node, v.template, &params).await.expect("clone");
        pve.wait_task(&upid, wait).await.expect("clone task");
        let mut config = Params::new();
        for (i, n) in v.nets.iter().enumerate() {
            if let Some(n) = n {
                config.insert(format!("net{i}"), n.clone());
            }
        }
        config.insert("tags".into(), v.tags.join(";"));
        pve.set_vm_config(&v.node, v.vmid, config).await.expect("config");
        // lazy_teacher's `start` snapshot of each VM.
        let upid = pve.snapshot(&v.node, v.vmid, "start", "").await.expect("snapshot");
        pve.wait_task(&upid, wait).await.expect("snapshot task");
        let upid = pve.vm_power(&v.node, v.vmid, "start").await.expect("start");
        pve.wait_task(&upid, wait).await.expect("start task");
    }
}

/// lazy_teacher's reset: per VM, stop, wait, roll back, wait, start, wait.
async fn sequential_reset(pve: &dyn Pve, vms: &[&VmSnap], wait: WaitPolicy) {
    for v in vms {
        let upid = pve.vm_power(&v.node, v.vmid, "stop").await.expect("stop");
        pve.wait_task(&upid, wait).await.expect("stop task");
        let upid = pve.rollback(&v.node, v.vmid, "start", false).await.expect("rollback");
        pve.wait_task(&upid, wait).await.expect("rollback task");
        let upid = pve.vm_power(&v.node, v.vmid, "start").await.expect("start");
        pve.wait_task(&upid, wait).await.expect("start task");
    }
}

/// `stand reset` of a whole class of running VMs against lazy_teacher's sequential reset.
/// The bound: the model runs every rollback at once, so one rollback chain (POST, stop,
/// rollback, start in one task) is its floor; with at most `per_node` at once on a node
/// (the staggered starts), the busiest node needs ⌈its VMs / per_node⌉ of those chains.
fn reset_vs_bound_and_sequential(users: usize, vms: usize) {
    let rt = paused_runtime();
    rt.block_on(async {
        let lat = LatencyModel::realistic();
        let new_sim =
            || Sim::new(&Fixture::default_cluster(), SimOptions { latency: lat.clone(), ..SimOptions::default() });
        let deployed = |sim: Sim| async move {
            let pve = connect(&sim);
            let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
            let plan = plan_of(&class_script(users, vms, 512), snap.clone());
            assert!(apply(pve.clone(), &plan, snap, &options()).await.ok());
            let snap = Snapshot::take(&pve).await.expect("snapshot");
            (pve, snap)
        };
        let (pve, snap) = deployed(new_sim()).await;
        let chosen = Scope { lab: "bench", only: &[], vms: &[] }.select(&snap);
        let lists = chosen.iter().map(|v| (v.vmid, vec!["start".to_string()])).collect();
        let graph = stand::plan::course::reset(&chosen, "start", &lists).expect("every VM has its baseline");
        let opts = options();
        let start = tokio::time::Instant::now();
        let run = stand::apply::run(pve.clone(), &graph, &opts).await;
        let makespan = start.elapsed().as_secs_f64();
        assert!(run.failures().is_empty(), "{:#?}", run.failures());

        let (seq_pve, seq_snap) = deployed(new_sim()).await;
        let seq_vms = Scope { lab: "bench", only: &[], vms: &[] }.select(&seq_snap);
        let start = tokio::time::Instant::now();
        sequential_reset(seq_pve.as_ref(), &seq_vms, opts.wait).await;
        let seq = start.elapsed().as_secs_f64();

        let chain =
            (lat.request_ms + lat.task_overhead_ms + lat.stop_ms + lat.snapshot_ms + lat.start_ms) as f64 / 1000.0;
        let busiest =
            ["pve1", "pve2", "pve3"].iter().map(|n| chosen.iter().filter(|v| v.node == *n).count()).max().unwrap_or(0);
        let waves = busiest.div_ceil(opts.per_node) as f64;
        println!(
            "## stand reset of {users} stands × {vms} VMs ({} running VMs, realistic latency, paused clock)",
            chosen.len()
        );
        println!("makespan            {:>8.1} s", makespan);
        println!(
            "lower bound         {:>8.1} s   makespan / bound      = {:.2}   (all at once)",
            chain,
            makespan / chain
        );
        println!(
            "bound, {} per node  {:>8.1} s   makespan / bound      = {:.2}   (staggered starts)",
            opts.per_node,
            chain * waves,
            makespan / (chain * waves)
        );
        println!("lazy_teacher        {:>8.1} s   sequential / stand    = {:.1}×", seq, seq / makespan);
        println!();
    });
}

/// The criteria of the grading benchmark: criterion `k` runs `test -f /etc/task<k>` on
/// every VM of the stand.
fn check_script(users: usize, vms: usize, criteria: usize) -> String {
    format!(
        "{}\nfn check(stand) {{ for k in 1..={criteria} {{ let done = 0;
            for vm in stand.vms() {{ if exec(vm, `test -f /etc/task${{k}}`).code == 0 {{ done += 1; }} }}
            grade(`task ${{k}}`, 1, done == stand.vms().len()); }} }}",
        class_script(users, vms, 512)
    )
}

/// One `agent/exec` at a time, waiting for each: how a grading shell script goes through a
/// class with `qm guest exec` (the same polling as `stand check`).
async fn sequential_exec(pve: &dyn Pve, vms: &[&VmSnap], criteria: usize) {
    use stand::pve::AgentExt;
    for k in 1..=criteria {
        for v in vms {
            let argv = vec!["test".to_string(), "-f".into(), format!("/etc/task{k}")];
            let pid = pve.agent_exec(&v.node, v.vmid, &argv).await.expect("exec");
            let mut pause = Duration::from_millis(50);
            loop {
                tokio::time::sleep(pause).await;
                if pve.agent_exec_status(&v.node, v.vmid, pid).await.expect("status").exited {
                    break;
                }
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn check_vs_bound_and_sequential(users: usize, vms: usize, criteria: usize) {
    use stand::grade::{ClusterAgent, GradeSheet, check_stands, deployed_stands};
    let rt = paused_runtime();
    rt.block_on(async {
        let lat = LatencyModel::realistic();
        let new_sim =
            || Sim::new(&Fixture::default_cluster(), SimOptions { latency: lat.clone(), ..SimOptions::default() });
        let script = check_script(users, vms, criteria);
        let deployed = |sim: Sim| {
            let script = script.clone();
            async move {
                let pve = connect(&sim);
                let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
                let plan = plan_of(&script, snap.clone());
                assert!(apply(pve.clone(), &plan, snap, &options()).await.ok());
                // The guests boot before their agents answer.
                tokio::time::sleep(Duration::from_millis(lat.guest_boot_ms + 1000)).await;
                let snap = Snapshot::take(&pve).await.expect("snapshot");
                (pve, snap)
            }
        };
        let (pve, snap) = deployed(new_sim()).await;
        let dir = std::env::temp_dir().join(format!("stand-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bench.rhai");
        std::fs::write(&path, &script).expect("script");
        let opts = RunOptions { lab: Some("bench".into()), ..RunOptions::default() };
        let check = Arc::new(stand::script::CheckScript::load(&path, &opts).expect("fn check"));
        let stands = deployed_stands(&snap, "bench", &[]).expect("stands");
        let per_node = 8;
        let agent = Arc::new(ClusterAgent::new(pve.clone(), tokio::runtime::Handle::current(), per_node));
        let start = tokio::time::Instant::now();
        let outcomes = check_stands(check, Arc::new(snap.clone()), stands, agent.clone(), Duration::from_secs(30)).await;
        let makespan = start.elapsed().as_secs_f64();
        let sheet = GradeSheet::new("bench", &outcomes);
        assert!(sheet.all_checked(), "{:#?}", outcomes.iter().find(|o| o.error.is_some()));
        assert_eq!(sheet.criteria.len(), criteria);
        let _ = std::fs::remove_dir_all(&dir);

        let (seq_pve, seq_snap) = deployed(new_sim()).await;
        let seq_vms = Scope { lab: "bench", only: &[], vms: &[] }.select(&seq_snap);
        let start = tokio::time::Instant::now();
        sequential_exec(seq_pve.as_ref(), &seq_vms, criteria).await;
        let seq = start.elapsed().as_secs_f64();

        // One exec: the POST, the command in the guest (the first poll comes 50 ms after
        // the POST, so at least that), the status GET. A stand's check runs its execs one
        // after the other; the nodes run `per_node` at once.
        let one = (lat.request_ms as f64 + (lat.guest_exec_ms as f64).max(50.0) + lat.request_ms as f64) / 1000.0;
        let chain = (vms * criteria) as f64 * one;
        let execs = (users * vms * criteria) as f64;
        let capacity = execs * one / (3 * per_node) as f64;
        let bound = chain.max(capacity);
        println!(
            "## stand check of {users} stands × {vms} VMs × {criteria} criteria ({} agent/exec, realistic latency, paused clock)",
            users * vms * criteria
        );
        println!("makespan            {:>8.1} s   ({} API calls)", makespan, agent.calls());
        println!("lower bound         {:>8.1} s   makespan / bound      = {:.2}   (one stand's execs in a row; {per_node} calls at once per node)", bound, makespan / bound);
        println!("sequential exec     {:>8.1} s   sequential / stand    = {:.1}×", seq, seq / makespan);
        println!();
    });
}

/// The default cluster with a copy of every template on each node's `local-lvm`, so each
/// node's clones take that node's storage lock instead of one shared NFS lock.
fn fixture_with_local_templates() -> String {
    let mut templates = String::new();
    for (n, base) in [(1, 100), (2, 200), (3, 300)] {
        for (i, (name, nets)) in [
            ("ecorouter", "vmxnet3,bridge=vmbr0,link_down=1"),
            ("alt-server", "virtio,bridge=vmbr0,firewall=1"),
            ("alt-workstation", "virtio,bridge=vmbr0,firewall=1"),
            ("debian-12", "virtio,bridge=vmbr0,firewall=1"),
        ]
        .iter()
        .enumerate()
        {
            templates.push_str(&format!(
                "  - {{ vmid: {}, name: {name}, node: pve{n}, storage: local-lvm, memory: 1024, cores: 1, disk_gib: 8, nets: [\"{nets}\"] }}\n",
                base + i
            ));
        }
    }
    let start = DEFAULT_FIXTURE.find("templates:\n").expect("templates") + "templates:\n".len();
    let end = DEFAULT_FIXTURE.find("users:").expect("users");
    format!("{}{}{}", &DEFAULT_FIXTURE[..start], templates, &DEFAULT_FIXTURE[end..])
}

fn makespan_vs_bound_and_sequential(users: usize, vms: usize, memory: u32, fixture: &Fixture, label: &str) {
    let rt = paused_runtime();
    rt.block_on(async {
        let lat = LatencyModel::realistic();
        let new_sim = || Sim::new(fixture, SimOptions { latency: lat.clone(), ..SimOptions::default() });
        let sim = new_sim();
        let pve = connect(&sim);
        let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let plan = plan_of(&class_script(users, vms, memory), snap.clone());
        let before = sim.stats();
        let report = apply(pve.clone(), &plan, snap.clone(), &options()).await;
        assert!(report.ok(), "{:#?}", report.failures);
        let after = sim.stats();
        let bound = lower_bound(&plan, &snap, &lat);

        let fresh = (after.requests - after.polls) - (before.requests - before.polls);
        let polls = after.polls - before.polls;
        let snap2 = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let plan2 = plan_of(&class_script(users, vms, memory), snap2.clone());
        let s = sim.stats();
        let noop = apply(pve.clone(), &plan2, snap2.clone(), &options()).await;
        assert!(noop.ok());
        let s2 = sim.stats();
        let snap3 = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let s3 = sim.stats();
        let down = destroy(pve.clone(), &snap3, "bench", &Doomed::select(&snap3, "bench", &[]), &options()).await;
        assert!(down.failures.is_empty());
        let s4 = sim.stats();

        let seq_sim = new_sim();
        let seq_pve = connect(&seq_sim);
        let seq_snap = Arc::new(Snapshot::take(&seq_pve).await.expect("snapshot"));
        let seq_plan = plan_of(&class_script(users, vms, memory), seq_snap);
        let start = tokio::time::Instant::now();
        sequential(seq_pve.as_ref(), &seq_plan, options().wait).await;
        let seq = start.elapsed().as_secs_f64();

        let n = plan.vms.len() as f64;
        println!(
            "## apply {users} users × {vms} VMs ({} VMs, {label}, realistic latency, paused clock)",
            plan.vms.len()
        );
        println!("makespan            {:>8.1} s", report.seconds);
        println!("lower bound         {:>8.1} s   makespan / bound      = {:.2}", bound, report.seconds / bound);
        println!("sequential          {:>8.1} s   sequential / stand    = {:.1}×", seq, seq / report.seconds);
        println!("requests per VM, fresh up       {:>6.2} (+ {:.2} polls)", fresh as f64 / n, polls as f64 / n);
        println!(
            "requests per VM, no-op re-up    {:>6.2} ({} writes)",
            (s2.requests - s.requests) as f64 / n,
            s2.writes - s.writes
        );
        println!(
            "requests per VM, down           {:>6.2} (+ {:.2} polls)",
            ((s4.requests - s4.polls) - (s3.requests - s3.polls)) as f64 / n,
            (s4.polls - s3.polls) as f64 / n
        );
        println!();
    });
}

/// `stand templates sync` on the default fixture (templates on shared NFS), then the same
/// class deployed before and after: what the copies gain, what they cost, when they pay off.
fn templates_sync_before_and_after(users: usize, vms: usize, memory: u32) {
    let rt = paused_runtime();
    rt.block_on(async {
        let lat = LatencyModel::realistic();
        let fixture = Fixture::default_cluster();
        let new_sim = || Sim::new(&fixture, SimOptions { latency: lat.clone(), ..SimOptions::default() });
        let script = class_script(users, vms, memory);

        let sim = new_sim();
        let pve = connect(&sim);
        let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let plan = plan_of(&script, snap.clone());
        let before = apply(pve.clone(), &plan, snap.clone(), &options()).await;
        assert!(before.ok(), "{:#?}", before.failures);
        let before_bound = lower_bound(&plan, &snap, &lat);

        let sim = new_sim();
        let pve = connect(&sim);
        let snap = Snapshot::take_all(&pve).await.expect("snapshot");
        let request = SyncRequest { first_vmid: 9000, ..SyncRequest::default() };
        let sync = templates::sync(&snap, &Catalog::of(&snap), &request).expect("sync plan");
        let start = tokio::time::Instant::now();
        let synced = stand::apply::run(pve.clone(), &sync.graph, &options()).await;
        assert!(synced.failures().is_empty(), "{:#?}", synced.failures());
        let sync_s = start.elapsed().as_secs_f64();
        let copies = sync.graph.steps().len();

        let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let plan = plan_of(&script, snap.clone());
        let after = apply(pve.clone(), &plan, snap.clone(), &options()).await;
        assert!(after.ok(), "{:#?}", after.failures);
        let after_bound = lower_bound(&plan, &snap, &lat);
        let gain = before.seconds - after.seconds;

        println!(
            "## templates sync, then {users} users × {vms} VMs ({} VMs, default 3-node fixture, realistic latency, paused clock)",
            plan.vms.len()
        );
        println!(
            "before sync         {:>8.1} s   makespan / bound      = {:.2}   (clones queue on nfs-shared's lock)",
            before.seconds,
            before.seconds / before_bound
        );
        println!(
            "after sync          {:>8.1} s   makespan / bound      = {:.2}   (each node clones from its own copy)",
            after.seconds,
            after.seconds / after_bound
        );
        println!("before / after      {:>8.2}×", before.seconds / after.seconds);
        println!("sync ({copies} copies)    {:>8.1} s   full clone + migrate + template per node", sync_s);
        if gain > 0.0 {
            println!("pays off after      {:>8} deployments (sync / gain per deployment = {:.2})", (sync_s / gain).ceil(), sync_s / gain);
        }
        println!();
    });
}

fn real_https(users: usize, vms: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
        let server = stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("serve");
        let creds = stand::pve::Credentials::from_token(&server.token).expect("token");
        let tls = stand::pve::TlsMode::Pinned(server.fingerprint.clone());
        let client = PveClient::new(&server.url, creds, &tls, stand::pve::ClientOptions::default()).expect("client");
        let pve: Arc<dyn Pve> = Arc::new(client);
        let start = Instant::now();
        let snap = Arc::new(Snapshot::take(&pve).await.expect("snapshot"));
        let plan = plan_of(&class_script(users, vms, 512), snap.clone());
        let opts = ApplyOptions {
            wait: WaitPolicy {
                first: Duration::from_millis(5),
                max: Duration::from_millis(20),
                ..WaitPolicy::default()
            },
            ..ApplyOptions::default()
        };
        let report = apply(pve, &plan, snap, &opts).await;
        let wall = start.elapsed().as_secs_f64();
        assert!(report.ok(), "{:#?}", report.failures);
        let stats = sim.stats();
        println!("## HTTPS client against `stand sim serve --latency none`, {users} × {vms}");
        println!(
            "snapshot + plan + apply  {wall:>7.2} s wall, {} requests, {:.0} requests/s",
            stats.requests,
            stats.requests as f64 / wall
        );
        println!();
        server.shutdown();
    });
}

fn fixture_with_nodes(nodes: usize) -> String {
    let mut nodes_yaml = String::new();
    for i in 1..=nodes {
        nodes_yaml.push_str(&format!("  - {{ name: pve{i}, cpus: 64, memory_gib: 1024 }}\n"));
    }
    let start = DEFAULT_FIXTURE.find("nodes:\n").expect("nodes") + "nodes:\n".len();
    let end = DEFAULT_FIXTURE.find("storages:").expect("storages");
    format!("{}{}{}", &DEFAULT_FIXTURE[..start], nodes_yaml, &DEFAULT_FIXTURE[end..])
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn engine_scale() {
    let rt = paused_runtime();
    rt.block_on(async {
        let fixture = Fixture::parse(&fixture_with_nodes(16), "16 nodes").expect("fixture");
        let sim = Sim::new(&fixture, SimOptions::default());
        let snap = Arc::new(Snapshot::take(&sim.session("root@pam")).await.expect("snapshot"));
        let rss_before = peak_rss_mib();
        let start = Instant::now();
        let plan = plan_of(&class_script(1000, 5, 512), snap);
        let took = start.elapsed().as_secs_f64();
        println!("## engine: script + plan of 1,000 users × 5 VMs on a 16-node fixture");
        println!("plan of {} VMs, {} bridges   {:>7.3} s", plan.vms.len(), plan.bridges.len(), took);
        if let (Some(b), Some(a)) = (rss_before, peak_rss_mib()) {
            println!("peak memory (process)      {a:>7.1} MiB (before planning {b:.1} MiB)");
        }
    });
    let exe = env!("CARGO_BIN_EXE_stand");
    let runs = 10;
    let start = Instant::now();
    for _ in 0..runs {
        let ok = std::process::Command::new(exe).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(ok, "stand --version runs");
    }
    println!("CLI start-up (`stand --version`) {:>5.1} ms", start.elapsed().as_secs_f64() * 1000.0 / runs as f64);
    println!();
}

/// A school's roster of `rows` students (surnames, given names and patronymics that repeat,
/// so namesakes get their suffixes), as a Windows-1251 `;` CSV and as an .xlsx.
fn rosters(dir: &Path, rows: usize) -> [std::path::PathBuf; 2] {
    const SURNAMES: [&str; 8] = ["Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Волков", "Ёлкин"];
    const FIRST: [&str; 6] = ["Пётр", "Анна", "Сергей", "Юлия", "Дмитрий", "Ольга"];
    const MIDDLE: [&str; 5] = ["Сергеевич", "Игоревна", "Андреевич", "Павловна", "Ильич"];
    let name = |i: usize| format!("{}{} {} {}", SURNAMES[i % 8], i / 240, FIRST[(i / 8) % 6], MIDDLE[(i / 48) % 5]);
    let mut text = String::from("ФИО;Группа\r\n");
    for i in 0..rows {
        text.push_str(&format!("{};ИС-{}\r\n", name(i), 21 + i % 4));
    }
    let csv = dir.join("roster.csv");
    std::fs::write(&csv, encoding_rs::WINDOWS_1251.encode(&text).0).expect("csv");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "ФИО").expect("cell");
    sheet.write_string(0, 1, "Группа").expect("cell");
    for i in 0..rows {
        sheet.write_string(i as u32 + 1, 0, name(i)).expect("cell");
        sheet.write_string(i as u32 + 1, 1, format!("ИС-{}", 21 + i % 4)).expect("cell");
    }
    let xlsx = dir.join("roster.xlsx");
    book.save(&xlsx).expect("xlsx");
    [csv, xlsx]
}

/// A roster of 10,000 rows read and planned (users, pools, ACLs), against the 1 s an
/// instructor waits for a plan.
fn roster_scale(rows: usize) {
    let rt = paused_runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = rosters(dir.path(), rows);
    println!("## rosters: {rows} students read and planned (users, pools, ACLs) on a 16-node fixture");
    rt.block_on(async {
        let fixture = Fixture::parse(&fixture_with_nodes(16), "16 nodes").expect("fixture");
        let sim = Sim::new(&fixture, SimOptions::default());
        let snap = Arc::new(Snapshot::take(&sim.session("root@pam")).await.expect("snapshot"));
        for file in &files {
            let script = format!("for u in users({:?}) {{ create_user(u); }}", file.display().to_string());
            let start = Instant::now();
            let plan = plan_of(&script, snap.clone());
            let took = start.elapsed().as_secs_f64();
            let kind = file.extension().and_then(|e| e.to_str()).unwrap_or_default();
            println!("{kind:<5} {} users planned   {took:>7.3} s   ({:.2} of the 1 s budget)", plan.users.len(), took);
        }
    });
    println!();
}

fn main() {
    // `cargo test --benches` runs this binary with no `--bench`: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    println!("# stand benchmarks{}\n", if full { "" } else { " (smoke run; `cargo bench` for the figures)" });
    engine_scale();
    roster_scale(10_000);
    let default = Fixture::default_cluster();
    let shared = "default 3-node fixture: templates on shared NFS";
    makespan_vs_bound_and_sequential(30, 4, 512, &default, shared);
    reset_vs_bound_and_sequential(30, 4);
    check_vs_bound_and_sequential(30, 6, 5);
    templates_sync_before_and_after(30, 3, 512);
    if full {
        makespan_vs_bound_and_sequential(100, 6, 256, &default, shared);
        let local = Fixture::parse(&fixture_with_local_templates(), "local templates").expect("fixture");
        makespan_vs_bound_and_sequential(30, 4, 512, &local, "3 nodes, a template copy per node on local-lvm");
        real_https(30, 4);
    }
}
