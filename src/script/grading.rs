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

/// The guest agent of the VMs being checked. Every call blocks until PVE answered; an
/// error is a sentence for the grade sheet ("VM 3001 is not running").
pub trait GuestAgent: Send + Sync {
    /// Runs `argv` in the guest and waits for it to end, at most `timeout`.
    fn exec(&self, vm: &GuestVm, argv: &[String], timeout: Duration) -> Result<ExecOutput, String>;
    /// The content of a file.
    fn read_file(&self, vm: &GuestVm, path: &str) -> Result<String, String>;
    /// The guest's host name.
    fn hostname(&self, vm: &GuestVm) -> Result<String, String>;
    /// The guest's interfaces and addresses.
    fn interfaces(&self, vm: &GuestVm) -> Result<Vec<Interface>, String>;
    /// Whether the agent answers.
    fn ping(&self, vm: &GuestVm) -> Result<(), String>;
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
}

impl StandUnderCheck {
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
