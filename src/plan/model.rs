//! The plan: the desired state of one lab, fully concrete, as plain serde data.

use serde::{Deserialize, Serialize};

/// Settings of a lab (from `lab(#{...})` in the script, or defaults).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabSettings {
    /// Lab name: pool prefix and tag.
    pub name: String,
    /// VMIDs to allocate from (inclusive).
    pub vmid_range: (u32, u32),
    /// First private bridge number (`vmbr1000`).
    pub bridge_base: u32,
    /// Length of generated passwords.
    pub password_length: usize,
    /// Role of a student on their pool.
    pub role: String,
    /// An instructor (`name@realm`, must exist) who gets the same role on every stand's pool.
    #[serde(default)]
    pub teacher: Option<String>,
    /// How much memory running guests may promise, as a multiple of a node's RAM (PVE
    /// itself does not refuse to start a VM beyond its RAM; KSM and ballooning share it).
    #[serde(default = "one")]
    pub overcommit: f64,
    /// The snapshot `up` takes of each VM it makes, before its first start (`None`: none).
    #[serde(default = "start")]
    pub baseline: Option<String>,
    /// The last day of the lab (`YYYY-MM-DD`, UTC): the students' accounts expire after it
    /// and `stand down --expired` removes the lab.
    #[serde(default)]
    pub expires: Option<String>,
    /// What one stand may take at most.
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Whether students may reset their own stand from `stand serve`'s page.
    #[serde(default)]
    pub student_reset: bool,
    /// The SDN zone of the students' networks: each `alias` is a VNet there, on every node
    /// (`network: "vxlan"`); `None`: Linux bridges of the stand's node.
    #[serde(default)]
    pub vxlan_zone: Option<String>,
    /// Place VM by VM (`spread: true`, needs `network: "vxlan"`), not stand by stand.
    #[serde(default)]
    pub spread: bool,
    /// Each student's Kubernetes cluster through Cluster API (`stand export capi`).
    #[serde(default)]
    pub capi: Option<crate::capi::CapiSettings>,
}

/// The SDN part of a plan: the VXLAN zone and one VNet per student network.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SdnPlan {
    /// Zone id.
    pub zone: String,
    /// The zone exists (else a VXLAN zone is made with the nodes' addresses as peers).
    pub zone_exists: bool,
    /// VNets.
    pub vnets: Vec<VnetPlan>,
    /// Pending SDN changes on the cluster: the lab's own (applied by this run), and
    /// someone else's (`PUT /cluster/sdn` would apply them too, so it is not made).
    pub pending_ours: bool,
    /// Pending SDN changes `stand` did not make.
    pub foreign: Vec<String>,
}

impl SdnPlan {
    /// Nothing to create, grant or apply.
    pub fn is_noop(&self) -> bool {
        self.zone_exists && !self.pending_ours && self.vnets.iter().all(|v| v.exists && v.acl_exists)
    }
}

/// A student's network as an SDN VNet.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct VnetPlan {
    /// VNet id (2–8 characters, stable across runs).
    pub vnet: String,
    /// VXLAN network identifier (unique among the cluster's VXLAN VNets).
    pub tag: u32,
    /// VLAN aware (the alias was used with a VLAN).
    pub vlan_aware: bool,
    /// Owner.
    pub owner: String,
    /// The script's name for it (`lan`).
    pub alias: String,
    /// Marker, kept in the VNet's `alias` field.
    pub marker: String,
    /// Exists.
    pub exists: bool,
    /// The owner has `SDN.Use` on it.
    pub acl_exists: bool,
}

/// What one student's stand may take (PVE has no pool quotas; the planner enforces them).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Quota {
    /// VMs.
    pub vms: Option<u64>,
    /// Memory of all VMs, GiB.
    pub memory_gib: Option<f64>,
    /// Cores of all VMs (cores × sockets).
    pub cores: Option<u64>,
}

fn one() -> f64 {
    1.0
}

fn start() -> Option<String> {
    Some("start".into())
}

