//! `stand reset`, `stand power` and `stand snapshot`: a running course's operations on the
//! VMs of a lab, some students or some VMs, each run as an action graph.

use anyhow::Context;
use futures::stream::{self, StreamExt};
use serde_json::json;

use super::arguments::{Output, PowerArg, UplinksArg, VmScope};
use super::down::{check_exists, lab_of};
use super::suggest::{self, not_found};
use super::target::Cluster;
use super::up::{snapshot, timing};
use super::{Usage, confirm, exit, render};
use crate::apply::{ApplyOptions, RunReport, run};
use crate::plan::course::{self, Scope, SnapshotLists};
use crate::plan::{Action, ActionGraph, PowerOp, Snapshot, VmSnap};
use crate::pve::{Pve, PveExt};

/// The lab and the VMs `scope` means; fails (exit 1) naming what does not exist.
fn chosen(snap: &Snapshot, scope: &VmScope) -> anyhow::Result<(String, Vec<VmSnap>)> {
    let lab = lab_of(&scope.lab, snap);
    let only = check_exists(snap, &lab, &scope.only)?;
    let names = Scope::vm_names(snap, &lab);
    for vm in &scope.vms {
        if !names.contains(vm) {
            anyhow::bail!("{} in lab {lab}", not_found("VM", vm, names.iter().map(String::as_str)));
        }
    }
    let vms = Scope { lab: &lab, only: &only, vms: &scope.vms }.select(snap);
    Ok((lab, vms.into_iter().cloned().collect()))
}

