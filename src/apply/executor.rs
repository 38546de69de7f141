//! `stand up`: a plan becomes an action graph ([`deploy_graph`]), run by the one runner
//! with what each deploy action does ([`perform_deploy`]): clones that re-plan a VMID taken
//! meanwhile, bridges made under the next free name, NICs rewired to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::act::{ActError, Done};
use super::pending::foreign_pending;
use super::report::{ApplyReport, Credential, Failure};
use super::retry::{already_exists, transient};
use super::runner::{OnEnd, Outcome, Perform, run_with};
use crate::plan::{Action, ActionGraph, BridgePlan, LabSettings, Marker, Owner, Plan, Snapshot, Step, VmPlan};
use crate::pve::{
    ApiRequest, Backoff, BridgeParams, CloneParams, NetDevice, Params, Pve, PveError, PveExt, Secret, WaitPolicy,
};

/// Limits and timing of an apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// VM pipelines at once per node.
    pub per_node: usize,
    /// Clones at once per storage (PVE serializes volume creation per storage and times
    /// out a lock wait after 10 s).
    pub per_storage: usize,
    /// Task polling.
    pub wait: WaitPolicy,
    /// Attempts of an operation that fails transiently.
    pub attempts: u32,
    /// First backoff.
    pub backoff: Duration,
    /// Apply a node's network even when it has pending changes `stand` did not make.
    pub apply_foreign_network: bool,
    /// Show progress bars (a TTY and not `--quiet`).
    pub progress: bool,
    /// Without bars, a line on stderr per finished stand (output into a pipe or a file).
    pub stand_lines: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            per_node: 6,
            per_storage: 4,
            wait: WaitPolicy::default(),
            attempts: 6,
            backoff: Duration::from_millis(500),
            apply_foreign_network: false,
            progress: false,
            stand_lines: false,
        }
    }
}

impl ApplyOptions {
    /// The backoff of a repeated operation.
    pub fn retries(&self) -> Backoff {
        Backoff { attempts: self.attempts, first: self.backoff, max: Duration::from_secs(20) }
    }
}

/// What the deploy actions share during one `up`: the client, timing, the lab's
/// settings, and what happened at run time (bridges made under another name, VMIDs taken
/// meanwhile, VMs cloned by this run, whether the group exists).
struct Ctx {
    pve: Arc<dyn Pve>,
    opts: ApplyOptions,
    lab: String,
    vmid_hi: u32,
    /// Counts, renamed bridges and re-planned VMIDs (failures come from the runner).
    report: Mutex<ApplyReport>,
    /// Bridges found taken by someone else and made under another name: (node, planned) → made.
    renamed: Mutex<BTreeMap<(String, String), String>>,
    /// Planned VMID → the VMID it was cloned under.
    vmids: Mutex<BTreeMap<u32, u32>>,
    /// Planned VMIDs cloned by this run (their config is written whole, their state known).
    fresh: Mutex<BTreeSet<u32>>,
    /// The lab's group exists (made now or before).
    group_ok: AtomicBool,
    /// Per node, the bridges the plan names (a taken name is replaced by one outside them).
    planned_bridges: BTreeMap<String, Vec<String>>,
    bridge_base: u32,
    storage_limits: Mutex<BTreeMap<String, Arc<Semaphore>>>,
    snap: Arc<Snapshot>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ctx {
    fn count(&self, f: impl FnOnce(&mut ApplyReport)) {
        f(&mut lock(&self.report));
    }

    fn storage_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut m = lock(&self.storage_limits);
        m.entry(key.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.opts.per_storage.max(1)))).clone()
    }

    /// The VMID a planned VM was cloned under.
    fn vmid(&self, planned: u32) -> u32 {
        lock(&self.vmids).get(&planned).copied().unwrap_or(planned)
    }

    fn is_fresh(&self, planned: u32) -> bool {
        lock(&self.fresh).contains(&planned)
    }

    /// Creates something once: a repeat of a create whose answer was lost finds it made
    /// ("already exists"), which counts as done.
    async fn create<F, Fut>(&self, op: F) -> Result<(), PveError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), PveError>>,
    {
        self.retry(repeatable, |attempt| {
            let made = op();
            async move {
                match made.await {
                    Err(e) if attempt > 1 && already_exists(&e) => Ok(()),
                    other => other,
                }
            }
        })
        .await
    }

    async fn retry<T, F, Fut>(&self, retry_if: impl Fn(&PveError) -> bool, op: F) -> Result<T, PveError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, PveError>>,
    {
        self.opts.retries().run(retry_if, op).await
    }
}

