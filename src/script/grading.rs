//! What `fn check(stand)` works with: the stand, its VMs, the guest agent as the edge
//! provides it ([`GuestAgent`]), and the grades recorded. The script layer does no I/O:
//! `stand check` hands in an agent that calls the cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// A VM of a stand, as `check` sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestVm {
    /// Its name in the script (`gw`).
    pub name: String,
    /// VMID.
    pub vmid: u32,
    /// Node it runs on.
    pub node: String,
}

/// What a command printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    /// Exit code.
    pub code: i64,
    /// Standard output.
    pub out: String,
    /// Standard error.
    pub err: String,
}

/// One interface of a guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Name in the guest (`ens18`).
    pub name: String,
    /// MAC address.
    pub mac: String,
    /// Addresses with their prefix (`10.0.0.1/24`).
    pub ips: Vec<String>,
}

/// Why a guest call failed, in a sentence for the grade sheet ("VM 3001 is not running").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The guest answered that it cannot (a file that is not there): a definite answer, so
    /// the criterion it feeds is simply not met.
    #[error("{0}")]
    Answered(String),
    /// The guest could not be asked (a stopped VM, an agent that does not answer, a
    /// timeout): the stand is not checked whole.
    #[error("{0}")]
    Unreachable(String),
}

impl From<String> for GuestError {
    fn from(message: String) -> Self {
        GuestError::Unreachable(message)
    }
}

impl GuestError {
    /// The same failure, its sentence changed by `f` (to say which call and where).
    pub fn map(self, f: impl FnOnce(String) -> String) -> GuestError {
        match self {
            GuestError::Answered(m) => GuestError::Answered(f(m)),
            GuestError::Unreachable(m) => GuestError::Unreachable(f(m)),
        }
    }
}

/// The guest agent of the VMs being checked. Every call blocks until PVE answered.
pub trait GuestAgent: Send + Sync {
    /// Runs `argv` in the guest and waits for it to end, at most `timeout`.
    fn exec(&self, vm: &GuestVm, argv: &[String], timeout: Duration) -> Result<ExecOutput, GuestError>;
    /// The content of a file.
    fn read_file(&self, vm: &GuestVm, path: &str) -> Result<String, GuestError>;
    /// The guest's host name.
    fn hostname(&self, vm: &GuestVm) -> Result<String, GuestError>;
    /// The guest's interfaces and addresses.
    fn interfaces(&self, vm: &GuestVm) -> Result<Vec<Interface>, GuestError>;
    /// Whether the agent answers.
    fn ping(&self, vm: &GuestVm) -> Result<(), GuestError>;
}

/// One criterion as `grade(...)` recorded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grade {
    /// What was checked.
    pub title: String,
    /// Points it is worth.
    pub points: f64,
    /// Whether the stand meets it.
    pub passed: bool,
    /// A hint for the student, shown when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why it could not be checked: the guest reads before it that failed (it is then
    /// not met, whatever the script compared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One of those reads could not reach the guest at all (not a definite answer).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreached: bool,
}

/// The guest reads that failed since the criteria graded last: the reason of the criteria
/// graded next. A read after a `grade` starts anew, so each failure fails the criteria it
/// fed (`let c = read_file(..); grade(a, .., c..); grade(b, .., c..)` fails both).
#[derive(Debug, Default)]
pub struct FailedReads {
    failures: Vec<GuestError>,
    graded_since: bool,
}

impl FailedReads {
    /// A guest read ended: a failure is remembered for the criteria graded next.
    pub fn read(&mut self, failure: Option<GuestError>) {
        if std::mem::take(&mut self.graded_since) {
            self.failures.clear();
        }
        self.failures.extend(failure);
    }

    /// A criterion is graded: why it could not be checked, if a read it may use failed, and
    /// whether one of those could not reach the guest.
    pub fn graded(&mut self) -> (Option<String>, bool) {
        self.graded_since = true;
        let reasons: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
        let unreached = self.failures.iter().any(|f| matches!(f, GuestError::Unreachable(_)));
        ((!reasons.is_empty()).then(|| reasons.join("; ")), unreached)
    }
}

/// A stand being checked: the `stand` argument of `check`.
#[derive(Clone)]
pub struct StandUnderCheck {
    /// The student.
    pub user: String,
    /// The node of the stand (of its first VM).
    pub node: String,
    /// Its VMs, in VMID order.
    pub vms: Vec<GuestVm>,
    /// How the guests are reached.
    pub agent: Arc<dyn GuestAgent>,
    /// Timeout of one `exec` unless the call gives one.
    pub exec_timeout: Duration,
    /// What `grade` recorded so far.
    pub grades: Arc<Mutex<Vec<Grade>>>,
    /// Guest reads that failed, for the criteria graded next.
    pub failed: Arc<Mutex<FailedReads>>,
    /// The script's file name, for where a read failed (set by the run).
    pub script: String,
}

impl StandUnderCheck {
    /// The same stand checked anew through `agent`: nothing graded yet.
    pub fn with_agent(&self, agent: Arc<dyn GuestAgent>) -> StandUnderCheck {
        StandUnderCheck { agent, grades: Arc::default(), failed: Arc::default(), ..self.clone() }
    }

    /// A guest read's outcome: its value, or after a failure `fallback` with the failure
    /// remembered for the criteria graded next.
    pub fn read<T>(&self, result: Result<T, GuestError>, fallback: T) -> T {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(v) => {
                failed.read(None);
                v
            }
            Err(e) => {
                failed.read(Some(e));
                fallback
            }
        }
    }

    /// The grades recorded so far.
    pub fn grades(&self) -> Vec<Grade> {
        self.grades.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The VM named `name`, or a sentence naming those the stand has.
    pub fn vm(&self, name: &str) -> Result<GuestVm, String> {
        self.vms.iter().find(|v| v.name == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.vms.iter().map(|v| v.name.as_str()).collect();
            format!("stand of {} has no VM '{name}'; it has: {}", self.user, names.join(", "))
        })
    }
}

/// A guest agent that answers every call at once and well (exit 0, empty output, no
/// interfaces): running `check` through it lists the criteria the script grades when
/// nothing stops it.
pub struct DryAgent;

impl GuestAgent for DryAgent {
    fn exec(&self, _: &GuestVm, _: &[String], _: Duration) -> Result<ExecOutput, GuestError> {
        Ok(ExecOutput::default())
    }
    fn read_file(&self, _: &GuestVm, _: &str) -> Result<String, GuestError> {
        Ok(String::new())
    }
    fn hostname(&self, _: &GuestVm) -> Result<String, GuestError> {
        Ok(String::new())
    }
    fn interfaces(&self, _: &GuestVm) -> Result<Vec<Interface>, GuestError> {
        Ok(Vec::new())
    }
    fn ping(&self, _: &GuestVm) -> Result<(), GuestError> {
        Ok(())
    }
}