/// The snapshots of each VM (names, without PVE's `current`), read 16 at a time.
async fn snapshot_lists(pve: &dyn Pve, vms: &[VmSnap]) -> anyhow::Result<SnapshotLists> {
    let reads = stream::iter(vms.iter().map(|v| async move {
        let list =
            pve.snapshots(&v.node, v.vmid).await.with_context(|| format!("cannot list the snapshots of {}", v.name))?;
        let names = list
            .iter()
            .filter_map(|s| s["name"].as_str())
            .filter(|n| *n != "current")
            .map(str::to_string)
            .collect::<Vec<_>>();
        Ok::<_, anyhow::Error>((v.vmid, names))
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    reads.into_iter().collect()
}

/// What a course command did, for text and JSON.
struct Outcome<'a> {
    cluster: &'a Cluster,
    lab: &'a str,
    operation: &'a str,
    graph: &'a ActionGraph,
}

impl Outcome<'_> {
    /// Prints the graph of `--dry-run`.
    fn dry_run(&self) -> u8 {
        match self.cluster.output {
            Output::Text => {
                crate::out!("{}", render::action_lines(self.graph));
                crate::outln!("dry run: nothing changed");
            }
            Output::Json => crate::outln!(
                "{}",
                json!({ "simulated": self.cluster.simulated(), "lab": self.lab, "operation": self.operation, "dry_run": true, "actions": self.graph })
            ),
        }
        exit::OK
    }

    /// Prints what the run did (`summary` in text) and returns the exit code.
    fn report(&self, run: &RunReport, summary: &str) -> u8 {
        let failures = run.failures();
        let done = run.done(self.graph, |_| true);
        let interrupted = run.interrupted();
        match self.cluster.output {
            Output::Text => {
                crate::outln!("{}", render::wrap(&format!("lab {}: {summary}", self.lab), 2));
                crate::out!("{}", render::failures(&failures));
                if interrupted > 0 {
                    crate::errln!("{}", render::wrap(&exit::interrupted_line(interrupted, "the command"), 2));
                }
            }
            Output::Json => crate::outln!(
                "{}",
                json!({
                    "simulated": self.cluster.simulated(), "lab": self.lab, "operation": self.operation,
                    "actions": self.graph.steps().len(), "done": done, "failures": failures,
                    "interrupted": interrupted, "converged": failures.is_empty() && interrupted == 0,
                })
            ),
        }
        match interrupted {
            0 => exit::of_run(failures.is_empty(), done > 0),
            _ => exit::INTERRUPTED,
        }
    }

    /// Prints that nothing was to be done.
    fn nothing(&self, why: &str) -> u8 {
        match self.cluster.output {
            Output::Text => crate::outln!("lab {}: {why}", self.lab),
            Output::Json => crate::outln!(
                "{}",
                json!({ "simulated": self.cluster.simulated(), "lab": self.lab, "operation": self.operation, "actions": 0, "done": 0, "failures": [], "converged": true })
            ),
        }
        exit::OK
    }
}

/// `stand reset LAB [--only USER..] [--vm NAME..] [--to SNAPSHOT] [--yes] [--dry-run]`.
pub async fn reset(cluster: &Cluster, scope: &VmScope, to: &str, yes: bool) -> anyhow::Result<u8> {
    course::valid_snapshot_name(to).map_err(Usage)?;
    let snap = snapshot(cluster).await?;
    let (lab, vms) = chosen(&snap, scope)?;
    let refs: Vec<&VmSnap> = vms.iter().collect();
    let lists = snapshot_lists(&*cluster.pve, &vms).await?;
    let graph = course::reset(&refs, to, &lists).map_err(|missing| {
        let taken: std::collections::BTreeSet<&str> = lists.values().flatten().map(String::as_str).collect();
        if missing.len() == refs.len() {
            // No VM has it: most likely a typo of a snapshot they have.
            return anyhow::anyhow!(
                "{}; nothing was reset (`stand snapshot {lab} --list` shows each VM's)",
                suggest::not_found("snapshot", to, taken.iter().copied())
            );
        }
        let names: Vec<&str> = missing.iter().map(|v| v.name.as_str()).collect();
        anyhow::anyhow!(
            "{} without snapshot '{to}': {}; nothing was reset. Take it with `stand snapshot {lab} {to}` (or choose --to, see `stand snapshot {lab} --list`)",
            render::count(missing.len(), "VM"),
            suggest::listing(&names)
        )
    })?;
    let out = Outcome { cluster, lab: &lab, operation: "reset", graph: &graph };
    if graph.is_empty() {
        return Ok(out.nothing("no VM of these students carries the lab's marker; nothing to reset"));
    }
    if scope.dry_run {
        return Ok(out.dry_run());
    }
    let stands = course::stands(&refs);
    if stands.len() > 1 {
        let question = format!(
            "reset {} of {} to '{to}' (their changes since are lost)?",
            render::count(refs.len(), "VM"),
            render::count(stands.len(), "stand")
        );
        if !confirm::go_ahead(&question, yes) {
            crate::errln!("nothing was reset");
            return Ok(exit::FAILED);
        }
    }
    let run = run(cluster.pve.clone(), &graph, &timing(cluster)).await;
    let started = run.done(&graph, |a| {
        matches!(a, Action::RollbackVm { start: true, .. } | Action::PowerVm { op: PowerOp::Start, .. })
    });
    let summary = format!(
        "{} of {} back to '{to}', {started} of them started again",
        render::count(run.done(&graph, |a| matches!(a, Action::RollbackVm { .. })), "VM"),
        render::count(stands.len(), "stand")
    );
    Ok(out.report(&run, &summary))
}

/// `stand power on|off|shutdown|reboot LAB [--only USER..] [--vm NAME..] [--timeout S]`.
pub async fn power(
    cluster: &Cluster,
    scope: &VmScope,
    op: PowerArg,
    timeout: u64,
    per_node: usize,
) -> anyhow::Result<u8> {
    if per_node == 0 {
        return Err(Usage("--per-node must be at least 1".into()).into());
    }
    let operation = match op {
        PowerArg::On => "power_on",
        PowerArg::Off => "power_off",
        PowerArg::Shutdown => "power_shutdown",
        PowerArg::Reboot => "power_reboot",
    };
    let op = match op {
        PowerArg::On => PowerOp::Start,
        PowerArg::Off => PowerOp::Stop,
        PowerArg::Shutdown => PowerOp::Shutdown { timeout },
        PowerArg::Reboot => PowerOp::Reboot,
    };
    let snap = snapshot(cluster).await?;
    let (lab, vms) = chosen(&snap, scope)?;
    let refs: Vec<&VmSnap> = vms.iter().collect();
    let graph = course::power(&refs, op);
    let out = Outcome { cluster, lab: &lab, operation, graph: &graph };
    if graph.is_empty() {
        return Ok(out.nothing(&format!("all {} already as asked", render::count(refs.len(), "VM"))));
    }
    if scope.dry_run {
        return Ok(out.dry_run());
    }
    let opts = ApplyOptions { per_node, ..timing(cluster) };
    let run = run(cluster.pve.clone(), &graph, &opts).await;
    let verb = match op {
        PowerOp::Start => "started",
        PowerOp::Stop => "stopped",
        PowerOp::Shutdown { .. } => "shut down",
        PowerOp::Reboot => "rebooted or started",
    };
    let summary = format!("{} {verb}", render::count(run.done(&graph, |_| true), "VM"));
    Ok(out.report(&run, &summary))
}

/// `stand uplinks off|on LAB [--only USER..] [--vm NAME..]`.
pub async fn uplinks(cluster: &Cluster, scope: &VmScope, op: UplinksArg) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let (lab, vms) = chosen(&snap, scope)?;
    let refs: Vec<&VmSnap> = vms.iter().collect();
    let (graph, operation) = match op {
        UplinksArg::Off => (course::uplinks_off(&refs, &snap), "uplinks_off"),
        UplinksArg::On => (course::uplinks_on(&refs), "uplinks_on"),
    };
    let out = Outcome { cluster, lab: &lab, operation, graph: &graph };
    if graph.is_empty() {
        return Ok(out.nothing(match op {
            UplinksArg::Off => "no connected NIC on a shared bridge; nothing to cut",
            UplinksArg::On => "no NIC was cut by `stand uplinks off`; nothing to reconnect",
        }));
    }
    if scope.dry_run {
        return Ok(out.dry_run());
    }
    let run = run(cluster.pve.clone(), &graph, &timing(cluster)).await;
    let nics: usize = graph
        .steps()
        .iter()
        .zip(&run.outcomes)
        .filter(|(_, o)| matches!(o, crate::apply::Outcome::Done))
        .map(|(s, _)| match &s.action {
            Action::CutUplinks { nics, .. } | Action::RestoreUplinks { nics, .. } => nics.len(),
            _ => 0,
        })
        .sum();
    let vms = render::count(run.done(&graph, |_| true), "VM");
    let summary = match op {
        UplinksArg::Off => format!("{} of {vms} disconnected from shared networks", render::count(nics, "NIC")),
        UplinksArg::On => format!("{} of {vms} reconnected", render::count(nics, "NIC")),
    };
    Ok(out.report(&run, &summary))
}

