//! What a command will do to the cluster, as data: a graph of [`Action`]s with the
//! dependencies between them. `stand up` deploys by one, `stand down --dry-run` and
//! `stand plan --prune` print one; `apply::run` executes any graph.

use std::fmt;

use super::object::ObjectRef;
use serde::Serialize;

use super::model::VmPlan;
use crate::pve::Secret;
use crate::roster::FullName;

/// One change to the cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create the lab's group of students.
    CreateGroup {
        /// Group id.
        groupid: String,
        /// Comment (marker).
        comment: String,
    },
    /// Create a student's user (with their password, in the group once it exists).
    CreateUser {
        /// `name@realm`.
        userid: String,
        /// Comment (marker).
        comment: String,
        /// The lab's group.
        group: Option<String>,
        /// Account expiry, Unix seconds (0 = never).
        expire: u64,
        /// Their name, from the roster.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<FullName>,
        /// The new password (never shown or serialized).
        #[serde(skip)]
        password: Option<Secret>,
    },
    /// Bring an existing user up to the plan: the lab in their marker, the group, a reset
    /// password.
    UpdateUser {
        /// `name@realm`.
        userid: String,
        /// The new comment, when it changes.
        comment: Option<String>,
        /// The group to join (once it exists).
        join_group: Option<String>,
        /// A new account expiry (Unix seconds, 0 = never).
        expire: Option<u64>,
        /// Their name, when the roster's differs from PVE's.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<FullName>,
        /// A reset password (never shown or serialized).
        #[serde(skip)]
        password: Option<Secret>,
    },
    /// Write the lab's group comment anew (its marker: the lab's expiry changed).
    MarkGroup {
        /// Group id.
        groupid: String,
        /// Comment (marker).
        comment: String,
    },
    /// Create a student's pool.
    CreatePool {
        /// Pool id.
        poolid: String,
        /// Comment (marker).
        comment: String,
    },
    /// Give `ugid` role `role` on `path`.
    SetAcl {
        /// ACL path.
        path: String,
        /// Role.
        role: String,
        /// User.
        ugid: String,
    },
    /// Stage a bridge (under the next free name if someone took this one meanwhile).
    CreateBridge {
        /// Node.
        node: String,
        /// Interface.
        iface: String,
        /// VLAN aware.
        vlan_aware: bool,
        /// Comment (marker).
        comment: String,
    },
    /// Stage a new comment on an existing bridge (another lab ensures a shared bridge).
    MarkBridge {
        /// Node.
        node: String,
        /// Interface.
        iface: String,
        /// Comment (marker).
        comment: String,
    },
    /// Give a private bridge's owner `SDN.Use` on it, under the name it was made.
    GrantBridge {
        /// Node.
        node: String,
        /// Interface as planned.
        iface: String,
        /// The owner.
        user: String,
    },
    /// Clone a VM (or, for a VM planned as existing, make sure its earlier clone ended and
    /// clone again if it failed).
    CloneVm {
        /// The VM.
        vm: Box<VmPlan>,
    },
    /// Write a VM's NICs and settings: all of them after a clone, else `only` these keys.
    ConfigureVm {
        /// The VM.
        vm: Box<VmPlan>,
        /// The keys to update of an existing VM.
        only: Option<Vec<String>>,
    },
    /// Start a VM (one cloned by this run, or one planned as stopped that should run).
    StartVm {
        /// The VM.
        vm: Box<VmPlan>,
    },
    /// Copy template `of` to `node` (`stand templates sync`): a full clone on the
    /// original's node onto `via`, a migrate to `node` onto `storage` when the node
    /// differs, the conversion to a template; a copy that fails half-way is removed.
    CopyTemplate {
        /// VMID of the original.
        of: u32,
        /// Its name (the copy's too).
        name: String,
        /// The original's node, where the clone runs.
        source_node: String,
        /// The node the copy is for.
        node: String,
        /// The copy's VMID.
        vmid: u32,
        /// Storage of the copy on `node`.
        storage: String,
        /// Storage of the clone on the original's node (`storage` when it is there too).
        via: String,
        /// The copy's marker (`stand: template-of=.. digest=..`).
        marker: String,
    },
    /// Create a VXLAN zone with the nodes' cluster addresses as peers (pending until applied).
    CreateZone {
        /// Zone id.
        zone: String,
    },
    /// Create a student's VNet (pending until applied).
    CreateVnet {
        /// Zone.
        zone: String,
        /// VNet id.
        vnet: String,
        /// VXLAN network identifier.
        tag: u32,
        /// VLAN aware.
        vlan_aware: bool,
        /// Marker, in the VNet's `alias`.
        marker: String,
    },
    /// Delete a VNet (pending until applied).
    DeleteVnet {
        /// VNet id.
        vnet: String,
    },
    /// Apply the pending SDN configuration (`PUT /cluster/sdn`), once per run. Refused when
    /// SDN changes `stand` did not make are pending (`foreign`).
    ApplySdn {
        /// Someone else's pending SDN changes.
        foreign: Vec<String>,
    },
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
        /// The account's expiry afterwards (the last day of the labs it keeps; 0 = never).
        expire: u64,
        /// ACL paths of this lab's bridges to take back.
        sdn_acls: Vec<String>,
    },
    /// Delete the lab's group.
    DeleteGroup {
        /// Group id.
        groupid: String,
    },
    /// Take snapshot `name` of a VM (disks and config, no RAM).
    SnapshotVm {
        /// The VM.
        vm: VmRef,
        /// Snapshot name.
        name: String,
        /// Its description.
        description: String,
    },
    /// Roll a VM back to snapshot `name` (PVE stops a running VM first); with `start`, PVE
    /// starts it again at the end of the same task.
    RollbackVm {
        /// The VM.
        vm: VmRef,
        /// Snapshot name.
        name: String,
        /// Running afterwards (it ran before).
        start: bool,
    },
    /// Delete snapshot `name` of a VM.
    DeleteSnapshot {
        /// The VM.
        vm: VmRef,
        /// Snapshot name.
        name: String,
    },
    /// Power a VM on, off, down through its guest, or reboot it.
    PowerVm {
        /// The VM.
        vm: VmRef,
        /// What to do.
        op: PowerOp,
    },
    /// Disconnect NICs on shared bridges (`link_down=1`), naming them in the VM's marker
    /// (`cut=net0`) in the same config write, so that [`Action::RestoreUplinks`] knows them.
    CutUplinks {
        /// The VM.
        vm: VmRef,
        /// The NICs (`net0`, ...).
        nics: Vec<String>,
    },
    /// Reconnect exactly the NICs the marker names as cut, and drop the list.
    RestoreUplinks {
        /// The VM.
        vm: VmRef,
        /// The NICs (`net0`, ...).
        nics: Vec<String>,
    },
}

