//! Progress of an `up`: a bar per node on a terminal, else a line per finished stand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::apply::options::ApplyOptions;
use crate::apply::runner::Outcome;
use crate::plan::{ActionGraph, Plan, Step};

use super::context::lock;

/// Progress of an `up`: a bar per node on a terminal, else a line per finished stand.
#[derive(Clone)]
pub(super) struct Progress {
    bars: BTreeMap<String, indicatif::ProgressBar>,
    /// The id of each VM's last step → (node, student).
    last_steps: BTreeMap<usize, (String, String)>,
    stands: Arc<Mutex<BTreeMap<String, StandProgress>>>,
    lines: bool,
    since: tokio::time::Instant,
    /// After Ctrl-C, the stands not finished are not failures: nothing is said of them.
    interrupt: crate::apply::Interrupt,
}

impl Progress {
    pub(super) fn new(plan: &Plan, graph: &ActionGraph, opts: &ApplyOptions, since: tokio::time::Instant) -> Progress {
        let mut last: BTreeMap<u32, usize> = BTreeMap::new();
        for step in graph.steps() {
            if let Some(vmid) = step.action.vm() {
                last.insert(vmid, step.id);
            }
        }
        let mut last_steps = BTreeMap::new();
        let mut stands: BTreeMap<String, StandProgress> = BTreeMap::new();
        let mut per_node: BTreeMap<String, u64> = BTreeMap::new();
        for vm in &plan.vms {
            if let Some(id) = last.get(&vm.vmid) {
                last_steps.insert(*id, (vm.node.clone(), vm.user.clone()));
            }
            let s = stands.entry(vm.user.clone()).or_default();
            s.total += 1;
            s.left += 1;
            *per_node.entry(vm.node.clone()).or_default() += 1;
        }
        let bars = match opts.progress.then(indicatif::MultiProgress::new) {
            Some(mp) => per_node
                .into_iter()
                .map(|(n, total)| {
                    let bar = mp.add(indicatif::ProgressBar::new(total));
                    // The ETA only once a VM is done: before, there is no rate to tell it by.
                    let style = indicatif::ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} VMs ({elapsed}{msg})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_prefix(n.clone());
                    (n, bar)
                })
                .collect(),
            None => BTreeMap::new(),
        };
        Progress {
            bars,
            last_steps,
            stands: Arc::new(Mutex::new(stands)),
            lines: opts.stand_lines,
            since,
            interrupt: opts.interrupt.clone(),
        }
    }

    /// A VM is finished when its last step ends (after a failure it ends cancelled).
    pub(super) fn step_ended(&self, step: &Step, outcome: &Outcome) {
        let Some((node, user)) = self.last_steps.get(&step.id) else { return };
        if let Some(bar) = self.bars.get(node) {
            bar.inc(1);
            if bar.position() < bar.length().unwrap_or(0) {
                bar.set_message(format!(", eta {}", indicatif::HumanDuration(bar.eta())));
            } else {
                bar.set_message("");
            }
        }
        let finished = {
            let mut stands = lock(&self.stands);
            let Some(s) = stands.get_mut(user) else { return };
            s.left = s.left.saturating_sub(1);
            if matches!(outcome, Outcome::Failed(_) | Outcome::Cancelled) {
                s.failed.push(step.action.object().to_string());
            }
            (s.left == 0).then(|| (s.total, s.failed.clone()))
        };
        if let Some((total, failed)) = finished.filter(|_| self.lines) {
            let secs = self.since.elapsed().as_secs_f64();
            let vms = if total == 1 { "1 VM".to_string() } else { format!("{total} VMs") };
            if failed.is_empty() {
                crate::errln!("✓ {user}: {vms} on {node} ({secs:.1} s)");
            } else if self.interrupt.is_stopped() {
                // Interrupted, not failed: the summary says what is left to do.
            } else {
                crate::errln!("✗ {user}: {} of {vms} failed ({}) ({secs:.1} s)", failed.len(), failed.join(", "));
            }
        }
    }

    pub(super) fn finish(&self) {
        for b in self.bars.values() {
            b.finish();
        }
    }
}

/// A stand's VMs: how many, how many are not finished, which failed.
#[derive(Default)]
struct StandProgress {
    total: usize,
    left: usize,
    failed: Vec<String>,
}