/// `stand snapshot LAB NAME [--delete] | --list`.
pub async fn snapshots(
    cluster: &Cluster,
    scope: &VmScope,
    name: Option<&str>,
    list: bool,
    delete: bool,
) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let (lab, vms) = chosen(&snap, scope)?;
    let lists = snapshot_lists(&*cluster.pve, &vms).await?;
    if list {
        return Ok(print_lists(cluster, &lab, &vms, &lists));
    }
    let name = name.unwrap_or_default();
    course::valid_snapshot_name(name).map_err(Usage)?;
    let refs: Vec<&VmSnap> = vms.iter().collect();
    let (graph, operation) = match delete {
        true => (course::delete_snapshot(&refs, name, &lists), "delete_snapshot"),
        false => (course::snapshot(&refs, name, &format!("stand: snapshot of lab {lab}"), &lists), "snapshot"),
    };
    let out = Outcome { cluster, lab: &lab, operation, graph: &graph };
    if graph.is_empty() {
        let why = match delete {
            true => format!("no VM of these has snapshot '{name}'; nothing to delete"),
            false => format!("every VM of these already has snapshot '{name}'"),
        };
        return Ok(out.nothing(&why));
    }
    if scope.dry_run {
        return Ok(out.dry_run());
    }
    let run = run(cluster.pve.clone(), &graph, &timing(cluster)).await;
    let done = render::count(run.done(&graph, |_| true), "VM");
    let summary = match delete {
        true => format!("snapshot '{name}' deleted on {done}"),
        false => format!("snapshot '{name}' taken of {done}"),
    };
    Ok(out.report(&run, &summary))
}

fn print_lists(cluster: &Cluster, lab: &str, vms: &[VmSnap], lists: &SnapshotLists) -> u8 {
    let rows: Vec<_> = vms.iter().map(|v| (v, lists.get(&v.vmid).cloned().unwrap_or_default())).collect();
    match cluster.output {
        Output::Text => {
            let mut table = render::table(&["VMID", "VM", "NODE", "SNAPSHOTS"]);
            for (v, names) in &rows {
                table.add_row(vec![v.vmid.to_string(), v.name.clone(), v.node.clone(), names.join(", ")]);
            }
            crate::outln!("{table}");
        }
        Output::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|(v, names)| json!({ "vmid": v.vmid, "name": v.name, "node": v.node, "snapshots": names }))
                .collect();
            crate::outln!("{}", json!({ "simulated": cluster.simulated(), "lab": lab, "vms": list }));
        }
    }
    exit::OK
}