/// A VM an action concerns, as the cluster has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VmRef {
    /// Node.
    pub node: String,
    /// VMID.
    pub vmid: u32,
    /// Name.
    pub name: String,
}

/// What [`Action::PowerVm`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PowerOp {
    /// Start (nothing to do when it runs).
    Start,
    /// Stop at once (pull the plug).
    Stop,
    /// Ask the guest to power off (ACPI); after `timeout` seconds, stop it.
    Shutdown {
        /// Seconds the guest gets.
        timeout: u64,
    },
    /// Reboot a running VM (a stopped one is started).
    Reboot,
}

impl fmt::Display for PowerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerOp::Start => f.write_str("start"),
            PowerOp::Stop => f.write_str("stop"),
            PowerOp::Shutdown { timeout } => write!(f, "shutdown (stop after {timeout} s)"),
            PowerOp::Reboot => f.write_str("reboot"),
        }
    }
}

impl Action {
    /// The object it acts on.
    pub fn object(&self) -> ObjectRef {
        let bridge = |node: &str, iface: &str| ObjectRef::Bridge { node: node.into(), iface: iface.into() };
        let user = |userid: &str| ObjectRef::User { userid: userid.into() };
        match self {
            Action::CreateGroup { groupid, .. }
            | Action::MarkGroup { groupid, .. }
            | Action::DeleteGroup { groupid } => ObjectRef::Group { groupid: groupid.clone() },
            Action::CreateUser { userid, .. }
            | Action::UpdateUser { userid, .. }
            | Action::DeleteUser { userid }
            | Action::ReleaseUser { userid, .. } => user(userid),
            Action::CreatePool { poolid, .. } | Action::DeletePool { poolid } => {
                ObjectRef::Pool { poolid: poolid.clone() }
            }
            Action::SetAcl { path, ugid, .. } => ObjectRef::Acl { path: path.clone(), ugid: ugid.clone() },
            Action::CreateBridge { node, iface, .. }
            | Action::MarkBridge { node, iface, .. }
            | Action::DeleteBridge { node, iface } => bridge(node, iface),
            Action::GrantBridge { iface, user, .. } => {
                ObjectRef::Acl { path: format!("/sdn/zones/localnetwork/{iface}"), ugid: user.clone() }
            }
            Action::CloneVm { vm } | Action::ConfigureVm { vm, .. } | Action::StartVm { vm } => {
                ObjectRef::Vm { vmid: vm.vmid, name: Some(vm.name.clone()) }
            }
            Action::DestroyVm { vmid, .. } => ObjectRef::Vm { vmid: *vmid, name: None },
            Action::CopyTemplate { vmid, name, .. } => ObjectRef::Vm { vmid: *vmid, name: Some(name.clone()) },
            Action::SnapshotVm { vm, .. }
            | Action::RollbackVm { vm, .. }
            | Action::DeleteSnapshot { vm, .. }
            | Action::PowerVm { vm, .. }
            | Action::CutUplinks { vm, .. }
            | Action::RestoreUplinks { vm, .. } => ObjectRef::Vm { vmid: vm.vmid, name: Some(vm.name.clone()) },
            Action::ReloadNetwork { node, .. } => ObjectRef::Network { node: node.clone() },
            Action::CreateZone { zone } => ObjectRef::Zone { zone: zone.clone() },
            Action::CreateVnet { vnet, .. } | Action::DeleteVnet { vnet } => ObjectRef::Vnet { vnet: vnet.clone() },
            Action::ApplySdn { .. } => ObjectRef::Sdn,
        }
    }

