//! `stand down`: removes what carries the lab's marker.

use std::path::Path;

use serde_json::json;

use super::arguments::Output;
use super::target::Cluster;
use super::up::{snapshot, timing};
use super::{exit, lab, render};
use crate::apply::{Doomed, destroy};
use crate::script::{RunOptions, run_file};

/// `stand down LAB.rhai|LAB [--only USER..] [--dry-run]`.
pub async fn down(cluster: &Cluster, arg: &str, only: &[String], dry_run: bool) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    // A script may name its lab itself (`lab(#{ name: .. })`): ask it, else use the file name.
    let name = match Path::new(arg) {
        p if p.is_file() && p.extension().is_some_and(|e| e == "rhai") => {
            run_file(p, snap.clone(), &RunOptions::default())
                .map(|o| o.plan.lab_name().to_string())
                .unwrap_or_else(|_| lab::lab_name(arg))
        }
        _ => lab::lab_name(arg),
    };
    let doomed = Doomed::select(&snap, &name, only);
    let text = cluster.output == Output::Text;
    if doomed.is_empty() {
        if text {
            println!("lab {name}: nothing carries its marker; nothing to remove");
        } else {
            println!("{}", json!({ "simulated": cluster.simulated(), "lab": name, "removed": doomed }));
        }
        return Ok(exit::OK);
    }
    if dry_run {
        if text {
            for (node, vmid, vm, _) in &doomed.vms {
                println!("- vm     {vmid} {vm} on {node}");
            }
            for (node, iface) in &doomed.bridges {
                println!("- bridge {node}/{iface}");
            }
            for p in &doomed.pools {
                println!("- pool   {p}");
            }
            for g in &doomed.groups {
                println!("- group  {g}");
            }
            for (u, rest) in &doomed.users {
                match rest.is_empty() {
                    true => println!("- user   {u}"),
                    false => println!("~ user   {u} (kept: also in {})", rest.join(", ")),
                }
            }
            println!("dry run: nothing removed");
        } else {
            println!(
                "{}",
                json!({ "simulated": cluster.simulated(), "lab": name, "dry_run": true, "would_remove": doomed })
            );
        }
        return Ok(exit::OK);
    }
    let report = destroy(cluster.pve.clone(), &snap, &name, &doomed, &timing(cluster)).await;
    let ok = report.failures.is_empty();
    if text {
        println!(
            "lab {name}: removed {} VMs, {} bridges, {} pools, {} users{}",
            report.vms,
            report.bridges,
            report.pools,
            report.users,
            if report.users_kept > 0 {
                format!(" ({} kept: other labs use them)", report.users_kept)
            } else {
                String::new()
            }
        );
        print!("{}", render::failures(&report.failures));
    } else {
        println!("{}", json!({ "simulated": cluster.simulated(), "lab": name, "removed": report, "converged": ok }));
    }
    let progress = report.vms + report.bridges + report.pools + report.users;
    Ok(match (ok, progress > 0) {
        (true, _) => exit::OK,
        (false, true) => exit::PARTIAL,
        (false, false) => exit::FAILED,
    })
}
