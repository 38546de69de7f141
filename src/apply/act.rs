//! What each [`Action`] does against the API: its calls, which of its failures it repeats,
//! and what to tell the instructor when it fails for good.

use super::options::ApplyOptions;
use super::report::Cause;
use super::retry::{gone, repeatable, transient};
use crate::plan::Action;
use crate::pve::{ApiRequest, Pve, PveError, PveExt};

/// How a step that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// The cluster changed.
    Changed,
    /// It already was as wanted.
    AlreadyDone,
}

/// A step that failed for good: why, the message and what to do.
#[derive(Clone, Debug)]
pub struct ActError {
    /// What went wrong, as data.
    pub cause: Cause,
    /// What went wrong (PVE's message or `stand`'s).
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl ActError {
    /// A failure for `e` (a [`PveError`], or `stand`'s own message) and what to do.
    pub fn new(e: impl Reason, hint: impl Into<String>) -> Self {
        ActError { cause: e.cause(), message: e.to_string(), hint: hint.into() }
    }
}

/// What an [`ActError`] can come from: an API error, or `stand`'s own finding.
pub trait Reason: std::fmt::Display {
    /// The failure as data.
    fn cause(&self) -> Cause {
        Cause::Stand
    }
}

impl Reason for PveError {
    fn cause(&self) -> Cause {
        Cause::from(self)
    }
}

impl Reason for &PveError {
    fn cause(&self) -> Cause {
        Cause::from(*self)
    }
}

impl Reason for String {}
impl Reason for &str {}

/// A delete: done, or already done when the object is gone.
fn deleted(r: Result<(), PveError>, hint: &'static str) -> Result<Done, ActError> {
    match r {
        Ok(()) => Ok(Done::Changed),
        Err(e) if gone(&e) => Ok(Done::AlreadyDone),
        Err(e) => Err(ActError::new(e, hint)),
    }
}

/// Runs `action` with the retries it allows.
pub async fn perform(pve: &dyn Pve, action: &Action, opts: &ApplyOptions) -> Result<Done, ActError> {
    let retries = opts.retries();
    match action {
        Action::DestroyVm { node, vmid, running, .. } => {
            // Repeatable as a whole: it reads the VM's state first, and a VM gone is done.
            let r = retries
                .run(
                    |e| transient(e) || matches!(e, PveError::Transport { .. }),
                    |_| async move {
                        let status = match pve.vm_status(node, *vmid).await {
                            Ok(s) => s,
                            Err(e) if gone(&e) => return Ok(Done::AlreadyDone),
                            Err(e) => return Err(e),
                        };
                        // Running now, or running when read and neither stopped nor locked since.
                        if status.status == "running" || *running && status.lock.is_none() && status.status != "stopped"
                        {
                            let upid = pve.vm_power(node, *vmid, "stop").await?;
                            pve.wait_task(&upid, opts.wait).await?;
                        }
                        match pve.delete_vm(node, *vmid).await {
                            Ok(upid) => pve.wait_task(&upid, opts.wait).await.map(|_| Done::Changed),
                            Err(e) if gone(&e) => Ok(Done::AlreadyDone),
                            Err(e) => Err(e),
                        }
                    },
                )
                .await;
            r.map_err(|e| ActError::new(e, "re-run `stand down`"))
        }
        Action::DeleteBridge { node, iface } => {
            deleted(retries.run(transient, |_| pve.delete_iface(node, iface)).await, "re-run `stand down`")
        }
        Action::ReloadNetwork { node, foreign } => reload_network(pve, node, foreign, opts, "stand down").await,
        Action::DeletePool { poolid } => deleted(
            retries.run(transient, |_| pve.delete_pool(poolid)).await,
            "remove what is left in the pool, then re-run `stand down`",
        ),
        Action::DeleteUser { userid } => {
            deleted(retries.run(transient, |_| pve.delete_user(userid)).await, "re-run `stand down`")
        }
        Action::ReleaseUser { userid, comment, expire, sdn_acls } => {
            let req = ApiRequest::put(format!("/access/users/{userid}"))
                .param("comment", comment)
                .param("expire", expire.to_string());
            let r = retries
                .run(transient, |_| {
                    let req = req.clone();
                    async move {
                        pve.exec(req).await?;
                        for path in sdn_acls {
                            pve.set_acl(path, "PVESDNUser", Some(userid), None, true).await?;
                        }
                        Ok(())
                    }
                })
                .await;
            deleted(r, "re-run `stand down`")
        }
        Action::DeleteGroup { groupid } => {
            deleted(retries.run(transient, |_| pve.delete_group(groupid)).await, "re-run `stand down`")
        }
        Action::SnapshotVm { .. }
        | Action::RollbackVm { .. }
        | Action::DeleteSnapshot { .. }
        | Action::PowerVm { .. }
        | Action::CutUplinks { .. }
        | Action::RestoreUplinks { .. } => super::course::perform(pve, action, opts).await,
        Action::CopyTemplate { .. } => super::templates::perform(pve, action, opts).await,
        Action::CreateZone { .. } | Action::CreateVnet { .. } | Action::DeleteVnet { .. } | Action::ApplySdn { .. } => {
            super::sdn::perform(pve, action, opts).await
        }
        other => Err(ActError::new(format!("{} is not a removal", other.object()), "report this as a bug of stand")),
    }
}

/// Applies what is staged in a node's network (`PUT /nodes/{node}/network`, `ifreload`),
/// unless changes `stand` did not make are pending there too: those are someone else's to
/// apply or revert. Reloading again is harmless, so it is repeated on any failure that may
/// pass.
pub async fn reload_network(
    pve: &dyn Pve,
    node: &str,
    foreign: &[String],
    opts: &ApplyOptions,
    rerun: &str,
) -> Result<Done, ActError> {
    if !foreign.is_empty() && !opts.apply_foreign_network {
        return Err(ActError::new(
            format!("{node} has pending network changes stand did not make ({})", foreign.join(", ")),
            format!(
                "review them in the PVE GUI (System → Network: Apply or Revert), or pass --apply-foreign-network to `{rerun}`"
            ),
        ));
    }
    opts.retries()
        .run(repeatable, |_| async {
            let upid = pve.apply_network(node).await?;
            pve.wait_task(&upid, opts.wait).await
        })
        .await
        .map(|_| Done::Changed)
        .map_err(|e| {
            ActError::new(e, format!("the bridges are staged; check `ifreload -a` on the node, then re-run `{rerun}`"))
        })
}
