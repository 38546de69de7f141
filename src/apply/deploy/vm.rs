//! A VM's clone (re-planning a VMID taken meanwhile), its config, its start.

use std::time::Duration;

use crate::plan::{Owner, VmPlan};
use crate::pve::{ApiRequest, CloneParams, NetDevice, Params, Pve, PveError, PveExt};

use super::context::Ctx;
use super::network::made_name;
use crate::apply::retry::repeatable;

/// Waits until a VM's config has no lock; `Ok(false)` if the VM does not exist.
pub(super) async fn wait_unlocked(ctx: &Ctx, node: &str, vmid: u32) -> Result<bool, PveError> {
    ctx.pve.wait_unlocked(node, vmid, ctx.opts.wait).await
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
pub(super) async fn clone_vm(ctx: &Ctx, vm: &VmPlan) -> Result<u32, PveError> {
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

pub(super) async fn configure(ctx: &Ctx, vm: &VmPlan, vmid: u32, only: Option<&[String]>) -> Result<(), PveError> {
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
pub(super) async fn start_vm(ctx: &Ctx, vm: &VmPlan, vmid: u32, fresh: bool) -> Result<(), PveError> {
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

pub(super) fn clone_hint(e: &PveError) -> &'static str {
    if e.is_lock_timeout() {
        "the storage was too busy; lower --per-storage or re-run `stand up`"
    } else if e.status() == Some(403) {
        "the token lacks a privilege: run `stand doctor`"
    } else {
        "re-run `stand up`; it continues where this run stopped"
    }
}