    /// The per-node limit it counts against, if any: clones and removals of VMs share one
    /// (`node/pve1`), starts have their own (`start/pve1`), so a VM cloned early starts
    /// while later clones still queue, and so do snapshots (`snapshot/pve1`); a config
    /// write is quick and unlimited.
    pub fn node_limit(&self) -> Option<String> {
        match self {
            Action::DestroyVm { node, .. } => Some(format!("node/{node}")),
            Action::CloneVm { vm } => Some(format!("node/{}", vm.node)),
            // The clone runs on the original's node, against its storage.
            Action::CopyTemplate { source_node, .. } => Some(format!("node/{source_node}")),
            Action::StartVm { vm } => Some(format!("start/{}", vm.node)),
            // Snapshot work on a node has its own limit, so a baseline never delays clones;
            // a rollback that starts the VM is a start (staggered).
            Action::RollbackVm { vm, start: true, .. } => Some(format!("start/{}", vm.node)),
            Action::SnapshotVm { vm, .. } | Action::RollbackVm { vm, .. } | Action::DeleteSnapshot { vm, .. } => {
                Some(format!("snapshot/{}", vm.node))
            }
            // Starts are staggered: a class starting at once must not overload a node.
            Action::PowerVm { vm, op: PowerOp::Start | PowerOp::Reboot } => Some(format!("start/{}", vm.node)),
            _ => None,
        }
    }

    /// The VM a course action (snapshot, rollback, power, uplinks) concerns, to change.
    pub fn vm_ref_mut(&mut self) -> Option<&mut VmRef> {
        match self {
            Action::SnapshotVm { vm, .. }
            | Action::RollbackVm { vm, .. }
            | Action::DeleteSnapshot { vm, .. }
            | Action::PowerVm { vm, .. }
            | Action::CutUplinks { vm, .. }
            | Action::RestoreUplinks { vm, .. } => Some(vm),
            _ => None,
        }
    }