impl LabSettings {
    /// Defaults for a lab named `name`.
    pub fn new(name: &str) -> Self {
        LabSettings {
            name: name.into(),
            vmid_range: (1000, 999_999),
            bridge_base: 1000,
            password_length: 12,
            role: "PVEVMAdmin".into(),
            teacher: None,
            overcommit: 1.0,
            baseline: start(),
            expires: None,
            quota: None,
            student_reset: false,
            vxlan_zone: None,
            spread: false,
            capi: None,
        }
    }
}

/// A student of the lab.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserPlan {
    /// `name@realm`.
    pub userid: String,
    /// The part before `@`.
    pub name: String,
    /// Their pool.
    pub pool: String,
    /// Node of their stand.
    pub node: Option<String>,
    /// The user gets a new password (created, or reset): the planner asks for one, the
    /// edge that runs the plan fills [`UserPlan::password`] ([`Plan::fill_passwords`]).
    #[serde(default)]
    pub new_password: bool,
    /// The new password, once filled; never serialized.
    #[serde(skip)]
    pub password: Option<String>,
    /// The user exists already.
    pub exists: bool,
    /// The user carries `stand`'s marker (or will).
    pub ours: bool,
    /// The user's comment after this run (labs list).
    pub comment: String,
    /// Their name, from the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<crate::roster::FullName>,
    /// The roster's name differs from the one PVE has (a user `stand` made).
    #[serde(default)]
    pub name_update: bool,
    /// The comment must be updated (another lab adds itself).
    pub comment_update: bool,
    /// The pool exists already.
    pub pool_exists: bool,
    /// The ACL on the pool exists already.
    pub acl_exists: bool,
    /// Bridges whose `SDN.Use` this user gets (missing ones).
    pub sdn_acls: Vec<String>,
    /// The lab's teacher, when their ACL on this pool is missing.
    #[serde(default)]
    pub teacher_acl: Option<String>,
    /// Already in the lab's group.
    #[serde(default)]
    pub in_group: bool,
    /// The account's `expire` (Unix seconds, 0 = never) after this run (users `stand` made).
    #[serde(default)]
    pub expire: u64,
    /// The account exists with another `expire`.
    #[serde(default)]
    pub expire_update: bool,
}

impl UserPlan {
    /// The ASCII name of the student in pool ids and VM names (`дмитрий@pve` → `dmitrii`).
    pub fn name_key(&self) -> String {
        super::names::dns_safe(&self.name)
    }
}

/// A bridge the lab needs on a node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BridgePlan {
    /// Node.
    pub node: String,
    /// Interface name.
    pub iface: String,
    /// VLAN aware.
    pub vlan_aware: bool,
    /// Comment with the marker.
    pub comment: String,
    /// Owner (private alias bridges).
    pub owner: Option<String>,
    /// Alias name (private bridges).
    pub alias: Option<String>,
    /// Exists already (active or pending).
    pub exists: bool,
    /// Exists, and its comment changes (another lab ensures a shared bridge too).
    #[serde(default)]
    pub comment_update: bool,
}

