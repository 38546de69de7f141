//! `stand down`: removes what carries the lab's marker.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::arguments::Output;
use super::confirm;
use super::suggest::{not_found, resolve_students};
use super::target::Cluster;
use super::up::{snapshot, timing};
use super::{exit, lab, render};
use crate::apply::{DestroyReport, Doomed, destroy_actions};
use crate::plan::{Snapshot, expiry};
use crate::script::{RunOptions, run_file};

/// The lab `arg` names: a script may name its lab itself (`lab(#{ name: .. })`), else the
/// file's name; a plain argument is the name.
pub fn lab_of(arg: &str, snap: &Snapshot) -> String {
    match Path::new(arg) {
        p if p.is_file() && p.extension().is_some_and(|e| e == "rhai") => {
            run_file(p, Arc::new(snap.clone()), &RunOptions::default())
                .map(|o| o.plan.lab_name().to_string())
                .unwrap_or_else(|_| lab::lab_name(arg))
        }
        _ => lab::lab_name(arg),
    }
}

/// The students `only` names in `lab` (see [`resolve_students`]); fails (exit 1) when the lab
/// or a student is not on the cluster, listing what is.
pub fn check_exists(snap: &Snapshot, lab: &str, only: &[String]) -> anyhow::Result<Vec<String>> {
    let labs = snap.labs();
    if !labs.contains(lab) {
        anyhow::bail!("{}", not_found("lab", lab, labs.iter().map(String::as_str)));
    }
    let students = snap.students(lab);
    let students: Vec<&str> = students.iter().map(String::as_str).collect();
    resolve_students(lab, only, &students).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `stand down --expired [--dry-run]`: every lab whose last day is past, one after the other.
pub async fn down_expired(cluster: &Cluster, dry_run: bool, yes: bool) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let today = expiry::today();
    let expired: Vec<(String, String)> = snap
        .labs()
        .into_iter()
        .filter_map(|l| snap.lab_expires(&l).filter(|d| expiry::is_past(d, today)).map(|d| (l, d)))
        .collect();
    if expired.is_empty() {
        match cluster.output {
            Output::Text => crate::outln!("no lab is past its last day ({today}); nothing to remove"),
            Output::Json => crate::outln!("{}", json!({ "simulated": cluster.simulated(), "expired": [] })),
        }
        return Ok(exit::OK);
    }
    if !dry_run {
        let labs: Vec<String> = expired.iter().map(|(l, d)| format!("{l} (last day {d})")).collect();
        let question = format!("remove every object of the labs past their last day: {}?", labs.join(", "));
        if !confirm::before_removing(&question, yes)? {
            crate::errln!("nothing was removed");
            return Ok(exit::FAILED);
        }
    }
    let mut code = exit::OK;
    let mut reports = Vec::new();
    for (lab, day) in &expired {
        if cluster.output == Output::Text {
            crate::errln!("lab {lab}: its last day was {day}");
        }
        code = code.max(down_into(cluster, lab, &[], dry_run, true, Some(&mut reports)).await?);
    }
    if cluster.output == Output::Json {
        crate::outln!("{}", json!({ "simulated": cluster.simulated(), "expired": reports }));
    }
    Ok(code)
}

/// Prints a JSON report, or keeps it in `sink` (one document for several labs).
fn emit(report: serde_json::Value, sink: &mut Option<&mut Vec<serde_json::Value>>) {
    match sink {
        Some(all) => all.push(report),
        None => crate::outln!("{report}"),
    }
}

/// `stand down LAB.rhai|LAB [--only USER..] [--dry-run]`.
pub async fn down(cluster: &Cluster, arg: &str, only: &[String], dry_run: bool, yes: bool) -> anyhow::Result<u8> {
    down_into(cluster, arg, only, dry_run, yes, None).await
}

/// `down`, its JSON report printed or kept in `sink`.
async fn down_into(
    cluster: &Cluster,
    arg: &str,
    only: &[String],
    dry_run: bool,
    yes: bool,
    mut sink: Option<&mut Vec<serde_json::Value>>,
) -> anyhow::Result<u8> {
    let mut snap = (*snapshot(cluster).await?).clone();
    let name = lab_of(arg, &snap);
    let only = check_exists(&snap, &name, only)?;
    let only = only.as_slice();
    // Every NIC on the nodes with bridges is read: a bridge any VM is wired to stays.
    let nodes: Vec<String> = snap.bridges.keys().cloned().collect();
    snap.read_all_configs(&*cluster.pve, &nodes).await.context("cannot read the VMs' configs")?;
    let doomed = Doomed::select(&snap, &name, only);
    let text = cluster.output == Output::Text;
    if doomed.is_empty() && doomed.kept_bridges.is_empty() && doomed.kept_vnets.is_empty() {
        match text {
            true => crate::outln!("lab {name}: nothing of these students carries its marker; nothing to remove"),
            false => emit(
                json!({ "simulated": cluster.simulated(), "lab": name, "removed": DestroyReport::default(), "kept_bridges": [], "kept_vnets": [], "converged": true }),
                &mut sink,
            ),
        }
        return Ok(exit::OK);
    }
    if text {
        for k in &doomed.kept_bridges {
            crate::errln!("keeping bridge {}/{}: {}", k.node, k.iface, k.reason);
        }
        for k in &doomed.kept_vnets {
            crate::errln!("keeping VNet {} of zone {}: {}", k.vnet, k.zone, k.reason);
        }
    }
    let graph = doomed.actions(&snap, &name);
    if dry_run {
        if text {
            crate::out!("{}", render::action_lines(&graph));
            crate::outln!("dry run: nothing removed");
        } else {
            emit(
                json!({ "simulated": cluster.simulated(), "lab": name, "dry_run": true, "would_remove": doomed, "actions": graph }),
                &mut sink,
            );
        }
        return Ok(exit::OK);
    }
    let whose = match only.is_empty() {
        true => format!("lab {name}"),
        false => format!("{} of lab {name}", only.join(", ")),
    };
    if !confirm::before_removing(&format!("remove {} of {whose}?", render::doomed_counts(&doomed)), yes)? {
        crate::errln!("nothing was removed");
        return Ok(exit::FAILED);
    }
    let report = destroy_actions(cluster.pve.clone(), &graph, &timing(cluster)).await;
    let ok = report.failures.is_empty() && report.interrupted == 0;
    if text {
        crate::outln!(
            "lab {name}: removed {}{}",
            render::removed_counts(&report),
            if report.users_kept > 0 {
                format!(" ({} kept: other labs use them)", report.users_kept)
            } else {
                String::new()
            }
        );
        crate::out!("{}", render::failures(&report.failures));
        if report.interrupted > 0 {
            crate::errln!("{}", render::wrap(&exit::interrupted_line(report.interrupted, "stand down"), 2));
        }
    } else {
        emit(
            json!({ "simulated": cluster.simulated(), "lab": name, "removed": report, "kept_bridges": doomed.kept_bridges, "kept_vnets": doomed.kept_vnets, "converged": ok }),
            &mut sink,
        );
    }
    if report.interrupted > 0 {
        return Ok(exit::INTERRUPTED);
    }
    let progress = report.vms + report.bridges + report.vnets + report.pools + report.users;
    Ok(exit::of_run(ok, progress > 0))
}
