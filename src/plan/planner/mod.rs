//! The pure planner: every decision made up front against the snapshot (VMIDs, bridge
//! numbers, MACs, placement), stable across re-runs through the ownership markers. One file
//! per part of it: students (`users.rs`), nodes and memory (`placement.rs`), bridges
//! (`network.rs`), VMs and their NICs (`vms.rs`).

mod network;
mod placement;
mod quota;
mod sdn;
mod users;
mod vms;

pub use vms::resolve_template;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::course_ops::CourseOp;
use super::marker::Marker;
use super::model::{BridgePlan, GroupPlan, LabSettings, Plan, Span, UserPlan, VmPlan, VnetPlan};
use super::names::valid_lab_name;
use super::snapshot::Snapshot;

/// The kind of guest, which decides its NICs (as deploy-stand makes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `virtio` NICs with the firewall on, from `net0`.
    Linux,
    /// EcoRouter: `vmxnet3`, `net0` a management port on `vmbr0` with `link_down=1`,
    /// MACs in `1C:87:76:40:XX:XX`, the data NICs from `net1`.
    EcoRouter,
}

/// A template by VMID or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateRef {
    /// VMID.
    Id(u32),
    /// Name (resolved on the stand's node first).
    Name(String),
}

/// What `clone(user, spec)` asks for.
#[derive(Clone, Debug)]
pub struct CloneSpec {
    /// Template.
    pub template: TemplateRef,
    /// Name in the script.
    pub name: String,
    /// Device kind.
    pub device: Device,
    /// Bridges of the data NICs.
    pub nets: Vec<String>,
    /// Full clone.
    pub full: bool,
    /// Target storage (full clones).
    pub storage: Option<String>,
    /// Memory, MiB.
    pub memory: Option<u64>,
    /// Cores.
    pub cores: Option<u32>,
    /// Start after deploying.
    pub start: bool,
    /// Extra tags.
    pub tags: Vec<String>,
    /// The node of this VM (default: the stand's).
    pub node: Option<String>,
    /// Where the script asked for it.
    pub span: Option<Span>,
}

/// A plan that cannot be made, with what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// An argument is wrong.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{what} '{name}' does not exist{hint}")]
    Unknown {
        /// Kind of object.
        what: &'static str,
        /// The name given.
        name: String,
        /// What exists instead.
        hint: String,
    },
    /// The guests that would run after the plan do not fit a node's memory.
    #[error(
        "not enough memory on {node}: the guests running after this plan need {need_gib:.1} GiB, the node has {cap_gib:.1} GiB \
         (RAM × overcommit {overcommit}); {fit} of the lab's {stands} stands fit. Start fewer VMs (`start: false` in clone), \
         allow overcommit (lab(#{{ overcommit: 1.5 }}) or --overcommit 1.5), lower `memory`, or add nodes"
    )]
    NoMemory {
        /// Node.
        node: String,
        /// What running guests would take, GiB.
        need_gib: f64,
        /// RAM × overcommit, GiB.
        cap_gib: f64,
        /// The overcommit ratio.
        overcommit: f64,
        /// Stands that fit the cluster as it is.
        fit: usize,
        /// Stands of the plan.
        stands: usize,
    },
    /// A range ran out.
    #[error("{0}")]
    Exhausted(String),
}

fn invalid(msg: impl Into<String>) -> PlanError {
    PlanError::Invalid(msg.into())
}

/// Builds a [`Plan`] from the calls of a script, against a [`Snapshot`].
pub struct Planner {
    snap: Arc<Snapshot>,
    settings: LabSettings,
    locked_settings: bool,
    users: Vec<UserPlan>,
    bridges: Vec<BridgePlan>,
    vms: Vec<VmPlan>,
    used_vmids: BTreeSet<u32>,
    used_bridges: BTreeMap<String, BTreeSet<String>>,
    used_macs: BTreeSet<String>,
    planned_mem: BTreeMap<String, u64>,
    /// Per node, memory (bytes) of the planned VMs that will run; per stand too.
    planned_running: BTreeMap<String, u64>,
    stand_running: BTreeMap<String, u64>,
    /// Per stand, what its planned VMs take (against the lab's quota).
    stand_usage: BTreeMap<String, quota::Usage>,
    overcommit_override: Option<f64>,
    stands_on: BTreeMap<String, usize>,
    reset_passwords: bool,
    /// New VMs on storage that cannot take the lab's baseline snapshot.
    no_baseline: Vec<String>,
    /// Course operations the script asked for, in order.
    course: Vec<CourseOp>,
    /// VNets of the lab (`network: "vxlan"`).
    vnets: Vec<VnetPlan>,
    /// Index into `users` by userid, by pool and by name key (a class of thousands is
    /// checked for duplicates without scanning it per student).
    user_at: HashMap<String, usize>,
    pool_at: HashMap<String, usize>,
    key_at: HashMap<String, usize>,
    /// Students' names from the roster, by userid.
    full_names: BTreeMap<String, crate::roster::FullName>,
    /// What reading the roster left out, for the plan's warnings.
    roster_notes: Vec<String>,
}

