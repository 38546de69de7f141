//! What the actions of a running course do against the API: snapshots, rollbacks and power.
//! Each converges when run again: a snapshot that exists, a VM that already runs, a
//! snapshot already deleted are done.

use super::act::{ActError, Done};
use super::options::ApplyOptions;
use super::retry::{gone, repeatable};
use crate::plan::{Action, Marker, PowerOp, VmRef};
use crate::pve::{NetDevice, Params, Pve, PveError, PveExt};

/// A create that finds its snapshot there (an earlier attempt took it).
fn already_taken(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("already used"))
}

/// A start that finds the VM running.
fn already_running(e: &PveError) -> bool {
    matches!(e, PveError::TaskFailed { exitstatus, .. } if exitstatus.contains("already running"))
}

/// A call refused because a task of an earlier attempt still holds the VM's lock (its
/// answer was lost): that attempt is under way.
fn locked_by_earlier(e: &PveError) -> bool {
    e.failure().is_some_and(|f| {
        ["(snapshot)", "(rollback)", "(snapshot-delete)"]
            .iter()
            .any(|l| f.message.contains("is locked") && f.message.contains(l))
    })
}

/// Carries out a snapshot, rollback or power action.
pub async fn perform(pve: &dyn Pve, action: &Action, opts: &ApplyOptions) -> Result<Done, ActError> {
    let retries = opts.retries();
    let wait = opts.wait;
    match action {
        Action::SnapshotVm { vm, name, description } => retries
            .run(repeatable, |_| async {
                match pve.snapshot(&vm.node, vm.vmid, name, description).await {
                    Ok(upid) => pve.wait_task(&upid, wait).await.map(|_| Done::Changed),
                    Err(e) if already_taken(&e) => Ok(Done::AlreadyDone),
                    Err(e) if locked_by_earlier(&e) => {
                        // An earlier attempt's task runs: its end decides.
                        pve.wait_unlocked(&vm.node, vm.vmid, wait).await?;
                        let taken = pve.snapshots(&vm.node, vm.vmid).await?.iter().any(|s| s["name"] == name.as_str());
                        if taken { Ok(Done::Changed) } else { Err(e) }
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| ActError::new(e, snapshot_hint(vm))),
        Action::RollbackVm { vm, name, start } => retries
            .run(repeatable, |_| async {
                match pve.rollback(&vm.node, vm.vmid, name, *start).await {
                    Ok(upid) => pve.wait_task(&upid, wait).await.map(|_| Done::Changed),
                    // An earlier attempt's rollback runs; it ends as the VM will be.
                    Err(e) if locked_by_earlier(&e) => {
                        pve.wait_unlocked(&vm.node, vm.vmid, wait).await.map(|_| Done::Changed)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| ActError::new(e, "the VM is as it was before the reset; run `stand reset` again for it")),
        Action::DeleteSnapshot { vm, name } => retries
            .run(repeatable, |_| async {
                match pve.delete_snapshot(&vm.node, vm.vmid, name).await {
                    Ok(upid) => pve.wait_task(&upid, wait).await.map(|_| Done::Changed),
                    Err(e) if gone(&e) => Ok(Done::AlreadyDone),
                    Err(e) if locked_by_earlier(&e) => {
                        pve.wait_unlocked(&vm.node, vm.vmid, wait).await.map(|_| Done::Changed)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| ActError::new(e, "run the same command again, or delete it in the PVE GUI")),
        Action::PowerVm { vm, op } => power(pve, vm, *op, opts).await,
        Action::CutUplinks { vm, nics } => links(pve, vm, nics, true, opts).await,
        Action::RestoreUplinks { vm, nics } => links(pve, vm, nics, false, opts).await,
        other => {
            Err(ActError::new(format!("{} is not a course action", other.object()), "report this as a bug of stand"))
        }
    }
}

async fn power(pve: &dyn Pve, vm: &VmRef, op: PowerOp, opts: &ApplyOptions) -> Result<Done, ActError> {
    let wait = opts.wait;
    let r = opts
        .retries()
        .run(repeatable, |_| async {
            let upid = match op {
                PowerOp::Start => pve.vm_power(&vm.node, vm.vmid, "start").await?,
                PowerOp::Stop => pve.vm_power(&vm.node, vm.vmid, "stop").await?,
                PowerOp::Reboot => pve.vm_power(&vm.node, vm.vmid, "reboot").await?,
                PowerOp::Shutdown { timeout } => pve.shutdown_vm(&vm.node, vm.vmid, timeout, true).await?,
            };
            match pve.wait_task(&upid, wait).await {
                Ok(_) => Ok(Done::Changed),
                Err(e) if op == PowerOp::Start && already_running(&e) => Ok(Done::AlreadyDone),
                Err(e) => Err(e),
            }
        })
        .await;
    r.map_err(|e| {
        let hint = match op {
            PowerOp::Start | PowerOp::Reboot => "check the node's memory and the VM's bridges; run the command again",
            PowerOp::Stop | PowerOp::Shutdown { .. } => "run the command again, or stop the VM in the PVE GUI",
        };
        ActError::new(e, hint)
    })
}

/// The config was changed by someone else between our read and our write (`digest`).
fn modified(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("detected modified configuration"))
}

/// Cuts (`down`) or reconnects NICs. The VM's config is read afresh and written with its
/// digest, the NICs and the marker's `cut=` list in one write: a run killed at any point
/// leaves each VM either untouched or cut and marked, so `uplinks on` restores exactly
/// what was cut. A NIC the marker does not name is never reconnected.
async fn links(pve: &dyn Pve, vm: &VmRef, nics: &[String], down: bool, opts: &ApplyOptions) -> Result<Done, ActError> {
    let r = opts
        .retries()
        .run(
            |e| repeatable(e) || modified(e),
            |_| async {
                let config = pve.vm_config(&vm.node, vm.vmid).await?;
                let description = config.get("description").unwrap_or_default();
                let Some(mut marker) = Marker::parse(&description) else { return Ok(None) };
                let mut cut = marker.list("cut");
                let mut params = Params::new();
                for nic in nics {
                    let Some(mut dev) = config.get(nic).and_then(|v| v.parse::<NetDevice>().ok()) else { continue };
                    if down && !dev.link_down {
                        dev.link_down = true;
                        params.insert(nic.clone(), dev.to_string());
                        cut.push(nic.clone());
                    } else if !down && cut.contains(nic) {
                        if dev.link_down {
                            dev.link_down = false;
                            params.insert(nic.clone(), dev.to_string());
                        }
                        cut.retain(|c| c != nic);
                    }
                }
                cut.sort();
                cut.dedup();
                if cut == marker.list("cut") && params.is_empty() {
                    return Ok(Some(Done::AlreadyDone));
                }
                marker.set("cut", &cut.join(","));
                params.insert("description".into(), marker.replace_in(&description));
                if let Some(digest) = config.get("digest") {
                    params.insert("digest".into(), digest);
                }
                pve.set_vm_config(&vm.node, vm.vmid, params).await.map(|_| Some(Done::Changed))
            },
        )
        .await;
    let hint = match down {
        true => "run `stand uplinks off` again; the NICs already cut stay cut",
        false => "run `stand uplinks on` again; it reconnects only what `off` cut",
    };
    match r {
        Ok(Some(done)) => Ok(done),
        Ok(None) => Err(ActError::new(format!("{} no longer carries the lab's marker", vm.name), "it was not touched")),
        Err(e) => Err(ActError::new(e, hint)),
    }
}

fn snapshot_hint(vm: &VmRef) -> String {
    format!(
        "is {}'s storage able to take snapshots (not thick LVM, not raw files)? `stand doctor` checks it; run the command again",
        vm.name
    )
}
