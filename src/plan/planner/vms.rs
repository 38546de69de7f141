//! `clone`: the template, VMID, NICs (and EcoRouter MACs), settings, and what changes on a
//! VM that exists.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{CloneSpec, Device, PlanError, Planner, TemplateRef, invalid};
use crate::plan::marker::{Marker, STAND_TAG, lab_tag};
use crate::plan::model::VmPlan;
use crate::plan::names::dns_safe;
use crate::plan::owner::Owner;
use crate::plan::snapshot::{Snapshot, VmSnap};
use crate::plan::templates;
use crate::plan::translit::latin;
use crate::pve::{NetDevice, NicModel};

impl Planner {
    /// The template a clone on `node` comes from ([`resolve_template`]).
    fn resolve_template(&self, t: &TemplateRef, node: &str) -> Result<VmSnap, PlanError> {
        resolve_template(&self.snap, t, node)
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
        let private_nets = spec.nets.iter().any(|n| self.is_private(userid, n));
        let node = self.vm_node(userid, spec.node.as_deref(), private_nets)?;
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
        let tpl_number = |k: &str| tpl.config.as_ref().and_then(|c| c.get(k)).and_then(|x| x.parse::<u64>().ok());
        let cores =
            spec.cores.map(u64::from).or_else(|| tpl_number("cores")).unwrap_or(1) * tpl_number("sockets").unwrap_or(1);
        self.take_quota(userid, &spec.name, memory_mib, cores)?;
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
        // NICs `stand uplinks off` cut stay cut through a re-run of `up` (until `uplinks on`).
        for nic in existing.as_ref().map(crate::plan::course::cut_nics).unwrap_or_default() {
            let index = nic.strip_prefix("net").and_then(|n| n.parse::<usize>().ok());
            if let Some(Some(value)) = index.and_then(|i| nets.get_mut(i))
                && let Ok(mut dev) = value.parse::<NetDevice>()
            {
                dev.link_down = true;
                *value = dev.to_string();
            }
        }

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
            baseline: None,
        };
        let mut vm = vm;
        // A new VM gets the lab's baseline before its first start; one that exists without it
        // (an `up` interrupted or failed before its snapshot) gets it now. A VM that has it
        // keeps it: it is never taken again.
        let missing = match (&existing, &self.settings.baseline) {
            (None, _) => true,
            (Some(e), Some(name)) => e.has_snapshot(name) == Some(false),
            (Some(_), None) => false,
        };
        if missing && let Some(name) = &self.settings.baseline {
            match self.snapshot_capable(&tpl, spec.storage.as_deref()) {
                true => vm.baseline = Some(name.clone()),
                false if existing.is_none() => self.no_baseline.push(vm.name.clone()),
                false => {}
            }
        }
        self.vms.push(vm.clone());
        Ok(vm)
    }
}

impl Planner {
    /// Whether a clone of `tpl` (onto `storage`, else the template's) can take snapshots:
    /// pve-storage's `volume_has_feature` has none on thick LVM, nor for raw files.
    fn snapshot_capable(&self, tpl: &VmSnap, storage: Option<&str>) -> bool {
        let storages = match storage {
            Some(s) => vec![s.to_string()],
            None => tpl.disk_storages(),
        };
        let thick = storages.iter().any(|s| self.snap.storage(s).is_some_and(|st| st.kind == "lvm"));
        let raw = storage.is_none()
            && tpl.config.as_ref().is_some_and(|c| {
                c.0.values()
                    .any(|v| v.as_str().is_some_and(|d| d.split(',').next().is_some_and(|vol| vol.ends_with(".raw"))))
            });
        !thick && !raw
    }
}

/// The template a clone on `node` comes from. A template named by VMID, or by name, is
/// taken from its up-to-date copy on the node's own storage when there is one (`stand
/// templates sync`): linked clones then take that storage's lock, not the shared
/// storage's cluster-wide one. A copy older than its original is used only when nothing
/// else has the name.
pub fn resolve_template(snap: &Snapshot, t: &TemplateRef, node: &str) -> Result<VmSnap, PlanError> {
    let templates: Vec<&VmSnap> = snap.vms.iter().filter(|v| v.template).collect();
    let list = || templates.iter().map(|t| format!("{} {}", t.vmid, t.name)).collect::<Vec<_>>().join(", ");
    let shared = |v: &VmSnap| snap.on_shared_storage(v);
    let copy = |v: &VmSnap| templates::copy_state(snap, v);
    match t {
        TemplateRef::Id(id) => {
            let vm = snap.vm(*id).ok_or_else(|| PlanError::Unknown {
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
            if vm.node == node && !shared(vm) {
                return Ok(vm.clone());
            }
            let local_copy = |v: &&&VmSnap| v.node == node && !shared(v) && copy(v) == Some((*id, true));
            Ok(templates.iter().find(local_copy).copied().unwrap_or(vm).clone())
        }
        TemplateRef::Name(name) => {
            let mut named: Vec<&&VmSnap> = templates.iter().filter(|v| v.name == *name).collect();
            if named.iter().any(|v| copy(v).is_none_or(|(_, fresh)| fresh)) {
                named.retain(|v| copy(v).is_none_or(|(_, fresh)| fresh));
            }
            named
                .iter()
                .find(|v| v.node == node && !shared(v))
                .or_else(|| named.iter().find(|v| v.node == node))
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
