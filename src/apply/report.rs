//! What an apply did, and what failed with what to do about it.

use serde::Serialize;

use crate::plan::ObjectRef;
use crate::pve::PveError;

/// One failed object: which, why (as data and as PVE's or `stand`'s message), what to do.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The object (`{"kind":"vm","vmid":3001,"name":"web-s1"}`; shown as `vm 3001 web-s1`).
    pub object: ObjectRef,
    /// What went wrong, as data.
    pub cause: Cause,
    /// The message.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl Failure {
    /// A failure of `object` for `cause`, with its message and what to do.
    pub fn new(object: ObjectRef, cause: Cause, message: impl std::fmt::Display, hint: &str) -> Failure {
        Failure { object, cause, message: message.to_string(), hint: hint.to_string() }
    }
}

/// Why an action failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// Proxmox VE answered the call with an error status.
    Refused {
        /// The HTTP status (`403`, `500`, `595` ...).
        status: u16,
        /// The call.
        method: String,
        /// Its path below `/api2/json`.
        path: String,
    },
    /// The call got no answer (refused connection, reset, timeout, untrusted certificate).
    Unreachable,
    /// A task ended with an error, or did not end in time.
    Task {
        /// The task.
        upid: String,
    },
    /// `stand` found the problem itself (a check before the call, an unexpected answer).
    Stand,
    /// Not done: a step it waits for failed.
    Skipped,
}

impl From<&PveError> for Cause {
    fn from(e: &PveError) -> Self {
        match e {
            PveError::Api { method, path, failure } => {
                Cause::Refused { status: failure.status, method: method.clone(), path: path.clone() }
            }
            PveError::Transport { .. } | PveError::Tls(_) => Cause::Unreachable,
            PveError::TaskFailed { upid, .. } | PveError::TaskTimeout { upid, .. } => {
                Cause::Task { upid: upid.clone() }
            }
            PveError::Decode { .. } => Cause::Stand,
        }
    }
}

/// A student's credentials, for users whose password was set in this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Userid.
    pub user: String,
    /// Password (only serialized into the credentials file, or JSON when asked).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// Node of the stand.
    pub node: String,
    /// VM names.
    pub vms: Vec<String>,
    /// The student's name (from the roster), for the printed logins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Credential {
    /// The credentials a plan sets: users with a new password.
    pub fn of_plan(plan: &crate::plan::Plan) -> Vec<Credential> {
        plan.users
            .iter()
            .filter_map(|u| {
                Some(Credential {
                    user: u.userid.clone(),
                    password: u.password.clone()?,
                    node: u.node.clone().unwrap_or_default(),
                    vms: plan.vms.iter().filter(|v| v.user == u.userid).map(|v| v.name.clone()).collect(),
                    name: u.full_name.as_ref().map(|n| n.display()),
                })
            })
            .collect()
    }
}

/// The outcome of an apply.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    /// Users created.
    pub users_created: usize,
    /// Pools created.
    pub pools_created: usize,
    /// ACL entries set.
    pub acls_set: usize,
    /// Bridges created.
    pub bridges_created: usize,
    /// Network reloads.
    pub networks_applied: usize,
    /// SDN VNets created (`network: "vxlan"`).
    pub vnets_created: usize,
    /// SDN applies (`PUT /cluster/sdn`).
    pub sdn_applied: usize,
    /// VMs cloned.
    pub vms_created: usize,
    /// VMs whose config changed.
    pub vms_updated: usize,
    /// VMs started.
    pub vms_started: usize,
    /// Snapshots taken (the baseline before the first start, and the script's).
    pub snapshots_taken: usize,
    /// Other course operations the script asked for, VM by VM (resets, power, uplinks).
    #[serde(default)]
    pub course_actions: usize,
    /// VMIDs that were taken meanwhile and re-planned (old → new).
    pub replanned_vmids: Vec<(u32, u32)>,
    /// Bridges whose name was taken meanwhile and were made under another (`node/old → new`).
    pub renamed_bridges: Vec<String>,
    /// Failures.
    pub failures: Vec<Failure>,
    /// Steps that did not start because the run was interrupted (Ctrl-C).
    pub interrupted: usize,
    /// Credentials of users whose password was set.
    #[serde(skip)]
    pub credentials: Vec<Credential>,
    /// Wall time, seconds (on the clock the run used).
    pub seconds: f64,
}

impl ApplyReport {
    /// Everything converged.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.interrupted == 0
    }
}
