//! Resets and power changes people start from the page: each an action graph of
//! `plan/course.rs`, run in the background with the person's own ticket, its progress
//! kept for the pages and `/api/operations`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::App;
use super::session::Session;
use super::view::{ClassView, StandView};
use crate::apply::{OnEnd, run_observed};
use crate::plan::course::{self, SnapshotLists};
use crate::plan::{ActionGraph, PowerOp, VmSnap};
use crate::pve::{Pve, PveExt};

/// What an operation does.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Back to the lab's baseline snapshot.
    Reset,
    /// A power change.
    Power(PowerOp),
    /// An exam's uplinks: cut (`false`) or restored (`true`), as `stand uplinks` does.
    Uplinks(bool),
}

/// `on`, `off`, `shutdown`, `reboot` as the routes name them.
pub fn power_op(name: &str) -> Option<PowerOp> {
    Some(match name {
        "on" => PowerOp::Start,
        "off" => PowerOp::Stop,
        "shutdown" => PowerOp::Shutdown { timeout: 60 },
        "reboot" => PowerOp::Reboot,
        _ => return None,
    })
}

/// One operation, as the pages and the API show it.
#[derive(Clone, Debug, Serialize)]
pub struct OpView {
    /// Its number.
    pub id: u64,
    /// Lab.
    pub lab: String,
    /// Whose stand.
    pub user: String,
    /// The one VM it is about (the script's name), or the whole stand.
    pub vm: Option<String>,
    /// `reset`, `start`, `stop`, ...
    pub kind: String,
    /// Who started it.
    pub by: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Steps in all.
    pub steps: usize,
    /// Steps ended.
    pub ended: usize,
    /// What failed, with what to do.
    pub errors: Vec<String>,
}

struct Op {
    view: OpView,
    ended: Arc<AtomicUsize>,
}

/// The operations of this server's lifetime.
#[derive(Default)]
pub struct Operations {
    list: Mutex<Vec<Op>>,
    next: AtomicU64,
}

/// Why an operation could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A VM lacks the snapshot a reset goes back to.
    #[error("{0}")]
    NoSnapshot(String),
    /// Reading the VMs' snapshots failed.
    #[error("cannot list the snapshots: {0}")]
    Cluster(#[from] crate::pve::PveError),
    /// The same stand has an operation running.
    #[error("an operation on this stand is still running")]
    Busy,
}

impl Operations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Op>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every operation, newest first, with its progress now.
    pub fn list(&self) -> Vec<OpView> {
        self.lock()
            .iter()
            .rev()
            .map(|op| OpView { ended: op.ended.load(Ordering::Relaxed), ..op.view.clone() })
            .collect()
    }

    /// Whether an operation on `lab`/`user` runs.
    pub fn running(&self, lab: &str, user: &str) -> bool {
        self.lock().iter().any(|op| op.view.state == "running" && op.view.lab == lab && op.view.user == user)
    }

    fn finish(&self, id: u64, errors: Vec<String>) {
        if let Some(op) = self.lock().iter_mut().find(|op| op.view.id == id) {
            op.view.state = if errors.is_empty() { "done" } else { "failed" }.into();
            op.view.errors = errors;
        }
    }
}

/// The VMs of `stand` (all, or the one named `vm`) as the snapshot has them, with the live
/// status and node.
fn chosen(class: &ClassView, stand: &StandView, vm: Option<&str>) -> Vec<VmSnap> {
    let live: BTreeMap<u32, _> = stand.vms.iter().map(|v| (v.vmid, v)).collect();
    class
        .snapshot
        .vms
        .iter()
        .filter_map(|s| {
            let v = live.get(&s.vmid)?;
            if vm.is_some_and(|name| name != v.short && name != v.name) {
                return None;
            }
            let mut s = s.clone();
            s.status = v.status.clone();
            s.node = v.node.clone();
            Some(s)
        })
        .collect()
}

/// Starts `kind` on `stand` (or its VM `vm`) as `by`, in the background; returns its id.
pub async fn start(
    app: &Arc<App>,
    by: &Session,
    class: &ClassView,
    stand: &StandView,
    vm: Option<&str>,
    kind: Kind,
) -> Result<u64, OpError> {
    if app.ops.running(&stand.lab, &stand.user) {
        return Err(OpError::Busy);
    }
    let vms = chosen(class, stand, vm);
    let refs: Vec<&VmSnap> = vms.iter().collect();
    let pve: Arc<dyn Pve> = by.pve.clone();
    let (graph, name): (ActionGraph, String) = match kind {
        Kind::Reset => {
            let to = class.labs.get(&stand.lab).map(|l| l.baseline.clone()).unwrap_or_else(|| "start".into());
            let mut lists = SnapshotLists::new();
            for v in &vms {
                let names = pve.snapshots(&v.node, v.vmid).await?;
                let names = names.iter().filter_map(|s| s["name"].as_str()).map(str::to_string).collect();
                lists.insert(v.vmid, names);
            }
            let graph = course::reset(&refs, &to, &lists).map_err(|missing| {
                let names: Vec<&str> = missing.iter().map(|v| v.name.as_str()).collect();
                OpError::NoSnapshot(format!("no snapshot '{to}' of {}: ask the instructor", names.join(", ")))
            })?;
            (graph, "reset".into())
        }
        Kind::Power(op) => (course::power(&refs, op), op.to_string()),
        Kind::Uplinks(false) => (course::uplinks_off(&refs, &class.snapshot), "uplinks off".into()),
        Kind::Uplinks(true) => (course::uplinks_on(&refs), "uplinks on".into()),
    };
    let id = app.ops.next.fetch_add(1, Ordering::Relaxed) + 1;
    let ended = Arc::new(AtomicUsize::new(0));
    let view = OpView {
        id,
        lab: stand.lab.clone(),
        user: stand.user.clone(),
        vm: vm.map(str::to_string),
        kind: name,
        by: by.user.clone(),
        state: "running".into(),
        steps: graph.steps().len(),
        ended: 0,
        errors: Vec::new(),
    };
    tracing::info!("{} starts {} of {}'s stand in {}", view.by, view.kind, view.user, view.lab);
    app.ops.lock().push(Op { view, ended: ended.clone() });
    let counter: OnEnd = Arc::new(move |_, _| {
        ended.fetch_add(1, Ordering::Relaxed);
    });
    let app = app.clone();
    let opts = app.backend.apply.clone();
    tokio::spawn(async move {
        let report = run_observed(pve, &graph, &opts, Some(counter)).await;
        let errors = report.failures().iter().map(|f| format!("{}: {}", f.object, f.message)).collect();
        app.ops.finish(id, errors);
        app.view.invalidate().await;
    });
    Ok(id)
}
