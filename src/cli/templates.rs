//! `stand templates [list|sync|prune]`: templates by name with their copies per node, and
//! the copies `sync` makes and `prune` removes, each run as an action graph.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::arguments::{Output, TemplatesCommand};
use super::target::Cluster;
use super::target::Unreachable;
use super::up::timing;
use super::{exit, render};
use crate::apply;
use crate::plan::Snapshot;
use crate::plan::templates::{self, Catalog, SyncRequest, TemplatesPlan};

/// Runs `stand templates ...`.
pub async fn run(cluster: &Cluster, action: Option<&TemplatesCommand>) -> anyhow::Result<u8> {
    let snap = read(cluster).await?;
    let cat = Catalog::of(&snap);
    match action {
        None | Some(TemplatesCommand::List) => Ok(list(cluster, &snap, &cat)),
        Some(TemplatesCommand::Sync { names, storage, nodes, refresh, first_vmid, dry_run }) => {
            let req = SyncRequest {
                names: names.clone(),
                storage: storage.clone(),
                nodes: nodes.clone(),
                refresh: *refresh,
                first_vmid: *first_vmid,
            };
            let plan = templates::sync(&snap, &cat, &req)?;
            carry_out(cluster, "sync", &plan, *dry_run).await
        }
        Some(TemplatesCommand::Prune { names, nodes, dry_run }) => {
            let plan = templates::prune(&snap, &cat, names, nodes)?;
            carry_out(cluster, "prune", &plan, *dry_run).await
        }
    }
}

/// The cluster with every VM's config: a copy's linked clones may be anyone's.
async fn read(cluster: &Cluster) -> anyhow::Result<Snapshot> {
    Ok(Snapshot::take_all(&cluster.pve)
        .await
        .with_context(|| format!("cannot read the cluster at {}", cluster.pve.endpoint()))
        .map_err(Unreachable)?)
}

/// `stand templates`: one row per template, its copies by node.
fn list(cluster: &Cluster, snap: &Snapshot, cat: &Catalog) -> u8 {
    if cluster.output == Output::Json {
        crate::outln!(
            "{}",
            json!({ "simulated": cluster.simulated(), "originals": cat.originals, "copies": cat.copies })
        );
        return exit::OK;
    }
    if cat.originals.is_empty() && cat.copies.is_empty() {
        crate::outln!("no templates on the cluster: convert the VMs to clone into templates (qm template <vmid>)");
        return exit::OK;
    }
    let mut t = render::table(&["template", "vmid", "on", "copies (node vmid storage)"]);
    for o in &cat.originals {
        let place = format!("{} {}{}", o.node, o.storages.join(","), if o.shared { " (shared)" } else { "" });
        let copies: Vec<String> = cat.copies_of(o.vmid).map(describe).collect();
        t.add_row(vec![o.name.clone(), o.vmid.to_string(), place, copies.join("\n")]);
    }
    for c in cat.orphans() {
        t.add_row(vec![c.name.clone(), "-".into(), format!("original {} gone", c.of), describe(c)]);
    }
    crate::outln!("{t}");
    let online = snap.nodes.iter().filter(|n| n.online).count();
    let missing = cat
        .originals
        .iter()
        .filter(|o| {
            let served = cat.copies_of(o.vmid).filter(|c| c.complete).count() + usize::from(!o.shared);
            served < online
        })
        .count();
    let stale = cat.copies.iter().filter(|c| !c.fresh && c.complete).count();
    if missing > 0 {
        crate::outln!(
            "{}",
            render::wrap(
                &format!(
                    "{} without a copy on every node: `stand templates sync` makes them (linked clones then run on each node's own storage, in parallel)",
                    render::count(missing, "template")
                ),
                0
            )
        );
    }
    if stale > 0 {
        crate::outln!("{} older than the original: `stand templates sync --refresh` replaces them", copies(stale));
    }
    exit::OK
}

/// One copy, as `pve2 9001 local-lvm`, with what is odd about it.
fn describe(c: &templates::TemplateCopy) -> String {
    let mut s = format!("{} {} {}", c.node, c.vmid, c.storages.join(","));
    if !c.complete {
        s.push_str(" (half-made)");
    } else if !c.fresh {
        s.push_str(" (outdated)");
    }
    if !c.linked.is_empty() {
        s.push_str(&format!(" [{} linked]", c.linked.len()));
    }
    s
}

/// Prints the plan (`--dry-run`) or runs it, then what it did and what it left.
async fn carry_out(cluster: &Cluster, operation: &str, plan: &TemplatesPlan, dry_run: bool) -> anyhow::Result<u8> {
    let json_head =
        json!({ "simulated": cluster.simulated(), "operation": operation, "present": plan.present, "kept": plan.kept });
    if dry_run || plan.graph.is_empty() {
        match cluster.output {
            Output::Text => {
                crate::out!("{}", render::action_lines(&plan.graph));
                print_kept(plan);
                let what = if plan.graph.is_empty() { "nothing to do" } else { "dry run: nothing changed" };
                crate::outln!("{what}{}", present(plan));
            }
            Output::Json => {
                let mut doc = json_head;
                doc["dry_run"] = json!(dry_run);
                doc["actions"] = json!(plan.graph);
                crate::outln!("{doc}");
            }
        }
        return Ok(exit::OK);
    }
    let started = Instant::now();
    let run = apply::run(cluster.pve.clone(), &plan.graph, &timing(cluster)).await;
    let failures = run.failures();
    let copied = run.done(&plan.graph, |a| matches!(a, crate::plan::Action::CopyTemplate { .. }));
    let removed = run.done(&plan.graph, |a| matches!(a, crate::plan::Action::DestroyVm { .. }));
    match cluster.output {
        Output::Text => {
            print_kept(plan);
            crate::outln!(
                "{} made, {removed} removed in {:.0} s{}",
                copies(copied),
                started.elapsed().as_secs_f64(),
                present(plan)
            );
            crate::out!("{}", render::failures(&failures));
        }
        Output::Json => {
            let mut doc = json_head;
            doc["copied"] = json!(copied);
            doc["removed"] = json!(removed);
            doc["failures"] = json!(failures);
            doc["converged"] = json!(failures.is_empty());
            crate::outln!("{doc}");
        }
    }
    Ok(exit::of_run(failures.is_empty(), copied + removed > 0))
}

fn print_kept(plan: &TemplatesPlan) {
    for k in &plan.kept {
        crate::outln!("{}", render::wrap(&format!("kept: {k}"), 2));
    }
}

fn present(plan: &TemplatesPlan) -> String {
    if plan.present == 0 { String::new() } else { format!("; {} already in place", copies(plan.present)) }
}

fn copies(n: usize) -> String {
    if n == 1 { "1 copy".into() } else { format!("{n} copies") }
}
