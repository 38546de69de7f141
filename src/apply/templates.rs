//! What [`Action::CopyTemplate`] does: a full clone of the original on its node, a migrate
//! to the copy's node, the conversion to a template. A copy that fails half-way is removed,
//! so the cluster never keeps a copy that is not a template (a sync interrupted by a killed
//! `stand` leaves one with its marker, which the next sync removes first).

use super::act::{ActError, Done};
use super::options::ApplyOptions;
use super::retry::{already_exists, transient};
use crate::plan::Action;
use crate::pve::{CloneParams, Pve, PveError, PveExt};

/// Carries out a template copy.
pub async fn perform(pve: &dyn Pve, action: &Action, opts: &ApplyOptions) -> Result<Done, ActError> {
    let Action::CopyTemplate { of, name, source_node, node, vmid, storage, via, marker } = action else {
        return Err(ActError::new(
            format!("{} is not a template copy", action.object()),
            "report this as a bug of stand",
        ));
    };
    let description = format!("Copy of template {of} ({name}) on {node}, made by `stand templates sync`.\n{marker}");
    let params = CloneParams {
        newid: *vmid,
        name: Some(name.clone()),
        full: Some(true),
        storage: Some(via.clone()),
        description: Some(description),
        ..Default::default()
    };
    // A clone refused before it began (busy node, lock timeout) is asked again; one whose
    // VMID was taken meanwhile is left to the next sync, which picks another.
    let cloned = opts.retries().run(transient, |_| pve.clone_vm(source_node, *of, &params)).await;
    let upid = match cloned {
        Ok(upid) => upid,
        Err(e) if already_exists(&e) => {
            return Err(ActError::new(e, format!("VMID {vmid} was taken meanwhile; run `stand templates sync` again")));
        }
        Err(e) => {
            return Err(ActError::new(e, "check the original and the storage, then run `stand templates sync` again"));
        }
    };
    let finished = async {
        pve.wait_task(&upid, opts.wait).await?;
        if node != source_node {
            let targetstorage = (via != storage).then_some(storage.as_str());
            let upid = pve.migrate_vm_to(source_node, *vmid, node, false, targetstorage).await?;
            pve.wait_task(&upid, opts.wait).await?;
        }
        let upid = pve.convert_to_template(node, *vmid).await?;
        pve.wait_task(&upid, opts.wait).await?;
        Ok::<(), PveError>(())
    }
    .await;
    match finished {
        Ok(()) => Ok(Done::Changed),
        Err(e) => {
            remove_half_made(pve, *vmid, opts).await;
            Err(ActError::new(e, "the half-made copy was removed; run `stand templates sync` again"))
        }
    }
}

/// Removes a copy that did not become a template, wherever it is now.
async fn remove_half_made(pve: &dyn Pve, vmid: u32, opts: &ApplyOptions) {
    let Ok(resources) = pve.resources(Some("vm")).await else { return };
    let Some(node) = resources.into_iter().find(|r| r.vmid == Some(vmid)).and_then(|r| r.node) else { return };
    if pve.wait_unlocked(&node, vmid, opts.wait).await.is_err() {
        return;
    }
    if let Ok(upid) = pve.delete_vm(&node, vmid).await {
        let _ = pve.wait_task(&upid, opts.wait).await;
    }
}