impl Planner {
    /// A planner for lab `lab` on `snap`.
    pub fn new(snap: Arc<Snapshot>, lab: &str) -> Result<Planner, PlanError> {
        if !valid_lab_name(lab) {
            return Err(invalid(format!(
                "lab name '{lab}' must be lowercase letters, digits, '-' or '_' (at most 32); rename the script or call lab(#{{ name: \"...\" }})"
            )));
        }
        let used_vmids = snap.vms.iter().map(|v| v.vmid).collect();
        let used_bridges =
            snap.bridges.iter().map(|(n, b)| (n.clone(), b.iter().map(|x| x.iface.clone()).collect())).collect();
        let used_macs = snap.vms.iter().flat_map(|v| v.nets()).filter_map(|(_, d)| d.mac).collect();
        Ok(Planner {
            snap,
            settings: LabSettings::new(lab),
            locked_settings: false,
            users: Vec::new(),
            bridges: Vec::new(),
            vms: Vec::new(),
            used_vmids,
            used_bridges,
            used_macs,
            planned_mem: BTreeMap::new(),
            planned_running: BTreeMap::new(),
            stand_running: BTreeMap::new(),
            stand_usage: BTreeMap::new(),
            overcommit_override: None,
            stands_on: BTreeMap::new(),
            reset_passwords: false,
            no_baseline: Vec::new(),
            course: Vec::new(),
            vnets: Vec::new(),
            user_at: HashMap::new(),
            pool_at: HashMap::new(),
            key_at: HashMap::new(),
            full_names: BTreeMap::new(),
            roster_notes: Vec::new(),
        })
    }

    /// The snapshot planned against.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// The lab's settings.
    pub fn settings(&self) -> &LabSettings {
        &self.settings
    }

    /// Takes the students' names from a roster (kept in their PVE users' `firstname` and
    /// `lastname`) and says what reading it left out.
    pub fn read_roster(&mut self, roster: &crate::roster::Roster) {
        for p in &roster.people {
            if let Some(n) = &p.name {
                self.full_names.insert(p.userid.clone(), n.clone());
            }
        }
        if !roster.skipped.is_empty() {
            self.roster_notes.push(format!("{}: skipped {}", roster.file, roster.skipped.join(", ")));
        }
    }

    /// Gives existing `stand` users new passwords too.
    pub fn reset_passwords(&mut self, yes: bool) {
        self.reset_passwords = yes;
    }

    /// Changes the lab settings; only before the first user.
    pub fn set_settings(&mut self, s: LabSettings) -> Result<(), PlanError> {
        if self.locked_settings {
            return Err(invalid("lab(...) must come before create_user, clone and alias"));
        }
        if !valid_lab_name(&s.name) {
            return Err(invalid(format!("lab name '{}' must be lowercase letters, digits, '-' or '_'", s.name)));
        }
        if s.vmid_range.0 < 100 || s.vmid_range.0 > s.vmid_range.1 {
            return Err(invalid(format!(
                "vmid_range [{}, {}] must start at 100 or above and not be empty",
                s.vmid_range.0, s.vmid_range.1
            )));
        }
        if let Some(zone) = &s.vxlan_zone {
            self.check_zone(zone)?;
        }
        if s.spread && s.vxlan_zone.is_none() {
            return Err(invalid(
                "lab: `spread: true` places a stand's VMs on different nodes, whose private networks must span nodes: add `network: \"vxlan\"`",
            ));
        }
        if let Some(t) = &s.teacher
            && self.snap.user(t).is_none()
        {
            return Err(invalid(format!(
                "teacher '{t}' does not exist: create the instructor's user first (Datacenter → Permissions → Users)"
            )));
        }
        if !(s.overcommit.is_finite() && (0.1..=10.0).contains(&s.overcommit)) {
            return Err(invalid(format!(
                "overcommit {} must be a ratio within 0.1..10 (1.0: no overcommit)",
                s.overcommit
            )));
        }
        if !(8..=64).contains(&s.password_length) {
            return Err(invalid(format!("password_length {} must be within 8..64 (PVE's limits)", s.password_length)));
        }
        self.settings = s;
        Ok(())
    }

    fn lab(&self) -> &str {
        &self.settings.name
    }

    fn user_index(&self, userid: &str) -> Result<usize, PlanError> {
        self.users
            .iter()
            .position(|u| u.userid == userid)
            .ok_or_else(|| invalid(format!("user '{userid}' has no stand yet: call create_user(\"{userid}\") first")))
    }