/// Where in the script an object was asked for, so that errors found after the script
/// ended still point at `file:line`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// The module it was called in (`None`: the main script).
    pub file: Option<String>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A VM of a stand.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VmPlan {
    /// VMID.
    pub vmid: u32,
    /// Node.
    pub node: String,
    /// VM name (`<name>-<user>`, DNS-safe).
    pub name: String,
    /// The name in the script.
    pub spec_name: String,
    /// Owner.
    pub user: String,
    /// Template VMID.
    pub template: u32,
    /// Node of the template.
    pub template_node: String,
    /// Full clone.
    pub full: bool,
    /// Target storage (full clones).
    pub storage: Option<String>,
    /// Pool.
    pub pool: String,
    /// Memory, MiB, when the script sets it.
    pub memory: Option<u64>,
    /// Memory, MiB, it will have (the script's or the template's).
    #[serde(default)]
    pub memory_mib: u64,
    /// Cores.
    pub cores: Option<u32>,
    /// `net[n]` values, index = n.
    pub nets: Vec<Option<String>>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description (with the marker).
    pub description: String,
    /// Start after deploying.
    pub start: bool,
    /// Exists already.
    pub exists: bool,
    /// Config keys that differ from the cluster (for an existing VM).
    pub update: Vec<String>,
    /// Exists and is stopped although it should run.
    pub needs_start: bool,
    /// NICs the template has beyond the planned ones, removed after cloning.
    #[serde(default)]
    pub drop_nets: Vec<String>,
    /// The `clone` call that asked for it.
    #[serde(skip)]
    pub span: Option<Span>,
    /// The baseline snapshot `up` takes: before the first start of a new VM (on storage that
    /// can snapshot, when the lab keeps one), or now for a VM that exists without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// The lab's group of students (`<lab>-students`), for the GUI and for shared rights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupPlan {
    /// Group id.
    pub groupid: String,
    /// Comment with the marker.
    pub comment: String,
    /// Exists already.
    pub exists: bool,
    /// Exists with another comment (the lab's expiry changed).
    #[serde(default)]
    pub comment_update: bool,
    /// The lab's `teacher` and the shared bridges the stands use (`vmbr0`) that the teacher
    /// still needs `SDN.Use` on, to cut and restore uplinks from `stand serve` (PVE 8 checks
    /// it on `/sdn/zones/localnetwork/<bridge>` for any change to a NIC on the bridge).
    #[serde(default)]
    pub teacher_bridges: Option<(String, Vec<String>)>,
}

/// The desired state of one lab.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Lab settings.
    pub lab: Option<LabSettings>,
    /// The students' group.
    #[serde(default)]
    pub group: Option<GroupPlan>,
    /// Students.
    pub users: Vec<UserPlan>,
    /// Bridges.
    pub bridges: Vec<BridgePlan>,
    /// VMs.
    pub vms: Vec<VmPlan>,
    /// The lab's SDN zone and VNets (`network: "vxlan"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdn: Option<SdnPlan>,
    /// What the plan does that works but deserves a look (a node nearly full).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Operations on stands the script asks for (reset, power, snapshot, uplinks), in
    /// script order, after the deployment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub course: Vec<super::course_ops::CourseOp>,
}

impl Plan {
    /// The lab name.
    pub fn lab_name(&self) -> &str {
        self.lab.as_ref().map(|l| l.name.as_str()).unwrap_or("")
    }

    /// Gives every user who gets a new password one from `generate(length)`: planning
    /// stays free of randomness, the edge that runs the plan brings it.
    pub fn fill_passwords(&mut self, mut generate: impl FnMut(usize) -> String) {
        let length = self.lab.as_ref().map(|l| l.password_length).unwrap_or(12);
        for u in self.users.iter_mut().filter(|u| u.new_password && u.password.is_none()) {
            u.password = Some(generate(length));
        }
    }

    /// Keeps only the stands of `students` (shared objects stay).
    pub fn retain_students(&mut self, students: &[String]) {
        self.users.retain(|u| students.contains(&u.userid));
        self.vms.retain(|v| students.contains(&v.user));
        self.bridges.retain(|b| b.owner.as_ref().is_none_or(|o| students.contains(o)));
    }

    /// Whether applying it changes nothing.
    pub fn is_noop(&self) -> bool {
        self.users.iter().all(|u| {
            u.exists
                && u.pool_exists
                && u.acl_exists
                && !u.comment_update
                && !u.expire_update
                && !u.name_update
                && u.sdn_acls.is_empty()
                && u.teacher_acl.is_none()
                && u.in_group
                && !u.new_password
        }) && self.group.as_ref().is_none_or(|g| g.exists && !g.comment_update && g.teacher_bridges.is_none())
            && self.bridges.iter().all(|b| b.exists && !b.comment_update)
            && self.vms.iter().all(|v| v.exists && v.update.is_empty() && !v.needs_start && v.baseline.is_none())
            && self.sdn.as_ref().is_none_or(SdnPlan::is_noop)
            && self.course.is_empty()
    }
}
