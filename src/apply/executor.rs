//! The executor: runs a plan's operations as a dependency graph with bounded concurrency.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::pending::foreign_pending;
use super::report::{ApplyReport, Credential, Failure};
use super::retry::{already_exists, transient};
use crate::plan::{BridgePlan, GroupPlan, Marker, Owner, Plan, Snapshot, UserPlan, VmPlan};
use crate::pve::{
    ApiRequest, Backoff, BridgeParams, CloneParams, NetDevice, Params, Pve, PveError, PveExt, WaitPolicy,
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

type Gate = watch::Sender<Option<bool>>;

fn gate() -> Gate {
    watch::channel(None).0
}

async fn passed(g: &Gate) -> bool {
    let mut rx = g.subscribe();
    loop {
        if let Some(v) = *rx.borrow_and_update() {
            return v;
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

struct Ctx {
    pve: Arc<dyn Pve>,
    opts: ApplyOptions,
    lab: String,
    vmid_hi: u32,
    report: Mutex<ApplyReport>,
    pools: BTreeMap<String, Gate>,
    /// Set once each user exists (or could not be made).
    users: BTreeMap<String, Gate>,
    /// The students' group and whether it exists (set once it is made).
    group: Option<(String, Gate)>,
    networks: BTreeMap<String, Gate>,
    /// Bridges found taken by someone else and made under another name: (node, planned) → made.
    renamed: Mutex<BTreeMap<(String, String), String>>,
    /// Per user, the planned bridges whose `SDN.Use` they get.
    sdn_acls: BTreeMap<String, Vec<String>>,
    bridge_base: u32,
    /// Role of students (and the teacher) on the pools.
    role: String,
    node_limits: BTreeMap<String, Arc<Semaphore>>,
    storage_limits: Mutex<BTreeMap<String, Arc<Semaphore>>>,
    snap: Arc<Snapshot>,
    progress: Option<indicatif::MultiProgress>,
}

impl Ctx {
    fn fail(&self, object: String, e: &dyn std::fmt::Display, hint: &str) {
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
        r.failures.push(Failure::new(object, e, hint));
    }

    fn count(&self, f: impl FnOnce(&mut ApplyReport)) {
        f(&mut self.report.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn storage_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut m = self.storage_limits.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.opts.per_storage.max(1)))).clone()
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

/// Applies `plan` (made against `snap`) and reports what happened. Never panics on cluster
/// errors: each failure is in the report, and the other stands go on.
pub async fn apply(pve: Arc<dyn Pve>, plan: &Plan, snap: Arc<Snapshot>, opts: &ApplyOptions) -> ApplyReport {
    let clock = tokio::time::Instant::now();
    let mut nodes: Vec<String> =
        plan.bridges.iter().map(|b| b.node.clone()).chain(plan.vms.iter().map(|v| v.node.clone())).collect();
    nodes.sort();
    nodes.dedup();
    let ctx = Arc::new(Ctx {
        pve,
        opts: opts.clone(),
        lab: plan.lab_name().to_string(),
        vmid_hi: plan.lab.as_ref().map(|l| l.vmid_range.1).unwrap_or(999_999),
        report: Mutex::new(ApplyReport::default()),
        pools: plan.users.iter().map(|u| (u.pool.clone(), gate())).collect(),
        users: plan.users.iter().map(|u| (u.userid.clone(), gate())).collect(),
        group: plan.group.as_ref().map(|g| (g.groupid.clone(), gate())),
        renamed: Mutex::new(BTreeMap::new()),
        sdn_acls: plan.users.iter().map(|u| (u.userid.clone(), u.sdn_acls.clone())).collect(),
        bridge_base: plan.lab.as_ref().map(|l| l.bridge_base).unwrap_or(1000),
        role: plan.lab.as_ref().map(|l| l.role.clone()).unwrap_or_else(|| "PVEVMAdmin".into()),
        networks: nodes.iter().map(|n| (n.clone(), gate())).collect(),
        node_limits: nodes.iter().map(|n| (n.clone(), Arc::new(Semaphore::new(opts.per_node.max(1))))).collect(),
        storage_limits: Mutex::new(BTreeMap::new()),
        snap,
        progress: opts.progress.then(indicatif::MultiProgress::new),
    });
    let mut set = JoinSet::new();
    if let Some(g) = plan.group.clone() {
        let c = ctx.clone();
        set.spawn(async move { deploy_group(&c, &g).await });
    }
    for u in plan.users.clone() {
        let c = ctx.clone();
        set.spawn(async move { deploy_user(&c, &u).await });
    }
    for node in &nodes {
        let bridges: Vec<BridgePlan> = plan.bridges.iter().filter(|b| b.node == *node).cloned().collect();
        let (c, node) = (ctx.clone(), node.clone());
        set.spawn(async move { deploy_network(&c, &node, &bridges).await });
    }
    let bars: BTreeMap<String, indicatif::ProgressBar> = match &ctx.progress {
        Some(mp) => nodes
            .iter()
            .map(|n| {
                let total = plan.vms.iter().filter(|v| v.node == *n).count() as u64;
                let bar = mp.add(indicatif::ProgressBar::new(total));
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {pos}/{len} VMs {msg} ({elapsed}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(n.clone());
                (n.clone(), bar)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    // VMs left per stand, for a line when a stand is done.
    let left: Arc<Mutex<BTreeMap<String, usize>>> = Arc::new(Mutex::new(BTreeMap::new()));
    for vm in &plan.vms {
        *left.lock().unwrap_or_else(|e| e.into_inner()).entry(vm.user.clone()).or_default() += 1;
    }
    for vm in plan.vms.clone() {
        let c = ctx.clone();
        let bar = bars.get(&vm.node).cloned();
        let (left, all) = (left.clone(), plan.vms.clone());
        set.spawn(async move {
            deploy_vm(&c, &vm).await;
            if let Some(b) = bar {
                b.inc(1);
            }
            let done = {
                let mut left = left.lock().unwrap_or_else(|e| e.into_inner());
                let n = left.entry(vm.user.clone()).or_default();
                *n = n.saturating_sub(1);
                *n == 0
            };
            if done && c.opts.stand_lines {
                stand_line(&c, &vm.user, &all, clock);
            }
        });
    }
    while set.join_next().await.is_some() {}
    for b in bars.values() {
        b.finish();
    }
    let mut report = ctx.report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let user_failed = |user: &str| report.failures.iter().any(|f| f.object == format!("user {user}"));
    report.credentials = Credential::of_plan(plan).into_iter().filter(|c| !user_failed(&c.user)).collect();
    report.seconds = clock.elapsed().as_secs_f64();
    report
}

/// `✓ ivanov@pve: 4 VMs on pve1 (12.3 s)`, or which of them failed.
fn stand_line(ctx: &Ctx, user: &str, vms: &[VmPlan], since: tokio::time::Instant) {
    let mine: Vec<&VmPlan> = vms.iter().filter(|v| v.user == user).collect();
    let failed: Vec<&str> = {
        let report = ctx.report.lock().unwrap_or_else(|e| e.into_inner());
        mine.iter()
            .filter(|v| report.failures.iter().any(|f| f.object == vm_label(v)))
            .map(|v| v.name.as_str())
            .collect()
    };
    let node = mine.first().map(|v| v.node.as_str()).unwrap_or("?");
    let secs = since.elapsed().as_secs_f64();
    let vms = |n: usize| if n == 1 { "1 VM".to_string() } else { format!("{n} VMs") };
    if failed.is_empty() {
        crate::errln!("✓ {user}: {} on {node} ({secs:.1} s)", vms(mine.len()));
    } else {
        crate::errln!("✗ {user}: {} of {} VMs failed ({}) ({secs:.1} s)", failed.len(), mine.len(), failed.join(", "));
    }
}

async fn deploy_group(ctx: &Ctx, g: &GroupPlan) {
    let ok = g.exists || {
        let r = ctx.create(|| ctx.pve.create_group(&g.groupid, Some(&g.comment))).await;
        match r {
            Ok(()) => true,
            Err(e) => {
                ctx.fail(
                    format!("group {}", g.groupid),
                    &e,
                    "check Group.Allocate on /access/groups; re-run `stand up`",
                );
                false
            }
        }
    };
    if let Some((_, gate)) = &ctx.group {
        gate.send_replace(Some(ok));
    }
}

/// The students' group, once it exists.
async fn group_ready(ctx: &Ctx) -> Option<&str> {
    let (id, gate) = ctx.group.as_ref()?;
    passed(gate).await.then_some(id.as_str())
}

async fn deploy_user(ctx: &Ctx, u: &UserPlan) {
    let pve = &ctx.pve;
    let group = group_ready(ctx).await;
    let pool_marker = Marker::new(&[("lab", &ctx.lab), ("user", &u.userid)]).to_string();
    let user_ok = if !u.exists {
        let r = ctx.create(|| pve.create_user_in(&u.userid, u.password.as_deref(), Some(&u.comment), group)).await;
        match r {
            Ok(()) => {
                ctx.count(|r| r.users_created += 1);
                true
            }
            Err(e) => {
                ctx.fail(
                    format!("user {}", u.userid),
                    &e,
                    "check the token has User.Modify and Realm.AllocateUser; re-run `stand up`",
                );
                false
            }
        }
    } else {
        let mut ok = true;
        if u.comment_update {
            let req = ApiRequest::put(format!("/access/users/{}", u.userid)).param("comment", &u.comment);
            if let Err(e) = ctx.retry(repeatable, |_| pve.exec(req.clone())).await {
                ctx.fail(format!("user {}", u.userid), &e, "re-run `stand up`");
                ok = false;
            }
        }
        if let Some(g) = group.filter(|_| !u.in_group)
            && let Err(e) = ctx.retry(repeatable, |_| pve.join_group(&u.userid, g)).await
        {
            ctx.fail(format!("user {}", u.userid), &e, "check User.Modify; re-run `stand up`");
            ok = false;
        }
        if let Some(p) = &u.password
            && let Err(e) = ctx.retry(repeatable, |_| pve.set_password(&u.userid, p)).await
        {
            ctx.fail(format!("user {}", u.userid), &e, "the password was not reset; re-run with --reset-passwords");
            ok = false;
        }
        ok
    };
    let pool_ok = if u.pool_exists {
        true
    } else {
        let r = ctx.create(|| pve.create_pool(&u.pool, Some(&pool_marker))).await;
        match r {
            Ok(()) => {
                ctx.count(|r| r.pools_created += 1);
                true
            }
            Err(e) => {
                ctx.fail(format!("pool {}", u.pool), &e, "check Pool.Allocate; re-run `stand up`");
                false
            }
        }
    };
    if let Some(g) = ctx.pools.get(&u.pool) {
        g.send_replace(Some(pool_ok));
    }
    if let Some(g) = ctx.users.get(&u.userid) {
        g.send_replace(Some(user_ok));
    }
    if user_ok && pool_ok && !u.acl_exists {
        set_acl(ctx, &format!("/pool/{}", u.pool), &ctx.role, &u.userid).await;
    }
    if let Some(teacher) = u.teacher_acl.as_deref().filter(|_| pool_ok) {
        set_acl(ctx, &format!("/pool/{}", u.pool), &ctx.role, teacher).await;
    }
}

async fn set_acl(ctx: &Ctx, path: &str, role: &str, userid: &str) {
    match ctx.retry(repeatable, |_| ctx.pve.set_acl(path, role, Some(userid), None, false)).await {
        Ok(()) => ctx.count(|r| r.acls_set += 1),
        Err(e) => ctx.fail(format!("acl {path} {userid}"), &e, "check Permissions.Modify; re-run `stand up`"),
    }
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

/// Gives each private bridge's owner `SDN.Use` on it (PVE 8 asks it of non-root users to
/// plug a NIC into a bridge), once the owner exists.
async fn grant_bridges(ctx: &Ctx, node: &str, bridges: &[BridgePlan]) {
    for b in bridges {
        let Some(owner) = &b.owner else { continue };
        if !ctx.sdn_acls.get(owner).is_some_and(|l| l.contains(&b.iface)) {
            continue;
        }
        if let Some(g) = ctx.users.get(owner)
            && !passed(g).await
        {
            continue;
        }
        let path = format!("/sdn/zones/localnetwork/{}", made_name(ctx, node, &b.iface));
        set_acl(ctx, &path, "PVESDNUser", owner).await;
    }
}

async fn deploy_network(ctx: &Ctx, node: &str, bridges: &[BridgePlan]) {
    let pve = &ctx.pve;
    let done = |ok: bool| {
        if let Some(g) = ctx.networks.get(node) {
            g.send_replace(Some(ok));
        }
    };
    let planned: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
    let foreign = foreign_pending(&ctx.snap, node, &planned);
    let ours_pending = ctx.snap.pending.contains_key(node) && foreign.is_empty();
    let to_create: Vec<&BridgePlan> = bridges.iter().filter(|b| !b.exists).collect();
    let to_mark: Vec<&BridgePlan> = bridges.iter().filter(|b| b.exists && b.comment_update).collect();
    if to_create.is_empty() && to_mark.is_empty() && !ours_pending {
        done(true);
        return grant_bridges(ctx, node, bridges).await;
    }
    if !foreign.is_empty() && !ctx.opts.apply_foreign_network {
        let msg = format!("{node} has pending network changes stand did not make ({})", foreign.join(", "));
        ctx.fail(
            format!("network {node}"),
            &msg,
            "review them in the PVE GUI (System → Network: Apply or Revert), or pass --apply-foreign-network",
        );
        return done(false);
    }
    for b in to_create {
        match create_bridge(ctx, node, b, &planned).await {
            Ok(_) => ctx.count(|r| r.bridges_created += 1),
            Err(e) => {
                ctx.fail(format!("bridge {node}/{}", b.iface), &e, "check Sys.Modify on /nodes; re-run `stand up`");
                return done(false);
            }
        }
    }
    for b in to_mark {
        if let Err(e) = ctx.retry(repeatable, |_| pve.set_bridge_comment(node, &b.iface, &b.comment)).await {
            ctx.fail(format!("bridge {node}/{}", b.iface), &e, "check Sys.Modify on /nodes; re-run `stand up`");
            return done(false);
        }
    }
    let r = ctx
        .retry(repeatable, |_| async {
            let upid = pve.apply_network(node).await?;
            pve.wait_task(&upid, ctx.opts.wait).await
        })
        .await;
    match r {
        Ok(_) => {
            ctx.count(|r| r.networks_applied += 1);
            done(true);
            grant_bridges(ctx, node, bridges).await
        }
        Err(e) => {
            ctx.fail(
                format!("network {node}"),
                &e,
                "the bridges are staged; check `ifreload -a` on the node, then re-run `stand up`",
            );
            done(false)
        }
    }
}

fn vm_label(vm: &VmPlan) -> String {
    format!("vm {} {}", vm.vmid, vm.name)
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
    // NICs name bridges: wait until the node's bridges are made (and maybe renamed).
    if vm.nets.iter().flatten().next().is_some()
        && let Some(g) = ctx.networks.get(&vm.node)
        && !passed(g).await
    {
        return Err(PveError::Decode {
            path: format!("/nodes/{}/network", vm.node),
            message: "the node's bridges were not made".into(),
        });
    }
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

async fn deploy_vm(ctx: &Ctx, vm: &VmPlan) {
    let Some(limit) = ctx.node_limits.get(&vm.node).cloned() else { return };
    let Ok(_permit) = limit.acquire_owned().await else { return };
    let label = vm_label(vm);
    let mut vmid = vm.vmid;
    let mut exists = vm.exists;
    if exists {
        // It may still be under a clone of an earlier run, which may yet fail.
        match wait_unlocked(ctx, &vm.node, vmid).await {
            Ok(true) => {}
            Ok(false) => exists = false,
            Err(e) => return ctx.fail(label, &e, "re-run `stand up`"),
        }
    }
    if !exists {
        if let Some(g) = ctx.pools.get(&vm.pool)
            && !passed(g).await
        {
            return ctx.fail(label, &"its pool was not created", "see the pool's failure above; re-run `stand up`");
        }
        match clone_vm(ctx, vm).await {
            Ok(id) => {
                vmid = id;
                ctx.count(|r| r.vms_created += 1);
            }
            Err(e) => return ctx.fail(label, &e, clone_hint(&e)),
        }
        if let Err(e) = configure(ctx, vm, vmid, None).await {
            return ctx.fail(label, &e, "the VM exists without its NICs; re-run `stand up` to finish it");
        }
    } else if !vm.update.is_empty() {
        match configure(ctx, vm, vmid, Some(&vm.update)).await {
            Ok(()) => ctx.count(|r| r.vms_updated += 1),
            Err(e) => return ctx.fail(label, &e, "re-run `stand up`"),
        }
    }
    if vm.start && (!exists || vm.needs_start) {
        if let Some(g) = ctx.networks.get(&vm.node)
            && !passed(g).await
        {
            return ctx.fail(
                label,
                &format!("the network of {} was not applied", vm.node),
                "the VM is made but not started; fix the network, then re-run `stand up`",
            );
        }
        match start_vm(ctx, vm, vmid, !exists).await {
            Ok(()) => ctx.count(|r| r.vms_started += 1),
            Err(e) => ctx.fail(label, &e, "check the node's memory and the VM's bridges; `stand up` again starts it"),
        }
    }
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
