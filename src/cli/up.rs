//! `stand up`, `stand plan` and `stand run`: script → plan → (apply) → summary.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::arguments::{ApplyArgs, LabInput, Output};
use super::target::{Cluster, Unreachable};
use super::{Usage, confirm, exit, lab, render};
use crate::apply::credentials;
use crate::apply::{ApplyOptions, ApplyReport, Credential, Doomed, apply, deploy_graph, destroy_actions};
use crate::plan::templates::CloneQueues;
use crate::plan::{ActionGraph, ChangeKind, Diff, Plan, Snapshot};
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

/// The plan's warnings, on stderr (in JSON they are part of the plan).
fn warn(cluster: &Cluster, plan: &Plan) {
    if cluster.output == Output::Text {
        for w in &plan.warnings {
            crate::errln!("{}", render::for_terminal(&format!("warning: {w}")));
        }
    }
}

/// What `up --prune` removes: the lab's objects on the cluster that `plan` no longer has,
/// as the actions that remove them (every VM's NICs read first, so a bridge any VM is
/// wired to stays).
pub async fn prune_actions(cluster: &Cluster, snap: &Snapshot, plan: &Plan) -> anyhow::Result<(Doomed, ActionGraph)> {
    let mut full = snap.clone();
    let nodes: Vec<String> = full.bridges.keys().cloned().collect();
    full.read_all_configs(&*cluster.pve, &nodes).await.context("cannot read the VMs' configs")?;
    let doomed = Doomed::stale(&full, plan);
    let graph = doomed.actions(&full, plan.lab_name());
    Ok((doomed, graph))
}

/// Where the plan's linked clones queue, in the realistic latency model's terms.
pub fn clone_queues(plan: &Plan, snap: &Snapshot) -> CloneQueues {
    CloneQueues::of_plan(plan, snap, crate::sim::LatencyModel::realistic().linked_lock_ms)
}

/// `stand plan`.
pub async fn plan(
    cluster: &Cluster,
    input: &LabInput,
    reset_passwords: bool,
    prune: bool,
    verbose: bool,
) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let plan = lab::plan_lab(input, snap.clone(), reset_passwords)?;
    let diff = diff_of(&plan, &snap, &input.only);
    warn(cluster, &plan);
    if prune && !input.only.is_empty() {
        return Err(Usage("--prune removes what the whole lab no longer has; it cannot go with --only".into()).into());
    }
    let pruned = if prune { Some(prune_actions(cluster, &snap, &plan).await?.1) } else { None };
    // Exactly what `up` runs: nothing for a plan that changes nothing.
    let actions = if plan.is_noop() { ActionGraph::default() } else { deploy_graph(&plan, &snap, false) };
    let queues = clone_queues(&plan, &snap);
    match cluster.output {
        Output::Json => crate::outln!(
            "{}",
            json!({
                "simulated": cluster.simulated(),
                "lab": plan.lab_name(),
                "plan": plan,
                "changes": diff.changes,
                "actions": actions,
                "prune": pruned,
                "clone_queues": queues,
            })
        ),
        Output::Text => {
            match &pruned {
                // The removals are the actions `up --prune` runs, in place of the diff's guess.
                Some(graph) => {
                    let mut kept = diff.clone();
                    kept.changes.retain(|c| c.kind != ChangeKind::Delete);
                    crate::out!("{}{}", render::diff_lines(&kept, verbose), render::action_lines(graph));
                    crate::outln!(
                        "{}",
                        render::wrap(&format!("lab {}: {}", plan.lab_name(), render::diff_counts(&kept)), 2)
                    );
                    if !graph.is_empty() {
                        let line = format!("up --prune removes with {}", render::action_counts(graph));
                        crate::outln!("{}", render::wrap(&line, 2));
                    }
                }
                None => {
                    crate::out!("{}{}", render::diff_lines(&diff, verbose), render::course_lines(&plan, &snap));
                    crate::outln!(
                        "{}",
                        render::wrap(&format!("lab {}: {}", plan.lab_name(), render::diff_counts(&diff)), 2)
                    );
                }
            }
            if !actions.is_empty() {
                crate::outln!("{}", render::wrap(&format!("up runs {}", render::action_counts(&actions)), 2));
            }
            if let Some(line) = queues.summary() {
                crate::outln!("{}", render::wrap(&format!("templates: {line}"), 2));
            }
            crate::outln!("{}", render::spread(&plan));
        }
    }
    Ok(exit::OK)
}

