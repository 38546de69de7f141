//! `stand check`'s run: the lab's deployed stands from the snapshot, `fn check` for each on
//! a thread of its own (it blocks on the guest agent), all at once; what each recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::{Owner, Snapshot};
use crate::script::{CheckScript, Grade, GuestAgent, GuestVm, StandUnderCheck};

/// A deployed stand: a student and their VMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedStand {
    /// The student.
    pub user: String,
    /// Node of the stand (of its first VM).
    pub node: String,
    /// The VMs, in VMID order.
    pub vms: Vec<GuestVm>,
}

/// Why there is nothing to check.
#[derive(Debug, thiserror::Error)]
pub enum StandsError {
    /// The lab has no VMs on the cluster.
    #[error("lab {lab} has no stands on the cluster: deploy it first (stand up)")]
    NotDeployed {
        /// The lab.
        lab: String,
    },
    /// `--only` names a student without a stand.
    #[error("lab {lab} has no stand of '{student}'")]
    NoStand {
        /// The lab.
        lab: String,
        /// Who was asked for.
        student: String,
        /// Who has one.
        students: Vec<String>,
    },
}

/// The stands of `lab` on the cluster, by student; with `only`, those students' (each must
/// have one).
pub fn deployed_stands(snap: &Snapshot, lab: &str, only: &[String]) -> Result<Vec<DeployedStand>, StandsError> {
    let mut by_user: BTreeMap<String, Vec<GuestVm>> = BTreeMap::new();
    for v in snap.lab_vms(lab) {
        if let Some(Owner::Vm { user, name, .. }) = v.owner() {
            by_user.entry(user.clone()).or_default().push(GuestVm {
                name: name.clone(),
                vmid: v.vmid,
                node: v.node.clone(),
            });
        }
    }
    if by_user.is_empty() {
        return Err(StandsError::NotDeployed { lab: lab.to_string() });
    }
    if let Some(o) = only.iter().find(|o| !by_user.contains_key(*o)) {
        let students = by_user.keys().cloned().collect();
        return Err(StandsError::NoStand { lab: lab.to_string(), student: o.clone(), students });
    }
    Ok(by_user
        .into_iter()
        .filter(|(u, _)| only.is_empty() || only.contains(u))
        .map(|(user, mut vms)| {
            vms.sort_by_key(|v| v.vmid);
            let node = vms.first().map(|v| v.node.clone()).unwrap_or_default();
            DeployedStand { user, node, vms }
        })
        .collect())
}

/// Why a check stopped, in one line: the message and where (`lab3.rhai:21`).
fn reason(e: &crate::script::ScriptError) -> String {
    let file = std::path::Path::new(&e.file).file_name().and_then(|f| f.to_str()).unwrap_or(&e.file);
    match e.line {
        Some(line) => format!("{} ({file}:{line})", e.message.trim_end()),
        None => e.message.trim_end().to_string(),
    }
}

/// How one stand's check went.
#[derive(Clone, Debug, PartialEq)]
pub struct StandOutcome {
    /// The stand.
    pub user: String,
    /// Its node.
    pub node: String,
    /// What `grade` recorded, in order.
    pub grades: Vec<Grade>,
    /// Why `check` stopped before its end, if it did.
    pub error: Option<String>,
    /// Then, the criteria it grades when nothing stops it (the ones it did not reach fail
    /// with `error`).
    pub defined: Vec<Grade>,
}

/// Runs `check` for every stand at once, each on its own thread, and waits for all.
pub async fn check_stands(
    script: Arc<CheckScript>,
    snap: Arc<Snapshot>,
    stands: Vec<DeployedStand>,
    agent: Arc<dyn GuestAgent>,
    exec_timeout: Duration,
) -> Vec<StandOutcome> {
    let mut waiting = Vec::new();
    for stand in stands {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let under = StandUnderCheck {
            user: stand.user.clone(),
            node: stand.node.clone(),
            vms: stand.vms,
            agent: agent.clone(),
            exec_timeout,
            grades: Arc::default(),
            failed: Arc::default(),
            script: String::new(),
        };
        let (script, snap) = (script.clone(), snap.clone());
        let outcome =
            StandOutcome { user: stand.user, node: stand.node, grades: Vec::new(), error: None, defined: Vec::new() };
        let fallback = outcome.clone();
        // Plain threads, not the blocking pool: the guest calls they wait for run on the
        // runtime, whose paused clock (tests, benchmarks) must go on advancing meanwhile.
        let spawned =
            std::thread::Builder::new().name(format!("check {}", outcome.user)).stack_size(8 << 20).spawn(move || {
                let result = script.run(snap.clone(), &under);
                let defined = match &result {
                    Ok(()) => Vec::new(),
                    Err(_) => script.criteria(snap, &under),
                };
                let _ = tx.send(StandOutcome {
                    grades: under.grades(),
                    error: result.err().map(|e| reason(&e)),
                    defined,
                    ..outcome
                });
            });
        waiting.push((spawned.map_err(|e| e.to_string()), rx, fallback));
    }
    let mut out = Vec::new();
    for (spawned, rx, fallback) in waiting {
        let outcome = match spawned {
            Err(e) => StandOutcome { error: Some(format!("cannot start a thread: {e}")), ..fallback },
            Ok(_) => {
                rx.await.unwrap_or(StandOutcome { error: Some("the check stopped unexpectedly".into()), ..fallback })
            }
        };
        out.push(outcome);
    }
    out
}