    /// The VM whose deployment it is part of (clone, configure, start).
    pub fn vm(&self) -> Option<u32> {
        match self {
            Action::CloneVm { vm } | Action::ConfigureVm { vm, .. } | Action::StartVm { vm } => Some(vm.vmid),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateGroup { groupid, .. } => write!(f, "+ group  {groupid}"),
            Action::MarkGroup { groupid, comment } => write!(f, "~ group  {groupid}: {comment}"),
            Action::CreateUser { userid, .. } => write!(f, "+ user   {userid}"),
            Action::UpdateUser { userid, .. } => write!(f, "~ user   {userid}"),
            Action::CreatePool { poolid, .. } => write!(f, "+ pool   {poolid}"),
            Action::SetAcl { path, role, ugid } => write!(f, "+ acl    {path} {ugid} {role}"),
            Action::CreateBridge { node, iface, .. } => write!(f, "+ bridge {node}/{iface}"),
            Action::MarkBridge { node, iface, .. } => write!(f, "~ bridge {node}/{iface} (shared: this lab joins)"),
            Action::GrantBridge { iface, user, .. } => {
                write!(f, "+ acl    /sdn/zones/localnetwork/{iface} {user} PVESDNUser")
            }
            Action::CloneVm { vm } => write!(
                f,
                "+ vm     {} {} ({} clone of {} on {})",
                vm.vmid,
                vm.name,
                if vm.full { "full" } else { "linked" },
                vm.template,
                vm.node
            ),
            Action::ConfigureVm { vm, only: None } => write!(f, "+ config {} {}", vm.vmid, vm.name),
            Action::ConfigureVm { vm, only: Some(keys) } => {
                write!(f, "~ config {} {}: {}", vm.vmid, vm.name, keys.join(", "))
            }
            Action::StartVm { vm } => write!(f, "+ start  {} {}", vm.vmid, vm.name),
            Action::DestroyVm { node, vmid, name, .. } => write!(f, "- vm     {vmid} {name} on {node}"),
            Action::CopyTemplate { of, name, node, vmid, storage, .. } => {
                write!(f, "+ template {vmid} {name} on {node} ({storage}), a copy of {of}")
            }
            Action::DeleteBridge { node, iface } => write!(f, "- bridge {node}/{iface}"),
            Action::ReloadNetwork { node, foreign } if foreign.is_empty() => {
                write!(f, "~ network {node}: apply (one reload)")
            }
            Action::ReloadNetwork { node, foreign } => {
                write!(f, "! network {node}: not applied, pending changes stand did not make ({})", foreign.join(", "))
            }
            Action::CreateZone { zone } => write!(f, "+ zone   {zone} (vxlan, the nodes' addresses as peers)"),
            Action::CreateVnet { vnet, tag, zone, .. } => write!(f, "+ vnet   {vnet} in zone {zone} (VNI {tag})"),
            Action::DeleteVnet { vnet } => write!(f, "- vnet   {vnet}"),
            Action::ApplySdn { foreign } if foreign.is_empty() => write!(f, "~ sdn    apply (one PUT /cluster/sdn)"),
            Action::ApplySdn { foreign } => {
                write!(f, "! sdn    not applied, pending changes stand did not make ({})", foreign.join(", "))
            }
            Action::DeletePool { poolid } => write!(f, "- pool   {poolid}"),
            Action::DeleteUser { userid } => write!(f, "- user   {userid}"),
            Action::ReleaseUser { userid, .. } => write!(f, "~ user   {userid} (kept: other labs have it)"),
            Action::DeleteGroup { groupid } => write!(f, "- group  {groupid}"),
            Action::SnapshotVm { vm, name, .. } => write!(f, "+ snap   {} {}: {name}", vm.vmid, vm.name),
            Action::RollbackVm { vm, name, start } => {
                write!(f, "~ reset  {} {}: back to {name}{}", vm.vmid, vm.name, if *start { ", start" } else { "" })
            }
            Action::DeleteSnapshot { vm, name } => write!(f, "- snap   {} {}: {name}", vm.vmid, vm.name),
            Action::PowerVm { vm, op } => write!(f, "~ power  {} {}: {op}", vm.vmid, vm.name),
            Action::CutUplinks { vm, nics } => write!(f, "~ uplink {} {}: cut {}", vm.vmid, vm.name, nics.join(", ")),
            Action::RestoreUplinks { vm, nics } => {
                write!(f, "~ uplink {} {}: reconnect {}", vm.vmid, vm.name, nics.join(", "))
            }
        }
    }
}

/// An action and the steps it waits for.
#[derive(Clone, Debug, Serialize)]
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
    /// Steps that must end first, however they end (a user waits for the group, and joins
    /// it only if it was made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<usize>,
}

/// Actions in an order where every step comes after the steps it waits for.
#[derive(Clone, Debug, Default, Serialize)]
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
        self.add_edges(action, after, follows, Vec::new())
    }

    /// Adds `action` with every kind of edge (see [`Step`]).
    pub fn add_edges(&mut self, action: Action, after: Vec<usize>, follows: Vec<usize>, waits: Vec<usize>) -> usize {
        let id = self.steps.len();
        let earlier = |v: Vec<usize>| {
            debug_assert!(v.iter().all(|a| *a < id), "a step waits only for earlier ones");
            let mut v: Vec<usize> = v.into_iter().filter(|a| *a < id).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (after, follows, waits) = (earlier(after), earlier(follows), earlier(waits));
        self.steps.push(Step { id, action, after, follows, waits });
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