/// `stand up`.
pub async fn up(cluster: &Cluster, input: &LabInput, args: &ApplyArgs, quiet: bool) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let plan = lab::plan_lab(input, snap.clone(), args.reset_passwords)?;
    deploy(cluster, plan, snap, &input.only, args, quiet, None).await
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
    let json = cluster.output == Output::Json;
    let opts = RunOptions {
        args: script_args.to_vec(),
        reset_passwords: args.reset_passwords,
        print_to_stdout: !json,
        ..RunOptions::default()
    };
    let outcome = run_file(script, snap.clone(), &opts)?;
    let plan = outcome.plan;
    let records = !(plan.users.is_empty() && plan.vms.is_empty() && plan.bridges.is_empty());
    // The final value: on stdout for people (a string as it is, data as JSON), or as the
    // JSON document (with the report under `value` when the script also applied).
    if json && !records {
        crate::outln!("{}", outcome.value);
    } else if !json && !outcome.value.is_null() {
        match &outcome.value {
            serde_json::Value::String(s) => crate::outln!("{s}"),
            v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                crate::outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
            }
            v => crate::outln!("{v}"),
        }
    }
    if !records {
        return Ok(exit::OK);
    }
    deploy(cluster, plan, snap, &[], args, quiet, json.then_some(&outcome.value)).await
}

/// Polling and backoff: real, or scaled like the simulator's time.
pub fn timing(cluster: &Cluster) -> ApplyOptions {
    let defaults = ApplyOptions::default();
    let scale = cluster.time_scale().unwrap_or(1.0);
    let scaled = |d: Duration| d.mul_f64(scale).max(Duration::from_millis(5));
    ApplyOptions {
        wait: WaitPolicy { first: scaled(defaults.wait.first), max: scaled(defaults.wait.max), ..defaults.wait },
        backoff: scaled(defaults.backoff),
        interrupt: cluster.interrupt.clone(),
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
        stand_lines: !quiet && cluster.output == Output::Text && !std::io::stderr().is_terminal(),
        ..defaults
    }
}

/// PVE refuses `PUT /access/password` to API tokens ("not available with API token"; the
/// endpoint is `allowtoken => 0` in pve-access-control's AccessControl.pm), and no other
/// endpoint sets an existing user's password: a reset needs a ticket login.
fn refuse_token_password_reset(cluster: &Cluster, plan: &Plan) -> anyhow::Result<()> {
    let resets: Vec<&str> =
        plan.users.iter().filter(|u| u.exists && u.new_password).map(|u| u.userid.as_str()).collect();
    match cluster.token_id() {
        Some(token) if !resets.is_empty() => Err(Usage(format!(
            "--reset-passwords: PVE does not let an API token ({token}) change passwords, so {} would get passwords that never work; \
             log in with a ticket instead: unset PVE_TOKEN and set PVE_USER and PVE_PASSWORD (a user with User.Modify), then run again",
            resets.join(", ")
        ))
        .into()),
        _ => Ok(()),
    }
}

