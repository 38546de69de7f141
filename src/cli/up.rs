//! `stand up`, `stand plan` and `stand run`: script → plan → (apply) → summary.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::arguments::{ApplyArgs, LabInput, Output};
use super::target::{Cluster, Unreachable};
use super::{Usage, credentials, exit, lab, render};
use crate::apply::{ApplyOptions, ApplyReport, Credential, Doomed, apply, destroy};
use crate::plan::{ChangeKind, Diff, Plan, Snapshot};
use crate::pve::WaitPolicy;
use crate::script::{RunOptions, run_file};

/// Reads the cluster.
pub async fn snapshot(cluster: &Cluster) -> Result<Arc<Snapshot>, Unreachable> {
    let snap = Snapshot::take(&cluster.pve)
        .await
        .with_context(|| format!("cannot read the cluster at {}", cluster.pve.endpoint()))
        .map_err(Unreachable)?;
    Ok(Arc::new(snap))
}

/// The diff shown for a plan; with `--only`, other students' objects are not stale.
fn diff_of(plan: &Plan, snap: &Snapshot, only: &[String]) -> Diff {
    let mut diff = Diff::compute(plan, snap);
    if !only.is_empty() {
        diff.changes.retain(|c| c.kind != ChangeKind::Delete);
    }
    diff
}

/// `stand plan`.
pub async fn plan(cluster: &Cluster, input: &LabInput, reset_passwords: bool, verbose: bool) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let plan = lab::plan_lab(input, snap.clone(), reset_passwords)?;
    let diff = diff_of(&plan, &snap, &input.only);
    match cluster.output {
        Output::Json => println!(
            "{}",
            json!({ "simulated": cluster.simulated(), "lab": plan.lab_name(), "plan": plan, "changes": diff.changes })
        ),
        Output::Text => {
            print!("{}", render::diff_lines(&diff, verbose));
            println!("lab {}: {}", plan.lab_name(), render::diff_counts(&diff));
            println!("{}", render::spread(&plan));
        }
    }
    Ok(exit::OK)
}

/// `stand up`.
pub async fn up(cluster: &Cluster, input: &LabInput, args: &ApplyArgs, quiet: bool) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let plan = lab::plan_lab(input, snap.clone(), args.reset_passwords)?;
    deploy(cluster, plan, snap, &input.only, args, quiet).await
}

/// `stand run`: any script; applies what it recorded, if anything.
pub async fn run(
    cluster: &Cluster,
    script: &Path,
    script_args: &[String],
    args: &ApplyArgs,
    quiet: bool,
) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let opts =
        RunOptions { args: script_args.to_vec(), reset_passwords: args.reset_passwords, ..RunOptions::default() };
    let plan = run_file(script, snap.clone(), &opts)?.plan;
    if plan.users.is_empty() && plan.vms.is_empty() && plan.bridges.is_empty() {
        return Ok(exit::OK);
    }
    deploy(cluster, plan, snap, &[], args, quiet).await
}

/// Polling and backoff: real, or scaled like the simulator's time.
pub fn timing(cluster: &Cluster) -> ApplyOptions {
    let defaults = ApplyOptions::default();
    let scale = cluster.time_scale().unwrap_or(1.0);
    let scaled = |d: Duration| d.mul_f64(scale).max(Duration::from_millis(5));
    ApplyOptions {
        wait: WaitPolicy { first: scaled(defaults.wait.first), max: scaled(defaults.wait.max), ..defaults.wait },
        backoff: scaled(defaults.backoff),
        ..defaults
    }
}

fn apply_options(cluster: &Cluster, args: &ApplyArgs, quiet: bool) -> ApplyOptions {
    let defaults = timing(cluster);
    ApplyOptions {
        per_node: args.per_node,
        per_storage: args.per_storage,
        apply_foreign_network: args.apply_foreign_network,
        progress: !quiet && cluster.output == Output::Text && std::io::stderr().is_terminal(),
        ..defaults
    }
}