/// A write that may be repeated: transient, or its answer was lost (the caller re-checks).
fn repeatable(e: &PveError) -> bool {
    transient(e) || matches!(e, PveError::Transport { .. })
}

/// The actions that deploy `plan` (made against `snap`): the group, then each student's
/// user (joining the group if it was made), pool and ACLs; per node the bridges, one
/// network reload, then each private bridge's `SDN.Use` for its owner; per VM clone (after
/// its pool), configure (after the clone and, for NICs, the node's network) and start.
pub fn deploy_graph(plan: &Plan, snap: &Snapshot, apply_foreign_network: bool) -> ActionGraph {
    let mut g = ActionGraph::default();
    let lab = plan.lab.clone().unwrap_or_else(|| LabSettings::new(plan.lab_name()));
    let group = plan.group.as_ref();
    let group_step = group
        .filter(|gp| !gp.exists)
        .map(|gp| g.add(Action::CreateGroup { groupid: gp.groupid.clone(), comment: gp.comment.clone() }, Vec::new()));
    let waits_group: Vec<usize> = group_step.into_iter().collect();
    let mut user_steps: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pool_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &plan.users {
        let password = u.password.clone().map(Secret::new);
        let user_step = if !u.exists {
            let a = Action::CreateUser {
                userid: u.userid.clone(),
                comment: u.comment.clone(),
                group: group.map(|gp| gp.groupid.clone()),
                password,
            };
            Some(g.add_edges(a, Vec::new(), Vec::new(), waits_group.clone()))
        } else if u.comment_update || (group.is_some() && !u.in_group) || password.is_some() {
            let a = Action::UpdateUser {
                userid: u.userid.clone(),
                comment: u.comment_update.then(|| u.comment.clone()),
                join_group: group.filter(|_| !u.in_group).map(|gp| gp.groupid.clone()),
                password,
            };
            Some(g.add_edges(a, Vec::new(), Vec::new(), waits_group.clone()))
        } else {
            None
        };
        let pool_step = (!u.pool_exists).then(|| {
            let comment = Marker::new(&[("lab", &lab.name), ("user", &u.userid)]).to_string();
            g.add(Action::CreatePool { poolid: u.pool.clone(), comment }, Vec::new())
        });
        if let Some(s) = user_step {
            user_steps.insert(&u.userid, s);
        }
        if let Some(s) = pool_step {
            pool_steps.insert(&u.pool, s);
        }
        let path = format!("/pool/{}", u.pool);
        if !u.acl_exists {
            let after = user_step.into_iter().chain(pool_step).collect();
            g.add(Action::SetAcl { path: path.clone(), role: lab.role.clone(), ugid: u.userid.clone() }, after);
        }
        if let Some(t) = &u.teacher_acl {
            g.add(Action::SetAcl { path, role: lab.role.clone(), ugid: t.clone() }, pool_step.into_iter().collect());
        }
    }
    let mut nodes: Vec<&str> =
        plan.bridges.iter().map(|b| b.node.as_str()).chain(plan.vms.iter().map(|v| v.node.as_str())).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut network_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for node in nodes {
        let bridges: Vec<&BridgePlan> = plan.bridges.iter().filter(|b| b.node == node).collect();
        let planned: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
        let foreign = foreign_pending(snap, node, &planned);
        let ours_pending = snap.pending.contains_key(node) && foreign.is_empty();
        let changes: Vec<&&BridgePlan> = bridges.iter().filter(|b| !b.exists || b.comment_update).collect();
        let reload = if changes.is_empty() && !ours_pending {
            None
        } else if !foreign.is_empty() && !apply_foreign_network {
            // Nothing is staged over someone else's pending changes: the reload says why.
            Some(g.add(Action::ReloadNetwork { node: node.to_string(), foreign }, Vec::new()))
        } else {
            let staged = changes
                .iter()
                .map(|b| {
                    let a = if b.exists {
                        Action::MarkBridge {
                            node: node.to_string(),
                            iface: b.iface.clone(),
                            comment: b.comment.clone(),
                        }
                    } else {
                        Action::CreateBridge {
                            node: node.to_string(),
                            iface: b.iface.clone(),
                            vlan_aware: b.vlan_aware,
                            comment: b.comment.clone(),
                        }
                    };
                    g.add(a, Vec::new())
                })
                .collect();
            Some(g.add(Action::ReloadNetwork { node: node.to_string(), foreign }, staged))
        };
        if let Some(r) = reload {
            network_steps.insert(node, r);
        }
        for b in bridges {
            let Some(owner) = &b.owner else { continue };
            let wanted = plan.users.iter().any(|u| u.userid == *owner && u.sdn_acls.contains(&b.iface));
            if wanted {
                let after = reload.into_iter().chain(user_steps.get(owner.as_str()).copied()).collect();
                let a = Action::GrantBridge { node: node.to_string(), iface: b.iface.clone(), user: owner.clone() };
                g.add(a, after);
            }
        }
    }
    for vm in &plan.vms {
        let boxed = || Box::new(vm.clone());
        let clone =
            g.add(Action::CloneVm { vm: boxed() }, pool_steps.get(vm.pool.as_str()).copied().into_iter().collect());
        // NICs name bridges: they wait for the node's network (and any renamed bridge).
        let network =
            network_steps.get(vm.node.as_str()).copied().filter(|_| vm.nets.iter().flatten().next().is_some());
        let only = vm.exists.then(|| vm.update.clone());
        let configure =
            g.add(Action::ConfigureVm { vm: boxed(), only }, std::iter::once(clone).chain(network).collect());
        if vm.start {
            let network = network_steps.get(vm.node.as_str()).copied();
            g.add(Action::StartVm { vm: boxed() }, std::iter::once(configure).chain(network).collect());
        }
    }
    g
}

