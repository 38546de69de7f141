//! Where stands go: `place`, `place_balanced` by memory, and the check that what will run
//! fits each node's RAM × overcommit.

use super::{PlanError, Planner, invalid};
use crate::plan::model::Span;

impl Planner {
    /// `--overcommit`: wins over the lab's setting.
    pub fn set_overcommit(&mut self, ratio: Option<f64>) {
        self.overcommit_override = ratio;
    }

    pub(super) fn overcommit(&self) -> f64 {
        self.overcommit_override.unwrap_or(self.settings.overcommit)
    }

    /// Memory (bytes) running guests may take on `node`: its RAM × the overcommit ratio.
    fn capacity(&self, node: &str) -> u64 {
        let ram = self.snap.node(node).map(|n| n.maxmem).unwrap_or(0);
        (ram as f64 * self.overcommit()) as u64
    }

    /// Memory (bytes) still free on `node` for balancing: capacity less the running guests
    /// of others and every VM this plan puts there (started or not, so stands spread).
    fn free_memory(&self, node: &str) -> u64 {
        self.capacity(node)
            .saturating_sub(self.snap.running_memory(node, self.lab()))
            .saturating_sub(self.planned_mem.get(node).copied().unwrap_or(0))
    }

    /// Checks that what will run fits each node (running guests of others plus the VMs
    /// this plan runs, against RAM × overcommit; stopped VMs never count) and warns of a
    /// node above 90 %.
    pub(super) fn check_memory(&self) -> Result<Vec<String>, (PlanError, Option<Span>)> {
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        let mut warnings = Vec::new();
        let mut fit = 0;
        let mut over = None;
        for n in &self.snap.nodes {
            let cap = self.capacity(&n.name);
            let others = self.snap.running_memory(&n.name, self.lab());
            let ours = self.planned_running.get(&n.name).copied().unwrap_or(0);
            // Stands of this node, smallest first: how many fit what is left.
            let mut stands: Vec<u64> = self
                .users
                .iter()
                .filter(|u| u.node.as_deref() == Some(n.name.as_str()))
                .map(|u| self.stand_running.get(&u.userid).copied().unwrap_or(0))
                .collect();
            stands.sort_unstable();
            let mut left = cap.saturating_sub(others);
            for s in stands {
                if s <= left {
                    left -= s;
                    fit += 1;
                }
            }
            let used = others + ours;
            if used > cap {
                over.get_or_insert((n.name.clone(), gib(used), gib(cap)));
            } else if ours > 0 && cap > 0 && used * 10 > cap * 9 {
                warnings.push(format!(
                    "{}: the guests running after this plan take {:.0} % of its memory ({:.1} of {:.1} GiB, RAM × overcommit {})",
                    n.name,
                    used as f64 * 100.0 / cap as f64,
                    gib(used),
                    gib(cap),
                    self.overcommit()
                ));
            }
        }
        match over {
            Some((node, need_gib, cap_gib)) => {
                let span = self.first_vm_over(&node);
                Err((
                    PlanError::NoMemory {
                        node,
                        need_gib,
                        cap_gib,
                        overcommit: self.overcommit(),
                        fit,
                        stands: self.users.len(),
                    },
                    span,
                ))
            }
            None => Ok(warnings),
        }
    }

    /// The `clone` call of the first VM (in script order) that takes `node` past its memory.
    fn first_vm_over(&self, node: &str) -> Option<Span> {
        let mut used = self.snap.running_memory(node, self.lab());
        let cap = self.capacity(node);
        for vm in self.vms.iter().filter(|v| v.node == node) {
            if vm.start || self.snap.vm(vm.vmid).is_some_and(|e| e.status == "running") {
                used += vm.memory_mib << 20;
            }
            if used > cap {
                return vm.span.clone();
            }
        }
        None
    }

    /// `place_balanced(user[, #{nodes}])`: the online node with the most free memory after
    /// what is planned; fewer stands, then the name, break ties. A deployed stand stays put.
    pub fn place_balanced(&mut self, userid: &str, allowed: Option<&[String]>) -> Result<String, PlanError> {
        let i = self.user_index(userid)?;
        if let Some(n) = &self.users[i].node {
            return Ok(n.clone());
        }
        if let Some(allowed) = allowed {
            for n in allowed {
                if self.snap.node(n).is_none() {
                    return Err(self.unknown_node(n));
                }
            }
        }
        let node = match self.existing_stand_node(userid) {
            Some(n) => n,
            None => self
                .snap
                .nodes
                .iter()
                .filter(|n| n.online && allowed.is_none_or(|a| a.contains(&n.name)))
                .max_by(|a, b| {
                    let key =
                        |n: &str| (self.free_memory(n), std::cmp::Reverse(self.stands_on.get(n).copied().unwrap_or(0)));
                    key(&a.name).cmp(&key(&b.name)).then_with(|| b.name.cmp(&a.name))
                })
                .map(|n| n.name.clone())
                .ok_or_else(|| invalid("no online node to place the stand on: check `stand doctor`"))?,
        };
        self.pin(i, node.clone());
        Ok(node)
    }

    /// The online node with the most free memory for one VM on its own (`spread: true`).
    pub(super) fn place_alone(&self) -> Result<String, PlanError> {
        self.snap
            .nodes
            .iter()
            .filter(|n| n.online)
            .max_by(|a, b| self.free_memory(&a.name).cmp(&self.free_memory(&b.name)).then_with(|| b.name.cmp(&a.name)))
            .map(|n| n.name.clone())
            .ok_or_else(|| invalid("no online node to place the VM on: check `stand doctor`"))
    }

    fn pin(&mut self, i: usize, node: String) {
        *self.stands_on.entry(node.clone()).or_default() += 1;
        self.users[i].node = Some(node);
    }

    pub(super) fn unknown_node(&self, n: &str) -> PlanError {
        let names: Vec<&str> = self.snap.nodes.iter().map(|n| n.name.as_str()).collect();
        PlanError::Unknown { what: "node", name: n.to_string(), hint: format!(" (nodes: {})", names.join(", ")) }
    }

    /// `place(user, node)`: pins the stand to a node.
    pub fn place(&mut self, userid: &str, node: &str) -> Result<String, PlanError> {
        let i = self.user_index(userid)?;
        let n = self.snap.node(node).ok_or_else(|| self.unknown_node(node))?;
        if !n.online {
            return Err(invalid(format!("node '{node}' is offline: place the stand elsewhere or bring the node back")));
        }
        match &self.users[i].node {
            Some(existing) if existing != node => Err(invalid(format!(
                "the stand of {userid} is already on {existing}; call place() before alias() and clone()"
            ))),
            Some(_) => Ok(node.to_string()),
            None => {
                self.pin(i, node.to_string());
                Ok(node.to_string())
            }
        }
    }
}
