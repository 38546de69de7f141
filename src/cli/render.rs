//! Text output: the plan's changes, the apply summary, failures.

use std::collections::BTreeMap;
use std::fmt::Write;

use std::io::IsTerminal;

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};

use crate::apply::{ApplyReport, DestroyReport, Doomed, Failure};
use crate::plan::{ActionGraph, ChangeKind, Diff, Plan};

/// The width output must fit: the terminal's; when stdout is not a terminal, `COLUMNS`, else
/// the terminal stderr shows (`stand status | head` in a terminal), else 100.
pub fn width() -> usize {
    let term = |t: console::Term| t.size_checked().map(|(_, cols)| usize::from(cols).max(20));
    if std::io::stdout().is_terminal()
        && let Some(w) = term(console::Term::stdout())
    {
        return w;
    }
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c >= 20) {
        return c;
    }
    if std::io::stderr().is_terminal()
        && let Some(w) = term(console::Term::stderr())
    {
        return w;
    }
    100
}

/// A table in the house style, as wide as [`width`] at most; long cells wrap.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(width()).unwrap_or(u16::MAX))
        .set_header(header.to_vec());
    t
}

/// A message for a person at a terminal (an error, a warning): wrapped to the terminal's
/// width there, as it is into a pipe or a log (one line to grep).
pub fn for_terminal(text: &str) -> String {
    match std::io::stderr().is_terminal() {
        true => text.lines().map(|l| wrap(l, 2)).collect::<Vec<_>>().join("\n"),
        false => text.to_string(),
    }
}

/// `first` then `rest` wrapped to [`width`], continuation lines indented by `indent`.
pub fn wrap(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let opts = textwrap::Options::new(width()).subsequent_indent(&pad).break_words(true);
    textwrap::wrap(text, opts).join("\n")
}

fn symbol(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Create => "+",
        ChangeKind::Update => "~",
        ChangeKind::Keep => "=",
        ChangeKind::Delete => "-",
    }
}

/// One line: `12 to create, 3 to update, 48 unchanged`.
pub fn diff_counts(diff: &Diff) -> String {
    let mut parts = vec![
        format!("{} to create", diff.count(ChangeKind::Create)),
        format!("{} to update", diff.count(ChangeKind::Update)),
        format!("{} unchanged", diff.count(ChangeKind::Keep)),
    ];
    let stale = diff.count(ChangeKind::Delete);
    if stale > 0 {
        parts.push(format!("{stale} of this lab no longer in the script (kept unless --prune)"));
    }
    parts.join(", ")
}

/// The changes, one per line (`+ vm 3000 gw-s1  linked clone of 9000 on pve1`); unchanged
/// objects only when `all`.
pub fn diff_lines(diff: &Diff, all: bool) -> String {
    let mut out = String::new();
    for c in diff.changes.iter().filter(|c| all || c.kind != ChangeKind::Keep) {
        let line = wrap(&format!("{} {:<6} {:<28} {}", symbol(c.kind), c.object, c.id, c.detail), 9);
        // Colored on a terminal only (console honours NO_COLOR and CLICOLOR).
        let styled = match c.kind {
            ChangeKind::Create => console::style(line).green(),
            ChangeKind::Update => console::style(line).yellow(),
            ChangeKind::Delete => console::style(line).red(),
            ChangeKind::Keep => console::style(line).dim(),
        };
        let _ = writeln!(out, "{styled}");
    }
    out
}

/// The actions of a graph, one per line (`- vm 3001 web-s1 on pve1`), in red on a terminal.
pub fn action_lines(graph: &ActionGraph) -> String {
    let mut out = String::new();
    for step in graph.steps() {
        let _ = writeln!(out, "{}", console::style(wrap(&step.action.to_string(), 9)).red());
    }
    out
}

/// The script's course operations (`reset`, `power`, `snapshot`, `uplinks`), one line per
/// VM, as `stand up` runs them after the deployment.
pub fn course_lines(plan: &crate::plan::Plan, snap: &crate::plan::Snapshot) -> String {
    let mut out = String::new();
    for (_, action) in crate::apply::course_actions(plan, snap) {
        let _ = writeln!(out, "{}", console::style(wrap(&action.to_string(), 9)).yellow());
    }
    out
}

/// What a graph does, counted by kind: `48 clone_vm, 48 configure_vm, 3 reload_network, ...`.
pub fn action_counts(graph: &ActionGraph) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for step in graph.steps() {
        let kind = serde_json::to_value(&step.action)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_string))
            .unwrap_or_default();
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{} actions: {} (`--output json` lists them with their order)", graph.steps().len(), parts.join(", "))
}