async fn deploy(
    cluster: &Cluster,
    plan: Plan,
    snap: Arc<Snapshot>,
    only: &[String],
    args: &ApplyArgs,
    quiet: bool,
) -> anyhow::Result<u8> {
    if args.prune && !only.is_empty() {
        return Err(Usage("--prune removes what the whole lab no longer has; it cannot go with --only".into()).into());
    }
    let diff = diff_of(&plan, &snap, only);
    let text = cluster.output == Output::Text;
    if text {
        println!("lab {}: {}", plan.lab_name(), render::diff_counts(&diff));
    }
    if args.dry_run {
        if text {
            print!("{}", render::diff_lines(&diff, false));
            println!("dry run: nothing changed");
        } else {
            println!(
                "{}",
                json!({ "simulated": cluster.simulated(), "lab": plan.lab_name(), "dry_run": true, "changes": diff.changes })
            );
        }
        return Ok(exit::OK);
    }
    let creds_path = args.credentials.clone().unwrap_or_else(|| credentials::default_path(plan.lab_name()));
    // Passwords are saved before any user is made: a run killed midway loses none.
    let planned = Credential::of_plan(&plan);
    if !planned.is_empty() {
        credentials::save(&creds_path, &planned)?;
    }
    let options = apply_options(cluster, args, quiet);
    let mut report = if plan.is_noop() {
        ApplyReport::default()
    } else {
        apply(cluster.pve.clone(), &plan, snap.clone(), &options).await
    };
    let stale = if args.prune { Doomed::stale(&snap, &plan) } else { Doomed::default() };
    let pruned = if stale.is_empty() {
        None
    } else {
        let r = destroy(cluster.pve.clone(), &snap, plan.lab_name(), &stale, &options).await;
        report.failures.extend(r.failures.iter().cloned());
        Some(r)
    };
    let set: Vec<_> = report.credentials.clone();
    if !set.is_empty() {
        credentials::save(&creds_path, &set)?;
    }
    match cluster.output {
        Output::Json => {
            let creds: Vec<_> = set
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    if !args.show_passwords {
                        c.password.clear();
                    }
                    c
                })
                .collect();
            println!(
                "{}",
                json!({
                    "simulated": cluster.simulated(),
                    "lab": plan.lab_name(),
                    "converged": report.ok(),
                    "report": report,
                    "credentials": creds,
                    "credentials_file": (!set.is_empty()).then(|| creds_path.display().to_string()),
                    "pruned": pruned,
                })
            );
        }
        Output::Text => {
            if let Some(p) = &pruned {
                println!(
                    "pruned {} VMs, {} bridges, {} pools, {} users no longer in the script",
                    p.vms, p.bridges, p.pools, p.users
                );
            }
            if plan.is_noop() && pruned.is_none() {
                println!("nothing to do: the lab is as the script says");
            } else if !plan.is_noop() {
                println!("{}", render::apply_counts(&report));
                if let Some(scale) = cluster.time_scale().filter(|s| *s > 0.0 && *s < 1.0) {
                    println!(
                        "(simulated {:.0}× faster: about {:.0} s on the cluster this simulates)",
                        1.0 / scale,
                        report.seconds / scale
                    );
                }
                println!("{}", render::spread(&plan));
            }
            if !set.is_empty() {
                println!("credentials of {} students: {} (mode 0600)", set.len(), creds_path.display());
            }
            if !report.ok() {
                print!("{}", render::failures(&report.failures));
                println!("{} failed; the rest is done. `stand up` again continues from here.", report.failures.len());
            }
        }
    }
    let progress =
        report.users_created + report.pools_created + report.bridges_created + report.vms_created + report.vms_started;
    Ok(match (report.ok(), progress > 0 || diff.count(ChangeKind::Keep) > 0) {
        (true, _) => exit::OK,
        (false, true) => exit::PARTIAL,
        (false, false) => exit::FAILED,
    })
}