    /// Records a course operation on a stand: a student of this script, or of the lab on
    /// the cluster.
    pub fn record(&mut self, op: CourseOp) -> Result<(), PlanError> {
        let user = op.user();
        let known = self.users.iter().any(|u| u.userid == user) || self.snap.students(self.lab()).contains(user);
        if !known {
            let mut students: Vec<String> = self.users.iter().map(|u| u.userid.clone()).collect();
            students.extend(self.snap.students(self.lab()));
            students.sort();
            students.dedup();
            return Err(invalid(format!(
                "'{user}' has no stand in lab {}: {}",
                self.lab(),
                if students.is_empty() {
                    "it has no students yet".to_string()
                } else {
                    format!("its students: {}", students.join(", "))
                }
            )));
        }
        self.course.push(op);
        Ok(())
    }

    /// The lab's group of students: `<lab>-students`.
    pub fn group_id(&self) -> String {
        format!("{}-students", self.lab())
    }

    /// The finished plan, checked as a whole: what will run fits the nodes' memory. An
    /// error comes with the script position of the object that caused it.
    pub fn finish(&self) -> Result<Plan, (PlanError, Option<Span>)> {
        let mut warnings = self.check_memory()?;
        warnings.extend(self.roster_notes.iter().cloned());
        if let (Some(name), false) = (&self.settings.baseline, self.no_baseline.is_empty()) {
            let mut vms = self.no_baseline.clone();
            let more = vms.len().saturating_sub(5);
            vms.truncate(5);
            warnings.push(format!(
                "no '{name}' snapshot for {} VM(s) ({}{}): their storage cannot take snapshots (thick LVM or raw files), so `stand reset` cannot restore them; clone them to a storage that can (`storage` in clone), or set lab(#{{ snapshot: false }})",
                vms.len() + more,
                vms.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
        }
        Ok(Plan { warnings, ..self.plan() })
    }

    /// The shared bridges (not a student's own, not a VNet) the lab's VMs plug into, that its
    /// `teacher` has no `SDN.Use` grant on yet.
    fn teacher_bridges(&self) -> Option<(String, Vec<String>)> {
        let teacher = self.settings.teacher.clone()?;
        let private: BTreeSet<&str> =
            self.bridges.iter().filter(|b| b.owner.is_some()).map(|b| b.iface.as_str()).collect();
        let vnets: BTreeSet<String> =
            self.sdn_plan().iter().flat_map(|s| s.vnets.iter().map(|v| v.vnet.clone())).collect();
        let mut shared: BTreeSet<String> = BTreeSet::new();
        for vm in &self.vms {
            for nic in vm.nets.iter().flatten() {
                if let Some(bridge) = nic.parse::<crate::pve::NetDevice>().ok().and_then(|d| d.bridge)
                    && !private.contains(bridge.as_str())
                    && !vnets.contains(&bridge)
                {
                    shared.insert(bridge);
                }
            }
        }
        let granted = |b: &String| {
            self.snap.acl.iter().any(|a| {
                a.path == format!("/sdn/zones/localnetwork/{b}") && a.ugid == teacher && a.roleid == "PVESDNUser"
            })
        };
        let missing: Vec<String> = shared.into_iter().filter(|b| !granted(b)).collect();
        (!missing.is_empty()).then_some((teacher, missing))
    }

    /// The plan so far.
    pub fn plan(&self) -> Plan {
        let groupid = self.group_id();
        let mut marker = Marker::new(&[("lab", self.lab())]);
        if let Some(date) = &self.settings.expires {
            marker.set("expires", date);
        }
        // What `stand serve` needs to know of the lab lives on the cluster too.
        if let Some(t) = &self.settings.teacher {
            marker.set("teacher", t);
        }
        if self.settings.student_reset {
            marker.set("student_reset", "1");
        }
        if let Some(name) = self.settings.baseline.as_deref().filter(|n| *n != "start") {
            marker.set("snapshot", name);
        }
        // `stand export capi LAB` reads a deployed lab's Kubernetes settings from here.
        if let Some(capi) = &self.settings.capi {
            marker.set("capi", &crate::capi::encode_settings(capi));
        }
        let existing = self.snap.groups.iter().find(|g| g.groupid == groupid);
        let group = (!self.users.is_empty()).then(|| GroupPlan {
            exists: existing.is_some(),
            comment_update: existing
                .is_some_and(|g| g.comment.as_deref().and_then(Marker::parse).as_ref() != Some(&marker)),
            comment: marker.to_string(),
            groupid,
            teacher_bridges: self.teacher_bridges(),
        });
        Plan {
            lab: Some(self.settings.clone()),
            group,
            users: self.users.clone(),
            bridges: self.bridges.clone(),
            vms: self.vms.clone(),
            sdn: self.sdn_plan(),
            warnings: Vec::new(),
            course: self.course.clone(),
        }
    }
}