/// Applies `plan` (made against `snap`) and reports what happened. Never panics on cluster
/// errors: each failure is in the report, and the other stands go on.
pub async fn apply(pve: Arc<dyn Pve>, plan: &Plan, snap: Arc<Snapshot>, opts: &ApplyOptions) -> ApplyReport {
    let clock = tokio::time::Instant::now();
    let graph = deploy_graph(plan, &snap, opts.apply_foreign_network);
    let mut planned_bridges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in &plan.bridges {
        planned_bridges.entry(b.node.clone()).or_default().push(b.iface.clone());
    }
    let ctx = Arc::new(Ctx {
        pve,
        opts: opts.clone(),
        lab: plan.lab_name().to_string(),
        vmid_hi: plan.lab.as_ref().map(|l| l.vmid_range.1).unwrap_or(999_999),
        report: Mutex::new(ApplyReport::default()),
        renamed: Mutex::new(BTreeMap::new()),
        vmids: Mutex::new(BTreeMap::new()),
        fresh: Mutex::new(BTreeSet::new()),
        group_ok: AtomicBool::new(plan.group.as_ref().is_some_and(|g| g.exists)),
        planned_bridges,
        bridge_base: plan.lab.as_ref().map(|l| l.bridge_base).unwrap_or(1000),
        storage_limits: Mutex::new(BTreeMap::new()),
        snap,
    });
    let progress = Progress::new(plan, &graph, opts, clock);
    let act_ctx = ctx.clone();
    let act: Perform = Arc::new(move |a| {
        let ctx = act_ctx.clone();
        Box::pin(async move { perform_deploy(&ctx, &a).await })
    });
    let on_end: OnEnd = {
        let p = progress.clone();
        Arc::new(move |step, outcome| p.step_ended(step, outcome))
    };
    let run = run_with(&graph, opts.per_node, act, Some(on_end)).await;
    progress.finish();
    let mut report = lock(&ctx.report).clone();
    report.failures = run.failures();
    // A VM that did not get made because something before it failed is named once.
    let mut named: BTreeSet<u32> = BTreeSet::new();
    for (step, outcome) in graph.steps().iter().zip(&run.outcomes) {
        if let (Outcome::Cancelled, Some(vmid)) = (outcome, step.action.vm())
            && !report.failures.iter().any(|f| f.object == step.action.object())
            && named.insert(vmid)
        {
            report.failures.push(Failure::new(
                step.action.object(),
                "not done: a step it waits for failed (its pool, its node's network, or its clone)",
                "see the failure it waits for; re-run `stand up`",
            ));
        }
    }
    let user_failed = |user: &str| report.failures.iter().any(|f| f.object == format!("user {user}"));
    report.credentials = Credential::of_plan(plan).into_iter().filter(|c| !user_failed(&c.user)).collect();
    report.seconds = clock.elapsed().as_secs_f64();
    report
}

