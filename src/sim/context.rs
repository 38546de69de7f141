//! What a handler works with: [`Ctx`] (the state, who asks, the request, the time, the
//! dice) and [`TaskSpec`], how a worker task it starts runs and ends.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;

use super::access::Identity;
use super::core::SimOptions;
use super::faults::Dice;
use super::model::{FaultSpec, SimStats};
use super::state::{Effect, SimState, Task};
use crate::pve::{Params, Upid};

/// When a task runs, how it ends and what it does.
pub(super) struct TaskSpec {
    /// Sim ms it starts (not before now).
    pub start: u64,
    /// How long it runs, sim ms.
    pub duration: u64,
    /// `OK` or the error text.
    pub exit: String,
    /// What happens at the end.
    pub effect: Effect,
    /// Log lines before the end line.
    pub log: Vec<String>,
}

impl TaskSpec {
    /// A task from now for `duration` with `exit` and `effect`, no log.
    pub fn now(now: u64, duration: u64, exit: String, effect: Effect) -> Self {
        TaskSpec { start: now, duration, exit, effect, log: Vec::new() }
    }
}

/// What a handler gets: the state, who asks, path variables, parameters, the time.
pub(super) struct Ctx<'a> {
    pub st: &'a mut SimState,
    pub who: Identity,
    pub vars: BTreeMap<String, String>,
    pub params: &'a Params,
    pub now: u64,
    pub opts: &'a SimOptions,
    /// The faults in force now (see [`Sim::set_faults`]).
    pub faults: FaultSpec,
    /// Draws about this request (see [`Dice`]).
    pub dice: &'a Dice,
    /// The request, as the dice key it.
    pub key: String,
    /// Draws whose order does not change an outcome (process ids, `vmgenid`).
    pub rng: &'a mut StdRng,
    pub stats: &'a mut SimStats,
}

impl Ctx<'_> {
    /// A path variable (the router guarantees it exists).
    pub fn var(&self, k: &str) -> &str {
        self.vars.get(k).map(String::as_str).unwrap_or_default()
    }

    /// A parameter.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }

    /// A boolean parameter (schema-checked already).
    pub fn flag(&self, k: &str) -> Option<bool> {
        self.param(k).map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }

    /// The `vmid` path variable.
    pub fn vmid(&self) -> u32 {
        self.var("vmid").parse().unwrap_or(0)
    }

    /// A model duration scaled to sim ms.
    pub fn scaled(&self, model_ms: u64) -> u64 {
        (model_ms as f64 * self.opts.time_scale).round() as u64
    }

    /// Starts a worker task that runs from `start` (sim ms) for `duration`, ending with `exit`.
    pub fn start_task(&mut self, node: &str, kind: &str, id: &str, spec: TaskSpec) -> String {
        let TaskSpec { start, duration, exit, effect, log } = spec;
        self.st.next_pid += 1 + self.rng.gen_range(0..7);
        let upid = Upid {
            node: node.to_string(),
            pid: self.st.next_pid,
            pstart: 0x0100_0000 + self.now / 10,
            starttime: self.st.unix(self.now),
            task_type: kind.to_string(),
            id: id.to_string(),
            user: self.who.auth_id(),
        }
        .to_string();
        self.st.tasks.push(Task {
            upid: upid.clone(),
            node: node.to_string(),
            kind: kind.to_string(),
            id: id.to_string(),
            user: self.who.auth_id(),
            start_ms: self.now,
            end_ms: start.max(self.now) + duration,
            exit,
            log,
            effect,
            done: false,
        });
        upid
    }
}
