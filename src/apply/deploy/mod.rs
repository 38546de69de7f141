//! `stand up`: a plan becomes an action graph ([`deploy_graph`]), run by the one runner
//! with what each deploy action does: clones that re-plan a VMID taken meanwhile, bridges
//! made under the next free name, NICs rewired to it.

mod context;
mod graph;
mod network;
mod progress;
mod vm;

pub use graph::{course_actions, deploy_graph};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::apply::act::{ActError, Done, reload_network};
use crate::apply::options::ApplyOptions;
use crate::apply::report::{ApplyReport, Cause, Credential, Failure};
use crate::apply::runner::{OnEnd, Outcome, Perform, run_with};
use crate::plan::{Action, BridgePlan, ObjectRef, Plan, Snapshot};
use crate::pve::{ApiRequest, Pve, PveExt, Secret};
use crate::roster::FullName;

use crate::apply::retry::repeatable;
use context::{Ctx, lock};
use network::{create_bridge, made_name};
use progress::Progress;
use vm::{clone_hint, clone_vm, configure, start_vm, wait_unlocked};

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
    let run = run_with(&graph, opts.per_node, act, Some(on_end), &opts.interrupt).await;
    progress.finish();
    let mut report = lock(&ctx.report).clone();
    report.failures = run.failures();
    report.interrupted = run.interrupted();
    // A VM that did not get made because something before it failed is named once; one a
    // Ctrl-C kept from being made is not a failure: the next run makes it.
    let interrupted_vms: BTreeSet<u32> = graph
        .steps()
        .iter()
        .zip(&run.outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Interrupted))
        .filter_map(|(s, _)| s.action.vm())
        .collect();
    let mut named: BTreeSet<u32> = interrupted_vms;
    for (step, outcome) in graph.steps().iter().zip(&run.outcomes) {
        if let (Outcome::Cancelled, Some(vmid)) = (outcome, step.action.vm())
            && !report.failures.iter().any(|f| f.object == step.action.object())
            && named.insert(vmid)
        {
            report.failures.push(Failure::new(
                step.action.object(),
                Cause::Skipped,
                "not done: a step it waits for failed (its pool, its node's network, or its clone)",
                "see the failure it waits for; re-run `stand up`",
            ));
        }
    }
    let not_made: BTreeSet<&str> = graph
        .steps()
        .iter()
        .zip(&run.outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Interrupted | Outcome::Cancelled))
        .filter_map(|(s, _)| match &s.action {
            Action::CreateUser { userid, .. } => Some(userid.as_str()),
            _ => None,
        })
        .collect();
    let user_failed = |user: &str| {
        not_made.contains(user)
            || report.failures.iter().any(|f| f.object == ObjectRef::User { userid: user.to_string() })
    };
    report.credentials = Credential::of_plan(plan).into_iter().filter(|c| !user_failed(&c.user)).collect();
    report.seconds = clock.elapsed().as_secs_f64();
    report
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
        Action::MarkGroup { groupid, comment } => {
            let req = ApiRequest::put(format!("/access/groups/{groupid}")).param("comment", comment);
            ctx.retry(repeatable, |_| pve.exec(req.clone()))
                .await
                .map_err(|e| ActError::new(e, "check Group.Allocate on /access/groups; re-run `stand up`"))?;
            Ok(Done::Changed)
        }
        Action::CreateUser { userid, comment, group, expire, name, password } => {
            let group = group.as_deref().filter(|_| ctx.group_ok.load(Ordering::SeqCst));
            let password = password.as_ref().map(Secret::expose);
            let name = name.as_ref().map(FullName::pve);
            let name = name.as_ref().map(|(f, l)| (f.as_str(), l.as_str()));
            ctx.create(|| pve.create_user_in(userid, password, Some(comment), group, *expire, name)).await.map_err(
                |e| ActError::new(e, "check the token has User.Modify and Realm.AllocateUser; re-run `stand up`"),
            )?;
            ctx.count(|r| r.users_created += 1);
            Ok(Done::Changed)
        }
        Action::UpdateUser { userid, comment, join_group, expire, name, password } => {
            if comment.is_some() || expire.is_some() || name.is_some() {
                let mut req = ApiRequest::put(format!("/access/users/{userid}")).opt("comment", comment.as_deref());
                if let Some(e) = expire {
                    req = req.param("expire", e.to_string());
                }
                if let Some((first, last)) = name.as_ref().map(FullName::pve) {
                    req = req.param("firstname", first).param("lastname", last);
                }
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
            reload_network(pve.as_ref(), node, foreign, &ctx.opts, "stand up").await?;
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
        other => {
            // The baseline (or a script's reset, power, ...) of a VM cloned under another
            // VMID than planned goes to that one.
            let mut action = other.clone();
            let course = match action.vm_ref_mut() {
                Some(vm) => {
                    vm.vmid = ctx.vmid(vm.vmid);
                    true
                }
                None => false,
            };
            let done = super::act::perform(&*ctx.pve, &action, &ctx.opts).await?;
            if done == Done::Changed {
                match action {
                    Action::SnapshotVm { .. } if course => ctx.count(|r| r.snapshots_taken += 1),
                    Action::CreateVnet { .. } => ctx.count(|r| r.vnets_created += 1),
                    Action::ApplySdn { .. } => ctx.count(|r| r.sdn_applied += 1),
                    _ if course => ctx.count(|r| r.course_actions += 1),
                    _ => {}
                }
            }
            Ok(done)
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
