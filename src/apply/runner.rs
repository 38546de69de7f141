//! The one runner of action graphs: every step starts as soon as the steps it waits for
//! succeeded, within the per-node limit; a failure cancels only the steps that depend on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::act::{ActError, Done, perform};
use super::options::ApplyOptions;
use super::report::Failure;
use crate::plan::{Action, ActionGraph, Step};
use crate::pve::Pve;

/// What carries out one action (the runner knows the order, limits and outcomes only).
pub type Perform = Arc<dyn Fn(Action) -> BoxFuture<'static, Result<Done, ActError>> + Send + Sync>;

/// Told of each step as it ends (progress bars, a line per finished stand).
pub type OnEnd = Arc<dyn Fn(&Step, &Outcome) + Send + Sync>;

/// How one step ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It changed the cluster.
    Done,
    /// The object was already as wanted (a delete found it gone).
    AlreadyDone,
    /// It failed, with what to do.
    Failed(Failure),
    /// A step it waits for failed or was cancelled: it did not run.
    Cancelled,
    /// The run was interrupted before it started.
    Interrupted,
}

/// The steps' outcomes, by step id.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// One per step of the graph, in its order.
    pub outcomes: Vec<Outcome>,
}

impl RunReport {
    /// How many steps doing `what` changed the cluster.
    pub fn done(&self, graph: &ActionGraph, what: impl Fn(&Action) -> bool) -> usize {
        graph.steps().iter().zip(&self.outcomes).filter(|(s, o)| what(&s.action) && matches!(o, Outcome::Done)).count()
    }

    /// How many steps did not start because the run was interrupted.
    pub fn interrupted(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o, Outcome::Interrupted)).count()
    }

    /// The failures, in step order.
    pub fn failures(&self) -> Vec<Failure> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Failed(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Runs `graph` against `pve` with the actions of [`perform`].
pub async fn run(pve: Arc<dyn Pve>, graph: &ActionGraph, opts: &ApplyOptions) -> RunReport {
    run_observed(pve, graph, opts, None).await
}

/// [`run`], telling `on_end` of each step that ends (the progress of `stand serve`'s
/// operations).
pub async fn run_observed(
    pve: Arc<dyn Pve>,
    graph: &ActionGraph,
    opts: &ApplyOptions,
    on_end: Option<OnEnd>,
) -> RunReport {
    let o = opts.clone();
    let act: Perform = Arc::new(move |a| {
        let (pve, o) = (pve.clone(), o.clone());
        Box::pin(async move { perform(&*pve, &a, &o).await })
    });
    run_with(graph, opts.per_node, act, on_end, &opts.interrupt).await
}

/// Runs `graph`, carrying out each action with `act`, at most `per_node` node-bound steps
/// at once per node, telling `on_end` of each step that ends; after `interrupt`, no step
/// starts.
pub async fn run_with(
    graph: &ActionGraph,
    per_node: usize,
    act: Perform,
    on_end: Option<OnEnd>,
    interrupt: &super::Interrupt,
) -> RunReport {
    let gates: Vec<watch::Sender<Option<Ended>>> = graph.steps().iter().map(|_| watch::channel(None).0).collect();
    let mut limits: BTreeMap<String, Arc<Semaphore>> = BTreeMap::new();
    let mut set = JoinSet::new();
    for step in graph.steps() {
        let after: Vec<_> = step.after.iter().map(|a| gates[*a].subscribe()).collect();
        let follows: Vec<_> = step.follows.iter().map(|a| gates[*a].subscribe()).collect();
        let waits: Vec<_> = step.waits.iter().map(|a| gates[*a].subscribe()).collect();
        let done = gates[step.id].clone();
        let limit = step
            .action
            .node_limit()
            .map(|key| limits.entry(key).or_insert_with(|| Arc::new(Semaphore::new(per_node.max(1)))).clone());
        let (act, on_end, step, interrupt) = (act.clone(), on_end.clone(), step.clone(), interrupt.clone());
        set.spawn(async move {
            let id = step.id;
            let mut ready = true;
            for mut w in after {
                ready &= ended(&mut w).await == Ended::Ok;
            }
            for mut w in follows {
                ready &= ended(&mut w).await != Ended::Failed;
            }
            for mut w in waits {
                ended(&mut w).await;
            }
            let outcome = if !ready {
                Outcome::Cancelled
            } else {
                let _permit = match &limit {
                    Some(l) => l.clone().acquire_owned().await.ok(),
                    None => None,
                };
                match interrupt.is_stopped() {
                    true => Outcome::Interrupted,
                    false => match act(step.action.clone()).await {
                        Ok(Done::Changed) => Outcome::Done,
                        Ok(Done::AlreadyDone) => Outcome::AlreadyDone,
                        Err(e) => Outcome::Failed(Failure::new(step.action.object(), e.cause, &e.message, &e.hint)),
                    },
                }
            };
            if let Some(f) = &on_end {
                f(&step, &outcome);
            }
            done.send_replace(Some(match outcome {
                Outcome::Done | Outcome::AlreadyDone => Ended::Ok,
                Outcome::Failed(_) => Ended::Failed,
                Outcome::Cancelled | Outcome::Interrupted => Ended::Cancelled,
            }));
            (id, outcome)
        });
    }
    // Each step's task now holds the only sender of its gate: a task that dies wakes its
    // dependents, which then cancel instead of waiting for ever.
    drop(gates);
    let mut outcomes = vec![Outcome::Cancelled; graph.steps().len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((id, outcome)) = joined {
            outcomes[id] = outcome;
        }
    }
    RunReport { outcomes }
}

/// How a step ended, as the steps after it see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Ok,
    Failed,
    Cancelled,
}

/// Waits until a step ends (a step whose task died counts as failed).
async fn ended(rx: &mut watch::Receiver<Option<Ended>>) -> Ended {
    loop {
        if let Some(e) = *rx.borrow_and_update() {
            return e;
        }
        if rx.changed().await.is_err() {
            return Ended::Failed;
        }
    }
}