async fn deploy(
    cluster: &Cluster,
    plan: Plan,
    snap: Arc<Snapshot>,
    only: &[String],
    args: &ApplyArgs,
    quiet: bool,
    value: Option<&serde_json::Value>,
) -> anyhow::Result<u8> {
    if args.prune && !only.is_empty() {
        return Err(Usage("--prune removes what the whole lab no longer has; it cannot go with --only".into()).into());
    }
    let diff = diff_of(&plan, &snap, only);
    warn(cluster, &plan);
    let text = cluster.output == Output::Text;
    if text {
        crate::outln!("{}", render::wrap(&format!("lab {}: {}", plan.lab_name(), render::diff_counts(&diff)), 2));
    }
    if args.dry_run {
        if text {
            crate::out!("{}", render::diff_lines(&diff, false));
            crate::outln!("dry run: nothing changed");
        } else {
            crate::outln!(
                "{}",
                json!({ "simulated": cluster.simulated(), "lab": plan.lab_name(), "dry_run": true, "changes": diff.changes })
            );
        }
        return Ok(exit::OK);
    }
    let creds_path = args.credentials.clone().unwrap_or_else(|| credentials::default_path(plan.lab_name()));
    refuse_token_password_reset(cluster, &plan)?;
    // New students' passwords are saved before their users are made (the create carries the
    // password): a run killed midway loses none. A reset password is saved only once PVE
    // took it, so the file never holds a password that does not work.
    let mut planned = Credential::of_plan(&plan);
    planned.retain(|c| plan.users.iter().any(|u| u.userid == c.user && !u.exists));
    if !planned.is_empty() {
        credentials::save(&creds_path, &planned)?;
    }
    // What --prune removes is decided, and agreed to, before anything changes.
    let prune = match args.prune {
        true => Some(prune_actions(cluster, &snap, &plan).await?).filter(|(_, graph)| !graph.is_empty()),
        false => None,
    };
    if let Some((doomed, _)) = &prune {
        let question = format!("remove {} that lab {} no longer has?", render::doomed_counts(doomed), plan.lab_name());
        if !confirm::before_removing(&question, args.yes)? {
            crate::errln!("nothing was changed");
            return Ok(exit::FAILED);
        }
    }
    let options = apply_options(cluster, args, quiet);
    let mut report = if plan.is_noop() {
        ApplyReport::default()
    } else {
        apply(cluster.pve.clone(), &plan, snap.clone(), &options).await
    };
    let pruned = match &prune {
        Some((_, graph)) => {
            let r = destroy_actions(cluster.pve.clone(), graph, &options).await;
            report.failures.extend(r.failures.iter().cloned());
            report.interrupted += r.interrupted;
            Some(r)
        }
        None => None,
    };
    let set: Vec<_> = report.credentials.clone();
    if !set.is_empty() {
        credentials::save(&creds_path, &set)?;
    }
    // A name the roster corrected is the printed logins' name too.
    let renamed: Vec<(String, String)> = plan
        .users
        .iter()
        .filter(|u| {
            let user = crate::plan::ObjectRef::User { userid: u.userid.clone() };
            u.name_update && !report.failures.iter().any(|f| f.object == user)
        })
        .filter_map(|u| Some((u.userid.clone(), u.full_name.as_ref()?.display())))
        .collect();
    if !renamed.is_empty() {
        credentials::rename(&creds_path, &renamed)?;
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
            crate::outln!(
                "{}",
                json!({
                    "simulated": cluster.simulated(),
                    "lab": plan.lab_name(),
                    "warnings": plan.warnings,
                    "converged": report.ok(),
                    "report": report,
                    "credentials": creds,
                    "credentials_file": (!set.is_empty()).then(|| creds_path.display().to_string()),
                    "pruned": pruned,
                    "value": value,
                })
            );
        }
        Output::Text => {
            if let Some(p) = &pruned {
                crate::outln!("pruned {} no longer in the script", render::removed_counts(p));
            }
            if plan.is_noop() && pruned.is_none() {
                crate::outln!("nothing to do: the lab is as the script says");
            } else if !plan.is_noop() {
                crate::outln!("{}", render::apply_counts(&report));
                if let Some(scale) = cluster.time_scale().filter(|s| *s > 0.0 && *s < 1.0) {
                    crate::outln!(
                        "(simulated {:.0}× faster: about {:.0} s on the cluster this simulates)",
                        1.0 / scale,
                        report.seconds / scale
                    );
                }
                crate::outln!("{}", render::spread(&plan));
            }
            if !set.is_empty() {
                crate::outln!(
                    "credentials of {}: {} (mode 0600)",
                    render::count(set.len(), "student"),
                    creds_path.display()
                );
            }
            if !report.failures.is_empty() {
                crate::out!("{}", render::failures(&report.failures));
                crate::outln!(
                    "{} failed; the rest is done. `stand up` again continues from here.",
                    report.failures.len()
                );
            }
            if report.interrupted > 0 {
                crate::errln!("{}", render::wrap(&exit::interrupted_line(report.interrupted, "stand up"), 2));
            }
        }
    }
    if report.interrupted > 0 {
        return Ok(exit::INTERRUPTED);
    }
    let progress =
        report.users_created + report.pools_created + report.bridges_created + report.vms_created + report.vms_started;
    Ok(exit::of_run(report.ok(), progress > 0 || diff.count(ChangeKind::Keep) > 0))
}
