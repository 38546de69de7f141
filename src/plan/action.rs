//! What a command will do to the cluster, as data: a graph of [`Action`]s with the
//! dependencies between them. `stand down --dry-run` and `stand plan --prune` print it;
//! `apply::run` executes any graph.

use std::fmt;

use serde::Serialize;

/// One change to the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Stop a VM (when it runs) and delete it with its disks.
    DestroyVm {
        /// Node.
        node: String,
        /// VMID.
        vmid: u32,
        /// Name.
        name: String,
        /// Running when the cluster was read.
        running: bool,
    },
    /// Stage a bridge's removal (the node's network reload applies it).
    DeleteBridge {
        /// Node.
        node: String,
        /// Interface.
        iface: String,
    },
    /// Apply a node's staged network changes (`ifreload -a`), once per node. Refused when
    /// the node has pending changes `stand` did not make (`foreign`).
    ReloadNetwork {
        /// Node.
        node: String,
        /// Someone else's pending interfaces on the node.
        foreign: Vec<String>,
    },
    /// Delete a student's pool (empty once its VMs are gone).
    DeletePool {
        /// Pool id.
        poolid: String,
    },
    /// Delete a user no other lab has.
    DeleteUser {
        /// `name@realm`.
        userid: String,
    },
    /// Keep a user other labs still have: rewrite their marker without this lab and take
    /// back this lab's `SDN.Use` grants.
    ReleaseUser {
        /// `name@realm`.
        userid: String,
        /// The user's comment afterwards.
        comment: String,
        /// ACL paths of this lab's bridges to take back.
        sdn_acls: Vec<String>,
    },
    /// Delete the lab's group.
    DeleteGroup {
        /// Group id.
        groupid: String,
    },
}

impl Action {
    /// The object it acts on, as reports name it (`vm 3001`, `bridge pve1/vmbr1000`).
    pub fn object(&self) -> String {
        match self {
            Action::DestroyVm { vmid, .. } => format!("vm {vmid}"),
            Action::DeleteBridge { node, iface } => format!("bridge {node}/{iface}"),
            Action::ReloadNetwork { node, .. } => format!("network {node}"),
            Action::DeletePool { poolid } => format!("pool {poolid}"),
            Action::DeleteUser { userid } | Action::ReleaseUser { userid, .. } => format!("user {userid}"),
            Action::DeleteGroup { groupid } => format!("group {groupid}"),
        }
    }

    /// The node whose limit of operations at once it counts against, if any.
    pub fn node_limit(&self) -> Option<&str> {
        match self {
            Action::DestroyVm { node, .. } => Some(node),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::DestroyVm { node, vmid, name, .. } => write!(f, "- vm     {vmid} {name} on {node}"),
            Action::DeleteBridge { node, iface } => write!(f, "- bridge {node}/{iface}"),
            Action::ReloadNetwork { node, foreign } if foreign.is_empty() => {
                write!(f, "~ network {node}: apply (one reload)")
            }
            Action::ReloadNetwork { node, foreign } => {
                write!(f, "! network {node}: not applied, pending changes stand did not make ({})", foreign.join(", "))
            }
            Action::DeletePool { poolid } => write!(f, "- pool   {poolid}"),
            Action::DeleteUser { userid } => write!(f, "- user   {userid}"),
            Action::ReleaseUser { userid, .. } => write!(f, "~ user   {userid} (kept: other labs have it)"),
            Action::DeleteGroup { groupid } => write!(f, "- group  {groupid}"),
        }
    }
}

/// An action and the steps it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Its index in the graph.
    pub id: usize,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
    /// Steps that must succeed first: a failure or cancellation there cancels this one.
    pub after: Vec<usize>,
    /// Steps that must end first: a failure there cancels this one, a cancellation does not
    /// (a node's reload applies the removals that were staged, unless staging one failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<usize>,
}

/// Actions in an order where every step comes after the steps it waits for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ActionGraph {
    steps: Vec<Step>,
}

impl ActionGraph {
    /// Adds `action` after `after` (earlier steps that must succeed) and returns its id.
    pub fn add(&mut self, action: Action, after: Vec<usize>) -> usize {
        self.add_following(action, after, Vec::new())
    }

    /// Adds `action` after `after` and following `follows` (see [`Step::follows`]).
    pub fn add_following(&mut self, action: Action, after: Vec<usize>, follows: Vec<usize>) -> usize {
        let id = self.steps.len();
        let earlier = |v: Vec<usize>| {
            debug_assert!(v.iter().all(|a| *a < id), "a step waits only for earlier ones");
            let mut v: Vec<usize> = v.into_iter().filter(|a| *a < id).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (after, follows) = (earlier(after), earlier(follows));
        self.steps.push(Step { id, action, after, follows });
        id
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// No step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many steps do `what`.
    pub fn count(&self, what: impl Fn(&Action) -> bool) -> usize {
        self.steps.iter().filter(|s| what(&s.action)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_wait_for_earlier_ones_and_serialize_flat() {
        let mut g = ActionGraph::default();
        let vm =
            g.add(Action::DestroyVm { node: "pve1".into(), vmid: 3000, name: "gw-s1".into(), running: true }, vec![]);
        let br = g.add(Action::DeleteBridge { node: "pve1".into(), iface: "vmbr1000".into() }, vec![vm, vm]);
        g.add(Action::ReloadNetwork { node: "pve1".into(), foreign: vec![] }, vec![br]);
        assert_eq!(g.steps()[1].after, [0], "duplicates dropped");
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json[1]["action"], "delete_bridge");
        assert_eq!(json[1]["iface"], "vmbr1000");
        assert_eq!(json[2]["after"], serde_json::json!([1]));
        assert_eq!(g.steps()[0].action.to_string(), "- vm     3000 gw-s1 on pve1");
        assert_eq!(g.count(|a| matches!(a, Action::DeleteBridge { .. })), 1);
    }
}