/// Per node: stands, VMs, bridges of the plan.
pub fn spread(plan: &Plan) -> Table {
    let mut per_node: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for u in &plan.users {
        per_node.entry(u.node.as_deref().unwrap_or("-")).or_default().0 += 1;
    }
    for v in &plan.vms {
        per_node.entry(&v.node).or_default().1 += 1;
    }
    for b in &plan.bridges {
        per_node.entry(&b.node).or_default().2 += 1;
    }
    let mut t = table(&["node", "stands", "VMs", "bridges"]);
    for (node, (stands, vms, bridges)) in &per_node {
        t.add_row(vec![node.to_string(), stands.to_string(), vms.to_string(), bridges.to_string()]);
    }
    t.add_row(vec![
        "total".to_string(),
        plan.users.len().to_string(),
        plan.vms.len().to_string(),
        plan.bridges.len().to_string(),
    ]);
    t
}

/// `1 VM`, `48 VMs`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// What a removal did: `3 VMs, 0 bridges, 1 VNet, 1 pool, 1 user` (VNets only when any).
pub fn removed_counts(r: &DestroyReport) -> String {
    let vnets = if r.vnets > 0 { format!(", {}", count(r.vnets, "VNet")) } else { String::new() };
    format!(
        "{}, {}{vnets}, {}, {}",
        count(r.vms, "VM"),
        count(r.bridges, "bridge"),
        count(r.pools, "pool"),
        count(r.users, "user")
    )
}

/// What a removal will do: `4 VMs (2 running), 2 bridges, 1 pool, 1 user`, naming only what
/// it has.
pub fn doomed_counts(d: &Doomed) -> String {
    let running = d.vms.iter().filter(|v| v.running).count();
    let released = d.users.iter().filter(|u| !u.other_labs.is_empty()).count();
    let mut parts = Vec::new();
    match running {
        0 => parts.push(count(d.vms.len(), "VM")),
        r => parts.push(format!("{} ({r} running)", count(d.vms.len(), "VM"))),
    }
    for (n, what) in [(d.bridges.len(), "bridge"), (d.vnets.len(), "VNet"), (d.pools.len(), "pool")] {
        if n > 0 {
            parts.push(count(n, what));
        }
    }
    if d.users.len() > released {
        parts.push(count(d.users.len() - released, "user"));
    }
    if released > 0 {
        parts.push(format!("{} kept for other labs", count(released, "user")));
    }
    if !d.groups.is_empty() {
        parts.push(count(d.groups.len(), "group"));
    }
    parts.join(", ")
}

/// What an apply did, in one line.
pub fn apply_counts(r: &ApplyReport) -> String {
    let mut s = format!(
        "{} cloned, {} updated, {} started, {}; {}, {}, {}, {}, {} in {:.1} s",
        count(r.vms_created, "VM"),
        r.vms_updated,
        r.vms_started,
        count(r.snapshots_taken, "snapshot"),
        count(r.users_created, "user"),
        count(r.pools_created, "pool"),
        count(r.acls_set, "ACL"),
        count(r.bridges_created, "bridge"),
        count(r.networks_applied, "network reload"),
        r.seconds
    );
    if r.vnets_created + r.sdn_applied > 0 {
        let times = if r.sdn_applied == 1 { "once".to_string() } else { format!("{} times", r.sdn_applied) };
        let _ = write!(s, "\n{} created, SDN applied {times}", count(r.vnets_created, "VNet"));
    }
    if r.course_actions > 0 {
        let _ = write!(s, "\n{} by the script's reset, power and uplinks calls", count(r.course_actions, "VM change"));
    }
    for (old, new) in &r.replanned_vmids {
        let _ = write!(s, "\nVMID {old} was taken meanwhile: used {new}");
    }
    for b in &r.renamed_bridges {
        let _ = write!(s, "\nbridge taken meanwhile: {b}");
    }
    s.lines().map(|l| wrap(l, 2)).collect::<Vec<_>>().join("\n")
}

/// Failures with what to do.
pub fn failures(list: &[Failure]) -> String {
    let mut out = String::new();
    for f in list {
        let _ = writeln!(
            out,
            "{}\n{}",
            wrap(&format!("✗ {}: {}", f.object, f.message), 2),
            wrap(&format!("    → {}", f.hint), 6)
        );
    }
    out
}