/// Progress of an `up`: a bar per node on a terminal, else a line per finished stand.
#[derive(Clone)]
struct Progress {
    bars: BTreeMap<String, indicatif::ProgressBar>,
    /// The id of each VM's last step → (node, student).
    last_steps: BTreeMap<usize, (String, String)>,
    stands: Arc<Mutex<BTreeMap<String, StandProgress>>>,
    lines: bool,
    since: tokio::time::Instant,
}

/// A stand's VMs: how many, how many are not finished, which failed.
#[derive(Default)]
struct StandProgress {
    total: usize,
    left: usize,
    failed: Vec<String>,
}

impl Progress {
    fn new(plan: &Plan, graph: &ActionGraph, opts: &ApplyOptions, since: tokio::time::Instant) -> Progress {
        let mut last: BTreeMap<u32, usize> = BTreeMap::new();
        for step in graph.steps() {
            if let Some(vmid) = step.action.vm() {
                last.insert(vmid, step.id);
            }
        }
        let mut last_steps = BTreeMap::new();
        let mut stands: BTreeMap<String, StandProgress> = BTreeMap::new();
        let mut per_node: BTreeMap<String, u64> = BTreeMap::new();
        for vm in &plan.vms {
            if let Some(id) = last.get(&vm.vmid) {
                last_steps.insert(*id, (vm.node.clone(), vm.user.clone()));
            }
            let s = stands.entry(vm.user.clone()).or_default();
            s.total += 1;
            s.left += 1;
            *per_node.entry(vm.node.clone()).or_default() += 1;
        }
        let bars = match opts.progress.then(indicatif::MultiProgress::new) {
            Some(mp) => per_node
                .into_iter()
                .map(|(n, total)| {
                    let bar = mp.add(indicatif::ProgressBar::new(total));
                    let style = indicatif::ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} VMs {msg} ({elapsed}, eta {eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_prefix(n.clone());
                    (n, bar)
                })
                .collect(),
            None => BTreeMap::new(),
        };
        Progress { bars, last_steps, stands: Arc::new(Mutex::new(stands)), lines: opts.stand_lines, since }
    }

    /// A VM is finished when its last step ends (after a failure it ends cancelled).
    fn step_ended(&self, step: &Step, outcome: &Outcome) {
        let Some((node, user)) = self.last_steps.get(&step.id) else { return };
        if let Some(bar) = self.bars.get(node) {
            bar.inc(1);
        }
        let finished = {
            let mut stands = lock(&self.stands);
            let Some(s) = stands.get_mut(user) else { return };
            s.left = s.left.saturating_sub(1);
            if matches!(outcome, Outcome::Failed(_) | Outcome::Cancelled) {
                s.failed.push(step.action.object());
            }
            (s.left == 0).then(|| (s.total, s.failed.clone()))
        };
        if let Some((total, failed)) = finished.filter(|_| self.lines) {
            let secs = self.since.elapsed().as_secs_f64();
            let vms = if total == 1 { "1 VM".to_string() } else { format!("{total} VMs") };
            if failed.is_empty() {
                crate::errln!("✓ {user}: {vms} on {node} ({secs:.1} s)");
            } else {
                crate::errln!("✗ {user}: {} of {vms} failed ({}) ({secs:.1} s)", failed.len(), failed.join(", "));
            }
        }
    }

    fn finish(&self) {
        for b in self.bars.values() {
            b.finish();
        }
    }
}

/// Carries out one deploy action (removals go to [`super::act::perform`]).
async fn perform_deploy(ctx: &Ctx, action: &Action) -> Result<Done, ActError> {
    let pve = &ctx.pve;
    match action {
        Action::CreateGroup { groupid, comment } => {
            ctx.create(|| pve.create_group(groupid, Some(comment)))
                .await
                .map_err(|e| ActError::new(e, "check Group.Allocate on /access/groups; re-run `stand up`"))?;
            ctx.group_ok.store(true, Ordering::SeqCst);
            Ok(Done::Changed)
        }
        Action::CreateUser { userid, comment, group, password } => {
            let group = group.as_deref().filter(|_| ctx.group_ok.load(Ordering::SeqCst));
            let password = password.as_ref().map(Secret::expose);
            ctx.create(|| pve.create_user_in(userid, password, Some(comment), group)).await.map_err(|e| {
                ActError::new(e, "check the token has User.Modify and Realm.AllocateUser; re-run `stand up`")
            })?;
            ctx.count(|r| r.users_created += 1);
            Ok(Done::Changed)
        }
        Action::UpdateUser { userid, comment, join_group, password } => {
            if let Some(c) = comment {
                let req = ApiRequest::put(format!("/access/users/{userid}")).param("comment", c);
                ctx.retry(repeatable, |_| pve.exec(req.clone()))
                    .await
                    .map_err(|e| ActError::new(e, "re-run `stand up`"))?;
            }
            if let Some(g) = join_group.as_deref().filter(|_| ctx.group_ok.load(Ordering::SeqCst)) {
                ctx.retry(repeatable, |_| pve.join_group(userid, g))
                    .await
                    .map_err(|e| ActError::new(e, "check User.Modify; re-run `stand up`"))?;
            }
            if let Some(p) = password {
                ctx.retry(repeatable, |_| pve.set_password(userid, p.expose()))
                    .await
                    .map_err(|e| ActError::new(e, "the password was not reset; re-run with --reset-passwords"))?;
            }
            Ok(Done::Changed)
        }
        Action::CreatePool { poolid, comment } => {
            ctx.create(|| pve.create_pool(poolid, Some(comment)))
                .await
                .map_err(|e| ActError::new(e, "check Pool.Allocate; re-run `stand up`"))?;
            ctx.count(|r| r.pools_created += 1);
            Ok(Done::Changed)
        }
        Action::SetAcl { path, role, ugid } => set_acl(ctx, path, role, ugid).await,
        Action::GrantBridge { node, iface, user } => {
            let path = format!("/sdn/zones/localnetwork/{}", made_name(ctx, node, iface));
            set_acl(ctx, &path, "PVESDNUser", user).await
        }
        Action::CreateBridge { node, iface, vlan_aware, comment } => {
            let b = BridgePlan {
                node: node.clone(),
                iface: iface.clone(),
                vlan_aware: *vlan_aware,
                comment: comment.clone(),
                owner: None,
                alias: None,
                exists: false,
                comment_update: false,
            };
            let planned: Vec<&str> =
                ctx.planned_bridges.get(node).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
            create_bridge(ctx, node, &b, &planned)
                .await
                .map_err(|e| ActError::new(e, "check Sys.Modify on /nodes; re-run `stand up`"))?;
            ctx.count(|r| r.bridges_created += 1);
            Ok(Done::Changed)
        }
        Action::MarkBridge { node, iface, comment } => ctx
            .retry(repeatable, |_| pve.set_bridge_comment(node, iface, comment))
            .await
            .map(|()| Done::Changed)
            .map_err(|e| ActError::new(e, "check Sys.Modify on /nodes; re-run `stand up`")),
        Action::ReloadNetwork { node, foreign } => {
            if !foreign.is_empty() && !ctx.opts.apply_foreign_network {
                return Err(ActError::new(
                    format!("{node} has pending network changes stand did not make ({})", foreign.join(", ")),
                    "review them in the PVE GUI (System → Network: Apply or Revert), or pass --apply-foreign-network",
                ));
            }
            ctx.retry(repeatable, |_| async {
                let upid = pve.apply_network(node).await?;
                pve.wait_task(&upid, ctx.opts.wait).await
            })
            .await
            .map_err(|e| {
                ActError::new(e, "the bridges are staged; check `ifreload -a` on the node, then re-run `stand up`")
            })?;
            ctx.count(|r| r.networks_applied += 1);
            Ok(Done::Changed)
        }
        Action::CloneVm { vm } => {
            if vm.exists {
                // It may still be under a clone of an earlier run, which may yet fail.
                match wait_unlocked(ctx, &vm.node, vm.vmid).await {
                    Ok(true) => return Ok(Done::AlreadyDone),
                    Ok(false) => {}
                    Err(e) => return Err(ActError::new(e, "re-run `stand up`")),
                }
            }
            let vmid = clone_vm(ctx, vm).await.map_err(|e| ActError::new(&e, clone_hint(&e)))?;
            lock(&ctx.vmids).insert(vm.vmid, vmid);
            lock(&ctx.fresh).insert(vm.vmid);
            ctx.count(|r| r.vms_created += 1);
            Ok(Done::Changed)
        }
        Action::ConfigureVm { vm, only } => {
            let vmid = ctx.vmid(vm.vmid);
            if ctx.is_fresh(vm.vmid) {
                return configure(ctx, vm, vmid, None)
                    .await
                    .map(|()| Done::Changed)
                    .map_err(|e| ActError::new(e, "the VM exists without its NICs; re-run `stand up` to finish it"));
            }
            match only.as_deref() {
                Some([]) => Ok(Done::AlreadyDone),
                keys => {
                    configure(ctx, vm, vmid, keys).await.map_err(|e| ActError::new(e, "re-run `stand up`"))?;
                    ctx.count(|r| r.vms_updated += 1);
                    Ok(Done::Changed)
                }
            }
        }
        Action::StartVm { vm } => {
            let fresh = ctx.is_fresh(vm.vmid);
            if !fresh && !vm.needs_start {
                return Ok(Done::AlreadyDone);
            }
            start_vm(ctx, vm, ctx.vmid(vm.vmid), fresh).await.map_err(|e| {
                ActError::new(e, "check the node's memory and the VM's bridges; `stand up` again starts it")
            })?;
            ctx.count(|r| r.vms_started += 1);
            Ok(Done::Changed)
        }
        removal => {
            let pve = ctx.pve.clone();
            super::act::perform(&*pve, removal, &ctx.opts).await
        }
    }
}

async fn set_acl(ctx: &Ctx, path: &str, role: &str, userid: &str) -> Result<Done, ActError> {
    ctx.retry(repeatable, |_| ctx.pve.set_acl(path, role, Some(userid), None, false))
        .await
        .map_err(|e| ActError::new(e, "check Permissions.Modify; re-run `stand up`"))?;
    ctx.count(|r| r.acls_set += 1);
    Ok(Done::Changed)
}

/// Creates one bridge; when its name was taken meanwhile by something not ours, creates it
/// under the next free name. Returns the name made.
async fn create_bridge(ctx: &Ctx, node: &str, b: &BridgePlan, planned: &[&str]) -> Result<String, PveError> {
    let pve = &ctx.pve;
    let mut iface = b.iface.clone();
    loop {
        let p = BridgeParams {
            iface: iface.clone(),
            autostart: true,
            vlan_aware: b.vlan_aware,
            ports: None,
            comments: Some(b.comment.clone()),
        };
        let err = match ctx.retry(repeatable, |_| pve.create_bridge(node, &p)).await {
            Ok(()) => return Ok(iface),
            Err(e) if already_exists(&e) => e,
            Err(e) => return Err(e),
        };
        let net = ctx.retry(repeatable, |_| pve.network(node)).await?;
        let existing = net.ifaces.iter().find(|i| i.iface == iface);
        if existing.is_some_and(|i| i.comments.as_deref().map(str::trim_end) == Some(b.comment.as_str())) {
            return Ok(iface); // ours: an earlier attempt whose answer was lost
        }
        let taken: Vec<&str> = net.ifaces.iter().map(|i| i.iface.as_str()).chain(planned.iter().copied()).collect();
        let Some(free) = (ctx.bridge_base..10_000).map(|n| format!("vmbr{n}")).find(|n| !taken.contains(&n.as_str()))
        else {
            return Err(err);
        };
        tracing::info!(node, from = %iface, to = %free, "bridge name taken meanwhile; using the next free one");
        ctx.renamed.lock().unwrap_or_else(|e| e.into_inner()).insert((node.to_string(), b.iface.clone()), free.clone());
        ctx.count(|r| r.renamed_bridges.push(format!("{node}/{} → {free}", b.iface)));
        iface = free;
    }
}

/// The name a planned bridge was made under.
fn made_name(ctx: &Ctx, node: &str, planned: &str) -> String {
    let renamed = ctx.renamed.lock().unwrap_or_else(|e| e.into_inner());
    renamed.get(&(node.to_string(), planned.to_string())).cloned().unwrap_or_else(|| planned.to_string())
}

/// Waits until a VM's config has no lock; `Ok(false)` if the VM does not exist.
async fn wait_unlocked(ctx: &Ctx, node: &str, vmid: u32) -> Result<bool, PveError> {
    let start = tokio::time::Instant::now();
    let mut delay = ctx.opts.wait.first;
    loop {
        match ctx.pve.vm_config(node, vmid).await {
            Ok(cfg) if cfg.get("lock").is_none() => return Ok(true),
            Ok(_) => {}
            Err(e) if e.failure().is_some_and(|f| f.message.contains("does not exist")) => return Ok(false),
            Err(e) if transient(&e) => {}
            Err(e) => return Err(e),
        }
        if start.elapsed() > ctx.opts.wait.timeout {
            return Err(PveError::TaskTimeout {
                upid: format!("lock of VM {vmid}"),
                seconds: ctx.opts.wait.timeout.as_secs(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = ctx.opts.wait.next(delay);
    }
}

fn is_ours(ctx: &Ctx, cfg: &crate::pve::VmConfig, vm: &VmPlan) -> bool {
    let owner = cfg.get("description").and_then(|d| Owner::of_vm(&d));
    matches!(owner, Some(Owner::Vm { lab, user, name }) if lab == ctx.lab && user == vm.user && name == vm.spec_name)
}

/// The storage whose allocation lock a clone takes.
fn clone_storage(ctx: &Ctx, vm: &VmPlan) -> String {
    let sid = match &vm.storage {
        Some(s) => s.clone(),
        None => ctx.snap.vm(vm.template).and_then(|t| t.disk_storages().into_iter().next()).unwrap_or_default(),
    };
    match ctx.snap.storage(&sid) {
        Some(s) if s.shared => sid,
        _ => format!("{}/{sid}", vm.template_node),
    }
}

/// Clones the VM; returns the VMID used (re-planned if the planned one was taken meanwhile).
async fn clone_vm(ctx: &Ctx, vm: &VmPlan) -> Result<u32, PveError> {
    let pve = &ctx.pve;
    let mut vmid = vm.vmid;
    let mut attempt = 1;
    let mut delay = ctx.opts.backoff;
    loop {
        let params = CloneParams {
            newid: vmid,
            name: Some(vm.name.clone()),
            target: (vm.node != vm.template_node).then(|| vm.node.clone()),
            full: vm.full.then_some(true),
            storage: vm.storage.clone(),
            pool: Some(vm.pool.clone()),
            description: Some(vm.description.clone()),
        };
        let limit = ctx.storage_limit(&clone_storage(ctx, vm));
        let permit = limit.acquire_owned().await;
        let result = match pve.clone_vm(&vm.template_node, vm.template, &params).await {
            Ok(upid) => pve.wait_task(&upid, ctx.opts.wait).await.map(|_| ()),
            Err(e) => Err(e),
        };
        drop(permit);
        let err = match result {
            Ok(()) => return Ok(vmid),
            Err(e) => e,
        };
        if err.failure().is_some_and(|f| f.message.contains("config file already exists")) {
            // Whose is it? Only a VM we can read and that is not ours is re-planned around.
            let owner = ctx.retry(repeatable, |_| pve.vm_config(&vm.node, vmid)).await;
            match owner {
                Ok(cfg) if is_ours(ctx, &cfg, vm) => {
                    if wait_unlocked(ctx, &vm.node, vmid).await? {
                        return Ok(vmid);
                    }
                    continue;
                }
                // Not on our node: the VMID is someone else's elsewhere in the cluster.
                Err(e) if !e.failure().is_some_and(|f| f.message.contains("does not exist")) => return Err(e),
                Err(_) | Ok(_) => {
                    let old = vmid;
                    vmid = next_free_vmid(ctx, vmid + 1).await?;
                    ctx.count(|r| r.replanned_vmids.push((old, vmid)));
                    continue;
                }
            }
        }
        if matches!(err, PveError::Transport { maybe_applied: true, .. }) {
            // The clone may have started: look before cloning again.
            if wait_unlocked(ctx, &vm.node, vmid).await.unwrap_or(false) {
                return Ok(vmid);
            }
        }
        if attempt >= ctx.opts.attempts || !repeatable(&err) {
            return Err(err);
        }
        tracing::info!(vmid, attempt, error = %err, "retrying clone");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(20));
        attempt += 1;
    }
}

async fn next_free_vmid(ctx: &Ctx, from: u32) -> Result<u32, PveError> {
    for id in from..=ctx.vmid_hi {
        let probe = ctx.pve.call(ApiRequest::get("/cluster/nextid").param("vmid", id)).await;
        match probe {
            Ok(_) => return Ok(id),
            Err(e) if e.status() == Some(400) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PveError::Decode {
        path: "/cluster/nextid".into(),
        message: format!("no free VMID left up to {}: widen the lab's vmid_range", ctx.vmid_hi),
    })
}

fn config_params(vm: &VmPlan, only: Option<&[String]>, made: impl Fn(&str) -> String) -> Params {
    let want = |k: &str| only.is_none_or(|o| o.iter().any(|x| x == k));
    let mut p = Params::new();
    let mut delete = Vec::new();
    for (i, n) in vm.nets.iter().enumerate() {
        let key = format!("net{i}");
        if let Some(n) = n
            && want(&key)
        {
            let nic = match n.parse::<NetDevice>() {
                Ok(mut dev) if dev.bridge.as_deref().is_some_and(|b| made(b) != b) => {
                    dev.bridge = dev.bridge.as_deref().map(&made);
                    dev.to_string()
                }
                _ => n.clone(),
            };
            p.insert(key, nic);
        }
    }
    if only.is_none() {
        delete.extend(vm.drop_nets.iter().cloned());
    }
    if let Some(o) = only {
        for k in o.iter().filter(|k| k.starts_with("net")) {
            let idx: usize = k[3..].parse().unwrap_or(usize::MAX);
            if idx >= vm.nets.len() {
                delete.push(k.clone());
            }
        }
    }
    if let Some(m) = vm.memory.filter(|_| want("memory")) {
        p.insert("memory".into(), m.to_string());
    }
    if let Some(c) = vm.cores.filter(|_| want("cores")) {
        p.insert("cores".into(), c.to_string());
    }
    if want("tags") {
        p.insert("tags".into(), vm.tags.join(";"));
    }
    if only.is_none() {
        p.insert("description".into(), vm.description.clone());
    }
    if !delete.is_empty() {
        p.insert("delete".into(), delete.join(","));
    }
    p
}

async fn configure(ctx: &Ctx, vm: &VmPlan, vmid: u32, only: Option<&[String]>) -> Result<(), PveError> {
    let params = config_params(vm, only, |b| made_name(ctx, &vm.node, b));
    if params.is_empty() {
        return Ok(());
    }
    ctx.retry(
        |e| repeatable(e) || e.failure().is_some_and(|f| f.message.starts_with("VM is locked")),
        |_| {
            let params = params.clone();
            async move {
                let r = ctx.pve.set_vm_config(&vm.node, vmid, params).await;
                if let Err(e) = &r
                    && e.failure().is_some_and(|f| f.message.starts_with("VM is locked"))
                {
                    wait_unlocked(ctx, &vm.node, vmid).await?;
                }
                r
            }
        },
    )
    .await
}

/// Starts the VM. A VM cloned by this run is known to be stopped: its status is read only
/// when a start is repeated.
async fn start_vm(ctx: &Ctx, vm: &VmPlan, vmid: u32, fresh: bool) -> Result<(), PveError> {
    ctx.retry(repeatable, |attempt| async move {
        if (!fresh || attempt > 1) && ctx.pve.vm_status(&vm.node, vmid).await?.status == "running" {
            return Ok(());
        }
        let upid = ctx.pve.vm_power(&vm.node, vmid, "start").await?;
        match ctx.pve.wait_task(&upid, ctx.opts.wait).await {
            Err(PveError::TaskFailed { exitstatus, .. }) if exitstatus.contains("already running") => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await
}

fn clone_hint(e: &PveError) -> &'static str {
    if e.is_lock_timeout() {
        "the storage was too busy; lower --per-storage or re-run `stand up`"
    } else if e.status() == Some(403) {
        "the token lacks a privilege: run `stand doctor`"
    } else {
        "re-run `stand up`; it continues where this run stopped"
    }
}
