//! What an apply did, and what failed with what to do about it.

use serde::Serialize;

/// One failed object.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// `vm 3001 web-s1`, `bridge pve2/vmbr1001`, `user s1@pve`.
    pub object: String,
    /// PVE's message.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl Failure {
    /// A failure of `object` with PVE's (or stand's) `message` and what to do.
    pub fn new(object: impl Into<String>, message: impl std::fmt::Display, hint: &str) -> Failure {
        Failure { object: object.into(), message: message.to_string(), hint: hint.to_string() }
    }
}

/// A student's credentials, for users whose password was set in this run.
#[derive(Clone, Debug, Serialize)]
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
    /// VMs cloned.
    pub vms_created: usize,
    /// VMs whose config changed.
    pub vms_updated: usize,
    /// VMs started.
    pub vms_started: usize,
    /// VMIDs that were taken meanwhile and re-planned (old → new).
    pub replanned_vmids: Vec<(u32, u32)>,
    /// Bridges whose name was taken meanwhile and were made under another (`node/old → new`).
    pub renamed_bridges: Vec<String>,
    /// Failures.
    pub failures: Vec<Failure>,
    /// Credentials of users whose password was set.
    #[serde(skip)]
    pub credentials: Vec<Credential>,
    /// Wall time, seconds (on the clock the run used).
    pub seconds: f64,
}

impl ApplyReport {
    /// Everything converged.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}
