//! The pure planner: every decision made up front against the snapshot (VMIDs, bridge
//! numbers, MACs, placement), stable across re-runs through the ownership markers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::marker::{Marker, STAND_TAG, lab_tag};
use super::model::{BridgePlan, GroupPlan, LabSettings, Plan, Span, UserPlan, VmPlan};
use super::names::{dns_safe, valid_lab_name, valid_userid};
use super::owner::Owner;
use super::snapshot::{Snapshot, VmSnap};
use super::translit::latin;
use crate::pve::{NetDevice, NicModel};

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
    overcommit_override: Option<f64>,
    stands_on: BTreeMap<String, usize>,
    reset_passwords: bool,
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
            overcommit_override: None,
            stands_on: BTreeMap::new(),
            reset_passwords: false,
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

    /// `create_user(userid)`: the user, their pool `<lab>-<name>` and the ACL on it.
    pub fn add_user(&mut self, userid: &str) -> Result<UserPlan, PlanError> {
        self.locked_settings = true;
        if !valid_userid(userid) {
            return Err(invalid(format!(
                "'{userid}' is not a Proxmox userid: write it as name@realm, e.g. student1@pve"
            )));
        }
        if self.users.iter().any(|u| u.userid == userid) {
            return Err(invalid(format!("user '{userid}' is listed twice")));
        }
        let (name, realm) = userid.split_once('@').unwrap_or((userid, "pve"));
        if !self.snap.realms.is_empty() && !self.snap.realms.iter().any(|r| r == realm) {
            return Err(invalid(format!(
                "'{userid}': the realm '{realm}' does not exist (realms: {}); add it in Datacenter → Permissions → Realms, or fix the userid",
                self.snap.realms.join(", ")
            )));
        }
        // Pool ids and VM names are ASCII: names are transliterated (`дмитрий` → `dmitrii`).
        if dns_safe(name).is_empty() {
            return Err(invalid(format!(
                "'{userid}' has no letters or digits to name its pool and VMs: rename the student"
            )));
        }
        let base = format!("{}-{}", self.lab(), dns_safe(name));
        let pool = if realm == "pve" { base } else { format!("{base}-{}", dns_safe(realm)) };
        if let Some(other) = self.users.iter().find(|u| u.pool == pool || u.name_key() == dns_safe(name)) {
            return Err(invalid(format!(
                "students '{}' and '{userid}' would share the name '{}' (pool '{pool}', VMs '<name>-{}'): rename one of them",
                other.userid,
                dns_safe(name),
                dns_safe(name)
            )));
        }
        let lab = self.lab().to_string();
        let existing = self.snap.user(userid);
        let owner = existing.and_then(|u| u.owner.as_ref());
        let exists = existing.is_some();
        let ours = !exists || owner.is_some();
        let mut labs: BTreeSet<String> = owner.map(Owner::labs).unwrap_or_default();
        let comment_update = ours && exists && !labs.contains(&lab);
        labs.insert(lab.clone());
        let comment = if ours {
            Marker::new(&[("labs", &labs.into_iter().collect::<Vec<_>>().join(","))]).to_string()
        } else {
            existing.and_then(|u| u.comment.clone()).unwrap_or_default()
        };
        if let Some(p) = self.snap.pool(&pool) {
            let mine = p.owner.as_ref().is_some_and(|o| o.is_stand_of(&lab, userid));
            if !mine {
                return Err(invalid(format!(
                    "pool '{pool}' exists and is not this lab's stand of {userid}: remove or rename it, or rename the lab"
                )));
            }
        }
        let groupid = self.group_id();
        if let Some(g) = self.snap.groups.iter().find(|g| g.groupid == groupid)
            && !g.owner.as_ref().is_some_and(|o| o.has_lab(self.lab()))
        {
            return Err(invalid(format!(
                "group '{groupid}' exists and is not this lab's: rename the lab, or remove or rename the group"
            )));
        }
        let acl_exists = self
            .snap
            .acl
            .iter()
            .any(|a| a.path == format!("/pool/{pool}") && a.ugid == userid && a.roleid == self.settings.role);
        let new_password = !exists || (self.reset_passwords && ours);
        let user = UserPlan {
            userid: userid.to_string(),
            name: name.to_string(),
            pool: pool.clone(),
            node: None,
            new_password,
            password: None,
            exists,
            ours,
            comment,
            comment_update,
            pool_exists: self.snap.pool(&pool).is_some(),
            acl_exists,
            sdn_acls: Vec::new(),
            in_group: existing.is_some_and(|u| u.groups.contains(&self.group_id())),
            teacher_acl: self.settings.teacher.clone().filter(|t| {
                !self
                    .snap
                    .acl
                    .iter()
                    .any(|a| a.path == format!("/pool/{pool}") && a.ugid == *t && a.roleid == self.settings.role)
            }),
        };
        self.users.push(user.clone());
        Ok(user)
    }

    /// Where this user's stand already is: a VM with our marker, a VM in the user's pool
    /// (known even when its node is offline and its config unreadable), or a private
    /// bridge made for the user (a run that stopped before cloning).
    fn existing_stand_node(&self, userid: &str) -> Option<String> {
        let lab = self.lab();
        let pool = self.users.iter().find(|u| u.userid == userid).map(|u| u.pool.as_str());
        let by_vm = self.snap.vms.iter().find(|v| {
            v.owner().is_some_and(|o| o.is_stand_of(lab, userid))
                || (!v.template && pool.is_some() && v.pool.as_deref() == pool)
        });
        if let Some(v) = by_vm {
            return Some(v.node.clone());
        }
        self.snap.bridges.iter().find_map(|(node, bridges)| {
            bridges
                .iter()
                .any(|b| matches!(&b.owner, Some(o @ Owner::Private { .. }) if o.is_stand_of(lab, userid)))
                .then(|| node.clone())
        })
    }

    /// `--overcommit`: wins over the lab's setting.
    pub fn set_overcommit(&mut self, ratio: Option<f64>) {
        self.overcommit_override = ratio;
    }

    fn overcommit(&self) -> f64 {
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
    fn check_memory(&self) -> Result<Vec<String>, (PlanError, Option<Span>)> {
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

    fn pin(&mut self, i: usize, node: String) {
        *self.stands_on.entry(node.clone()).or_default() += 1;
        self.users[i].node = Some(node);
    }

    fn unknown_node(&self, n: &str) -> PlanError {
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

    fn check_iface_name(name: &str) -> Result<(), PlanError> {
        let ok = !name.is_empty()
            && name.len() <= 15
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if ok {
            Ok(())
        } else {
            Err(invalid(format!(
                "'{name}' is not a valid bridge name (letters, digits, '_', '.', '-'; at most 15 characters)"
            )))
        }
    }

    /// `ensure_bridge(node, name)`: a shared bridge that must exist on `node`.
    pub fn ensure_bridge(&mut self, node: &str, name: &str) -> Result<String, PlanError> {
        self.locked_settings = true;
        if self.snap.node(node).is_none() {
            return Err(self.unknown_node(node));
        }
        Self::check_iface_name(name)?;
        if self.bridges.iter().any(|b| b.node == node && b.iface == name) {
            return Ok(name.to_string());
        }
        let existing = self.snap.bridge(node, name);
        self.used_bridges.entry(node.to_string()).or_default().insert(name.to_string());
        // A shared bridge lists every lab that ensures it (`labs=a,b shared=1`), so that
        // `down a` leaves it to b. A bridge without stand's shared marker stays as it is.
        let shared = existing.and_then(|b| b.owner.as_ref()).filter(|o| matches!(o, Owner::Shared { .. }));
        let mut labs: BTreeSet<String> = shared.map(Owner::labs).unwrap_or_default();
        let comment_update = shared.is_some() && !labs.contains(self.lab());
        labs.insert(self.lab().to_string());
        let comment = match (existing, shared) {
            (Some(b), None) => b.comments.clone().unwrap_or_default(),
            _ => Marker::new(&[("labs", &labs.into_iter().collect::<Vec<_>>().join(",")), ("shared", "1")]).to_string(),
        };
        self.bridges.push(BridgePlan {
            node: node.into(),
            iface: name.into(),
            vlan_aware: false,
            comment,
            owner: None,
            alias: None,
            exists: existing.is_some(),
            comment_update,
        });
        Ok(name.to_string())
    }

    /// `alias(user, name[, vlan])`: the user's private bridge for `name` on their node
    /// (`vmbr1000`+, first free, stable across re-runs). With a VLAN: `vmbrN.<tag>`.
    pub fn alias(&mut self, userid: &str, name: &str, vlan: Option<u16>) -> Result<String, PlanError> {
        self.locked_settings = true;
        let (name, vlan) = match (name.rsplit_once('.'), vlan) {
            (Some((n, t)), None) if t.parse::<u16>().is_ok() => (n, t.parse().ok()),
            _ => (name, vlan),
        };
        if let Some(t) = vlan
            && !(1..=4094).contains(&t)
        {
            return Err(invalid(format!("VLAN {t} of alias '{name}' is not within 1..4094")));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
            return Err(invalid(format!("alias '{name}' may only have letters, digits, '_' and '-'")));
        }
        let node = self.place_balanced(userid, None)?;
        let with_vlan = |iface: &str| match vlan {
            Some(t) => format!("{iface}.{t}"),
            None => iface.to_string(),
        };
        if let Some(b) =
            self.bridges.iter_mut().find(|b| b.owner.as_deref() == Some(userid) && b.alias.as_deref() == Some(name))
        {
            b.vlan_aware |= vlan.is_some();
            return Ok(with_vlan(&b.iface.clone()));
        }
        let lab = self.lab().to_string();
        let existing = self.snap.bridges.get(&node).and_then(|bs| {
            bs.iter().find(|b| {
                matches!(&b.owner, Some(Owner::Private { lab: l, user, alias }) if *l == lab && user == userid && alias == name)
            })
        });
        let (iface, exists) = match existing {
            Some(b) => (b.iface.clone(), true),
            None => {
                let used = self.used_bridges.entry(node.clone()).or_default();
                let n = (self.settings.bridge_base..=9999).find(|n| !used.contains(&format!("vmbr{n}"))).ok_or_else(|| {
                    PlanError::Exhausted(format!("no free bridge number left on {node} (vmbr{}..vmbr9999 are taken): run `stand down` for old labs", self.settings.bridge_base))
                })?;
                (format!("vmbr{n}"), false)
            }
        };
        self.used_bridges.entry(node.clone()).or_default().insert(iface.clone());
        let comment = Marker::new(&[("lab", &lab), ("user", userid), ("alias", name)]).to_string();
        let vlan_aware = vlan.is_some() || existing.is_some_and(|b| b.vlan_aware);
        self.bridges.push(BridgePlan {
            node: node.clone(),
            iface: iface.clone(),
            vlan_aware,
            comment,
            owner: Some(userid.into()),
            alias: Some(name.into()),
            exists,
            comment_update: false,
        });
        let path = format!("/sdn/zones/localnetwork/{iface}");
        let has_sdn = self.snap.acl.iter().any(|a| a.path == path && a.ugid == userid);
        let i = self.user_index(userid)?;
        if !has_sdn && !self.users[i].sdn_acls.contains(&iface) {
            self.users[i].sdn_acls.push(iface.clone());
        }
        Ok(with_vlan(&iface))
    }

    fn resolve_template(&self, t: &TemplateRef, node: &str) -> Result<VmSnap, PlanError> {
        let templates: Vec<&VmSnap> = self.snap.vms.iter().filter(|v| v.template).collect();
        let list = || templates.iter().map(|t| format!("{} {}", t.vmid, t.name)).collect::<Vec<_>>().join(", ");
        match t {
            TemplateRef::Id(id) => {
                let vm = self.snap.vm(*id).ok_or_else(|| PlanError::Unknown {
                    what: "template",
                    name: id.to_string(),
                    hint: format!(" (templates: {})", list()),
                })?;
                if !vm.template {
                    return Err(invalid(format!(
                        "VM {id} ({}) is not a template: convert it, or name a template ({})",
                        vm.name,
                        list()
                    )));
                }
                Ok(vm.clone())
            }
            TemplateRef::Name(name) => {
                let named: Vec<&&VmSnap> = templates.iter().filter(|v| v.name == *name).collect();
                let shared = |v: &VmSnap| {
                    !v.disk_storages().is_empty()
                        && v.disk_storages().iter().all(|s| self.snap.storage(s).is_some_and(|s| s.shared))
                };
                named
                    .iter()
                    .find(|v| v.node == node)
                    .or_else(|| named.iter().find(|v| shared(v)))
                    .or_else(|| named.first())
                    .map(|v| (**v).clone())
                    .ok_or_else(|| PlanError::Unknown {
                        what: "template",
                        name: name.clone(),
                        hint: format!(" (templates: {})", list()),
                    })
            }
        }
    }

    fn bridge_on_node(&self, node: &str, bridge: &str) -> bool {
        self.snap.bridge(node, bridge).is_some() || self.bridges.iter().any(|b| b.node == node && b.iface == bridge)
    }

    fn nic_target(&self, node: &str, spec_net: &str) -> Result<(String, Option<u16>), PlanError> {
        if let Some((b, t)) = spec_net.rsplit_once('.')
            && let Ok(tag) = t.parse::<u16>()
            && self.bridge_on_node(node, b)
        {
            return Ok((b.to_string(), Some(tag)));
        }
        if self.bridge_on_node(node, spec_net) {
            return Ok((spec_net.to_string(), None));
        }
        Err(invalid(format!(
            "bridge '{spec_net}' is not on node {node}: use alias(user, \"{spec_net}\") for a private network or ensure_bridge(\"{node}\", \"{spec_net}\") for a shared one"
        )))
    }

    fn ecorouter_mac(&mut self, seed: &str, keep: Option<&str>) -> String {
        if let Some(m) = keep.filter(|m| m.starts_with("1C:87:76:40:")) {
            self.used_macs.insert(m.to_string());
            return m.to_string();
        }
        let h = Sha256::digest(seed.as_bytes());
        let mut n = u16::from_be_bytes([h[0], h[1]]);
        loop {
            let mac = format!("1C:87:76:40:{:02X}:{:02X}", n >> 8, n & 0xFF);
            if self.used_macs.insert(mac.clone()) {
                return mac;
            }
            n = n.wrapping_add(1);
        }
    }

    /// `clone(user, spec)`: a VM of the user's stand.
    pub fn clone_vm(&mut self, userid: &str, spec: CloneSpec) -> Result<VmPlan, PlanError> {
        let ui = self.user_index(userid)?;
        let lab = self.lab().to_string();
        if spec.name.is_empty() {
            return Err(invalid("clone needs a `name`"));
        }
        if self.vms.iter().any(|v| v.user == userid && v.spec_name == spec.name) {
            return Err(invalid(format!("the stand of {userid} already has a VM named '{}'", spec.name)));
        }
        let node = self.place_balanced(userid, None)?;
        let existing = self
            .snap
            .vms
            .iter()
            .find(|v| {
                matches!(v.owner(), Some(Owner::Vm { lab: l, user, name }) if *l == lab && user == userid && *name == spec.name)
            })
            .cloned();
        let node = existing.as_ref().map(|e| e.node.clone()).unwrap_or(node);
        let tpl = self.resolve_template(&spec.template, &node)?;
        let tpl_nets: Vec<u32> = tpl.nets().into_iter().map(|(i, _)| i).collect();
        if !spec.full && tpl.node != node {
            let local: Vec<String> =
                tpl.disk_storages().into_iter().filter(|s| !self.snap.storage(s).is_some_and(|x| x.shared)).collect();
            if !local.is_empty() {
                return Err(invalid(format!(
                    "template {} ({}) is on {}'s local storage '{}': a linked clone to {node} is impossible; put a copy of the template on {node}, set `full: true`, or move the template to shared storage",
                    tpl.vmid,
                    tpl.name,
                    tpl.node,
                    local.join(",")
                )));
            }
        }
        if let Some(s) = &spec.storage {
            if !spec.full {
                return Err(invalid(format!(
                    "`storage: \"{s}\"` needs `full: true` (PVE refuses a storage for linked clones)"
                )));
            }
            let st = self.snap.storage(s).ok_or_else(|| PlanError::Unknown {
                what: "storage",
                name: s.clone(),
                hint: format!(
                    " (storages: {})",
                    self.snap.storages.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            if !st.content.iter().any(|c| c == "images") {
                return Err(invalid(format!(
                    "storage '{s}' does not hold VM disks (content 'images'); choose another"
                )));
            }
            if !st.nodes.contains(&node) {
                return Err(invalid(format!("storage '{s}' is not available on {node}")));
            }
            if tpl.node != node && !st.shared {
                return Err(invalid(format!(
                    "a full clone from {} to {node} needs a shared target storage; '{s}' is local",
                    tpl.node
                )));
            }
        }
        let username = userid.split('@').next().unwrap_or(userid);
        if dns_safe(&spec.name).is_empty() {
            return Err(invalid(format!("`name` '{}' has no letters or digits: VM names are DNS names", spec.name)));
        }
        let vm_name = dns_safe(&format!("{}-{username}", spec.name));
        if latin(&spec.name).len() + 1 + latin(username).len() > 63 {
            return Err(invalid(format!(
                "the VM name '{}-{username}' is longer than a DNS label (63 characters): shorten `name` '{}'",
                spec.name, spec.name
            )));
        }
        if vm_name.is_empty() {
            return Err(invalid(format!("VM name '{}' has no letters or digits", spec.name)));
        }
        let tpl_mem = tpl.config.as_ref().and_then(|c| c.memory_mib()).unwrap_or(tpl.maxmem >> 20);
        let memory_mib = spec.memory.unwrap_or(tpl_mem);
        let vmid = match &existing {
            Some(e) => e.vmid,
            None => {
                let (lo, hi) = self.settings.vmid_range;
                (lo..=hi).find(|i| !self.used_vmids.contains(i)).ok_or_else(|| {
                    PlanError::Exhausted(format!("no free VMID left in the lab's vmid_range [{lo}, {hi}]: widen it in lab(#{{ vmid_range: [...] }})"))
                })?
            }
        };
        self.used_vmids.insert(vmid);
        *self.planned_mem.entry(node.clone()).or_default() += memory_mib << 20;
        if spec.start || existing.as_ref().is_some_and(|e| e.status == "running") {
            *self.planned_running.entry(node.clone()).or_default() += memory_mib << 20;
            *self.stand_running.entry(userid.to_string()).or_default() += memory_mib << 20;
        }

        let current: BTreeMap<u32, NetDevice> =
            existing.as_ref().map(|e| e.nets().into_iter().collect()).unwrap_or_default();
        let mut nets: Vec<Option<String>> = Vec::new();
        match spec.device {
            Device::Linux => {
                for n in &spec.nets {
                    let (bridge, tag) = self.nic_target(&node, n)?;
                    let dev = NetDevice { tag, firewall: true, ..NetDevice::new(NicModel::Virtio, &bridge) };
                    nets.push(Some(dev.to_string()));
                }
            }
            Device::EcoRouter => {
                if !self.bridge_on_node(&node, "vmbr0") {
                    return Err(invalid(format!("EcoRouter's management port needs vmbr0 on {node}")));
                }
                let seed = format!("{lab}/{userid}/{}/0", spec.name);
                let mac = self.ecorouter_mac(&seed, current.get(&0).and_then(|d| d.mac.as_deref()));
                let mgmt = NetDevice { mac: Some(mac), link_down: true, ..NetDevice::new(NicModel::Vmxnet3, "vmbr0") };
                nets.push(Some(mgmt.to_string()));
                for (i, n) in spec.nets.iter().enumerate() {
                    let (bridge, tag) = self.nic_target(&node, n)?;
                    let seed = format!("{lab}/{userid}/{}/{}", spec.name, i + 1);
                    let mac = self.ecorouter_mac(&seed, current.get(&(i as u32 + 1)).and_then(|d| d.mac.as_deref()));
                    let dev = NetDevice { mac: Some(mac), tag, ..NetDevice::new(NicModel::Vmxnet3, &bridge) };
                    nets.push(Some(dev.to_string()));
                }
            }
        }
        for t in &spec.tags {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c)) {
                return Err(invalid(format!("tag '{t}' may only have letters, digits, '_', '-', '+', '.'")));
            }
        }
        let mut tags = vec![STAND_TAG.to_string(), lab_tag(&lab)];
        tags.extend(spec.tags.iter().map(|t| t.to_ascii_lowercase()));
        tags.sort();
        tags.dedup();
        let description = Marker::new(&[("lab", &lab), ("user", userid), ("name", &spec.name)]).to_string();

        // Without `nets`, a Linux VM keeps the template's NICs as they are.
        let manages_nics = !spec.nets.is_empty() || spec.device == Device::EcoRouter;
        let drop_nets: Vec<String> = match (&existing, manages_nics) {
            (None, true) => tpl_nets.iter().filter(|i| **i as usize >= nets.len()).map(|i| format!("net{i}")).collect(),
            _ => Vec::new(),
        };
        let mut update = Vec::new();
        let mut needs_start = false;
        if let Some(e) = &existing {
            for (i, want) in nets.iter().enumerate() {
                let want: Option<NetDevice> = want.as_ref().and_then(|w| w.parse().ok());
                let ok = match (want, current.get(&(i as u32))) {
                    (Some(w), Some(c)) => w.matches(c),
                    (None, None) => true,
                    _ => false,
                };
                if !ok {
                    update.push(format!("net{i}"));
                }
            }
            if manages_nics {
                for i in current.keys().filter(|i| **i as usize >= nets.len()) {
                    update.push(format!("net{i}"));
                }
            }
            let cfg = e.config.clone().unwrap_or_default();
            if spec.memory.is_some_and(|m| cfg.memory_mib() != Some(m)) {
                update.push("memory".into());
            }
            if spec.cores.is_some_and(|c| cfg.get("cores").and_then(|x| x.parse::<u32>().ok()) != Some(c)) {
                update.push("cores".into());
            }
            let mut have = e.tags.clone();
            have.sort();
            if have != tags {
                update.push("tags".into());
            }
            needs_start = spec.start && e.status != "running";
        }
        let vm = VmPlan {
            vmid,
            node,
            name: vm_name,
            spec_name: spec.name.clone(),
            user: userid.to_string(),
            template: tpl.vmid,
            template_node: tpl.node.clone(),
            full: spec.full,
            storage: spec.storage.clone(),
            pool: self.users[ui].pool.clone(),
            memory: spec.memory,
            memory_mib,
            cores: spec.cores,
            nets,
            tags,
            description,
            start: spec.start,
            exists: existing.is_some(),
            update,
            drop_nets,
            needs_start,
            span: spec.span.clone(),
        };
        self.vms.push(vm.clone());
        Ok(vm)
    }

    /// The lab's group of students: `<lab>-students`.
    pub fn group_id(&self) -> String {
        format!("{}-students", self.lab())
    }

    /// The finished plan, checked as a whole: what will run fits the nodes' memory. An
    /// error comes with the script position of the object that caused it.
    pub fn finish(&self) -> Result<Plan, (PlanError, Option<Span>)> {
        let warnings = self.check_memory()?;
        Ok(Plan { warnings, ..self.plan() })
    }

    /// The plan so far.
    pub fn plan(&self) -> Plan {
        let groupid = self.group_id();
        let group = (!self.users.is_empty()).then(|| GroupPlan {
            exists: self.snap.groups.iter().any(|g| g.groupid == groupid),
            comment: Marker::new(&[("lab", self.lab())]).to_string(),
            groupid,
        });
        Plan {
            lab: Some(self.settings.clone()),
            group,
            users: self.users.clone(),
            bridges: self.bridges.clone(),
            vms: self.vms.clone(),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{BridgeSnap, ChangeKind, Diff, NodeSnap, StorageSnap};
    use crate::pve::VmConfig;

    const GIB: u64 = 1 << 30;

    /// Three 64 GiB nodes with vmbr0, a shared storage, the template 103 `debian-12`, and
    /// optionally a running guest of someone else on pve1: a cluster read by hand, no
    /// simulator.
    fn cluster(busy_pve1_gib: u64) -> Arc<Snapshot> {
        let names = ["pve1", "pve2", "pve3"];
        let vm = |vmid: u32, name: &str, template: bool, maxmem: u64, status: &str, config: serde_json::Value| {
            let mut v = VmSnap {
                vmid,
                node: "pve1".into(),
                name: name.into(),
                template,
                maxmem,
                status: status.into(),
                tags: Vec::new(),
                pool: None,
                lock: None,
                uptime: 0,
                config: None,
                owner: None,
            };
            v.set_config(VmConfig(serde_json::from_value(config).unwrap()));
            v
        };
        let template = serde_json::json!({
            "memory": 1024, "template": 1, "scsi0": "nfs:base-103-disk-0,size=8G",
            "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
        });
        let mut vms = vec![vm(103, "debian-12", true, GIB, "stopped", template)];
        if busy_pve1_gib > 0 {
            vms.push(vm(500, "other-course", false, busy_pve1_gib * GIB, "running", serde_json::json!({})));
        }
        let vmbr0 = BridgeSnap { iface: "vmbr0".into(), active: true, vlan_aware: false, comments: None, owner: None };
        Arc::new(Snapshot {
            nodes: names
                .iter()
                .map(|n| NodeSnap { name: n.to_string(), online: true, maxmem: 64 * GIB, mem: 0, maxcpu: 16 })
                .collect(),
            storages: vec![StorageSnap {
                id: "nfs".into(),
                kind: "nfs".into(),
                shared: true,
                content: vec!["images".into()],
                nodes: names.iter().map(|n| n.to_string()).collect(),
            }],
            vms,
            bridges: names.iter().map(|n| (n.to_string(), vec![vmbr0.clone()])).collect::<BTreeMap<_, _>>(),
            realms: vec!["pam".into(), "pve".into()],
            ..Snapshot::default()
        })
    }

    fn spec(name: &str, memory_mib: u64, start: bool) -> CloneSpec {
        CloneSpec {
            template: TemplateRef::Name("debian-12".into()),
            name: name.into(),
            device: Device::Linux,
            nets: vec!["vmbr0".into()],
            full: false,
            storage: None,
            memory: Some(memory_mib),
            cores: None,
            start,
            tags: Vec::new(),
            span: None,
        }
    }

    /// `students` stands of `vms` VMs of `memory_mib` each.
    fn class(
        snap: Arc<Snapshot>,
        students: usize,
        vms: usize,
        memory_mib: u64,
        start: bool,
    ) -> Result<Plan, PlanError> {
        let mut p = Planner::new(snap, "lab").unwrap();
        for i in 1..=students {
            let user = format!("s{i}@pve");
            p.add_user(&user)?;
            p.place_balanced(&user, None)?;
            for v in 0..vms {
                p.clone_vm(&user, spec(&format!("vm{v}"), memory_mib, start))?;
            }
        }
        p.finish().map_err(|(e, _)| e)
    }

    #[test]
    fn planning_is_pure_it_asks_for_passwords_and_gives_the_same_plan_twice() {
        let a = class(cluster(0), 6, 2, 1024, true).unwrap();
        let b = class(cluster(0), 6, 2, 1024, true).unwrap();
        assert_eq!(a, b, "the same cluster and script plan the same, VMIDs, nodes and MACs included");
        assert!(a.users.iter().all(|u| u.new_password && u.password.is_none()), "passwords come from the edge");
        let mut filled = a.clone();
        filled.fill_passwords(|len| "x".repeat(len));
        assert!(filled.users.iter().all(|u| u.password.as_deref() == Some("xxxxxxxxxxxx")));
    }

    #[test]
    fn stands_spread_by_memory_and_a_busy_node_gets_fewer() {
        let plan = class(cluster(0), 6, 2, 2048, true).unwrap();
        let on = |p: &Plan, n: &str| p.users.iter().filter(|u| u.node.as_deref() == Some(n)).count();
        assert_eq!([on(&plan, "pve1"), on(&plan, "pve2"), on(&plan, "pve3")], [2, 2, 2]);
        let plan = class(cluster(40), 6, 2, 2048, true).unwrap();
        assert!(on(&plan, "pve1") < on(&plan, "pve2"), "pve1 runs 40 GiB of another course");
    }

    #[test]
    fn memory_counts_what_runs_and_says_how_many_stands_fit() {
        // 30 stands × 8 GiB = 240 GiB on 3 × 64 GiB: fine while stopped.
        assert!(class(cluster(0), 30, 2, 4096, false).is_ok());
        match class(cluster(0), 30, 2, 4096, true) {
            Err(PlanError::NoMemory { fit, stands, .. }) => assert_eq!((fit, stands), (24, 30)),
            other => panic!("expected NoMemory, got {other:?}"),
        }
    }

    #[test]
    fn a_fresh_plan_diffs_to_creations_only() {
        let snap = cluster(0);
        let plan = class(snap.clone(), 2, 1, 1024, true).unwrap();
        let diff = Diff::compute(&plan, &snap);
        assert!(diff.changes.iter().all(|c| c.kind == ChangeKind::Create), "{:?}", diff.changes);
        assert_eq!(diff.count(ChangeKind::Create), 1 + 2 * 3 + 2, "group; user, pool, ACL each; two VMs");
    }
}
