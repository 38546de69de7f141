//! One consistent read of the cluster before a script runs, in a handful of requests.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use std::collections::BTreeSet;

use super::marker::{Marker, STAND_TAG};
use super::owner::Owner;
use crate::pve::{AclEntry, NetDevice, PveError, PveExt, VmConfig, split_tags};

/// A node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeSnap {
    /// Name.
    pub name: String,
    /// Online.
    pub online: bool,
    /// Memory, bytes.
    pub maxmem: u64,
    /// Used memory, bytes.
    pub mem: u64,
    /// CPUs.
    pub maxcpu: u64,
}

/// A storage.
#[derive(Clone, Debug, Serialize)]
pub struct StorageSnap {
    /// Id.
    pub id: String,
    /// Plugin type.
    pub kind: String,
    /// Shared between nodes.
    pub shared: bool,
    /// Content types.
    pub content: Vec<String>,
    /// Nodes where it is available.
    pub nodes: Vec<String>,
}

/// A guest.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VmSnap {
    /// VMID.
    pub vmid: u32,
    /// Node.
    pub node: String,
    /// Name.
    pub name: String,
    /// Template flag.
    pub template: bool,
    /// Memory, bytes.
    pub maxmem: u64,
    /// `running` / `stopped`.
    pub status: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Pool.
    pub pool: Option<String>,
    /// Config lock.
    pub lock: Option<String>,
    /// Seconds running.
    pub uptime: u64,
    /// Config (templates and `stand`'s VMs only, unless read with
    /// [`Snapshot::read_all_configs`]); set with [`VmSnap::set_config`].
    #[serde(skip)]
    pub config: Option<VmConfig>,
    /// Whose it is, from the marker in its description (read with the config).
    pub owner: Option<Owner>,
    /// Its snapshots' names, when they were read (a `stand` VM whose latest snapshot is not
    /// its lab's baseline: see [`VmSnap::has_snapshot`]).
    #[serde(skip)]
    pub snapshots: Option<Vec<String>>,
}

impl VmSnap {
    /// Whether the VM has snapshot `name`: no `parent` in its config means no snapshot at all,
    /// a `parent` of that name means it (the latest one); else the snapshots read, if any
    /// (`None`: not known).
    pub fn has_snapshot(&self, name: &str) -> Option<bool> {
        match self.config.as_ref()?.get("parent") {
            None => Some(false),
            Some(p) if p == name => Some(true),
            Some(_) => self.snapshots.as_ref().map(|l| l.iter().any(|s| s == name)),
        }
    }

    /// Sets the config and reads the owner from it. The description carries the marker
    /// from the clone call on (the tags come a moment later, with the config), so a VM
    /// whose clone was interrupted is still recognized.
    pub fn set_config(&mut self, config: VmConfig) {
        self.owner = if self.template { None } else { config.get("description").and_then(|d| Owner::of_vm(&d)) };
        self.config = Some(config);
    }

    /// Whose it is (`None`: not `stand`'s, or its config was not read).
    pub fn owner(&self) -> Option<&Owner> {
        self.owner.as_ref()
    }

    /// Storages of its disks.
    pub fn disk_storages(&self) -> Vec<String> {
        let Some(cfg) = &self.config else { return Vec::new() };
        let mut out: Vec<String> = cfg
            .0
            .iter()
            .filter(|(k, _)| {
                ["scsi", "virtio", "sata", "ide", "efidisk"].iter().any(|p| k.starts_with(p))
                    && k.chars().last().is_some_and(|c| c.is_ascii_digit())
            })
            .filter_map(|(_, v)| v.as_str().map(str::to_string))
            .filter(|v| !v.contains("media=cdrom") && !v.starts_with("none"))
            .filter_map(|v| v.split(':').next().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Its NICs (from the config).
    pub fn nets(&self) -> Vec<(u32, NetDevice)> {
        self.config
            .as_ref()
            .map(|c| c.nets().into_iter().filter_map(|(i, s)| s.parse().ok().map(|d| (i, d))).collect())
            .unwrap_or_default()
    }
}

/// A bridge on a node.
#[derive(Clone, Debug, Serialize)]
pub struct BridgeSnap {
    /// Interface.
    pub iface: String,
    /// Active now.
    pub active: bool,
    /// VLAN aware.
    pub vlan_aware: bool,
    /// Comment (marker).
    pub comments: Option<String>,
    /// Whose it is, from the marker in its comment.
    pub owner: Option<Owner>,
}

/// A user.
#[derive(Clone, Debug, Serialize)]
pub struct UserSnap {
    /// `name@realm`.
    pub userid: String,
    /// Comment (marker).
    pub comment: Option<String>,
    /// Groups the user is in.
    pub groups: Vec<String>,
    /// The labs that have the user, from the marker in its comment.
    pub owner: Option<Owner>,
    /// Account expiry, Unix seconds (0 = never).
    #[serde(default)]
    pub expire: u64,
    /// Their name (PVE's `firstname` and `lastname`), when set.
    #[serde(default)]
    pub name: Option<crate::roster::FullName>,
}

/// A group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSnap {
    /// Group id.
    pub groupid: String,
    /// Comment (marker).
    pub comment: Option<String>,
    /// Its lab, from the marker in its comment.
    pub owner: Option<Owner>,
}

/// A pool.
#[derive(Clone, Debug, Serialize)]
pub struct PoolSnap {
    /// Pool id.
    pub poolid: String,
    /// Comment (marker).
    pub comment: Option<String>,
    /// Whose it is, from the marker in its comment.
    pub owner: Option<Owner>,
}

/// VM configs read at once while taking a snapshot.
const CONFIG_READS_AT_ONCE: usize = 16;

/// What `stand` knows of the cluster when planning.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// Nodes.
    pub nodes: Vec<NodeSnap>,
    /// Storages.
    pub storages: Vec<StorageSnap>,
    /// Guests.
    pub vms: Vec<VmSnap>,
    /// Bridges per node (pending ones included).
    pub bridges: BTreeMap<String, Vec<BridgeSnap>>,
    /// Pending network diff per node, when there is one.
    pub pending: BTreeMap<String, String>,
    /// Users.
    pub users: Vec<UserSnap>,
    /// Pools.
    pub pools: Vec<PoolSnap>,
    /// Realm names (`pam`, `pve`, ...).
    pub realms: Vec<String>,
    /// Groups.
    pub groups: Vec<GroupSnap>,
    /// ACL entries.
    pub acl: Vec<AclEntry>,
    /// SDN zones (empty where SDN is not installed or not visible).
    #[serde(default)]
    pub zones: Vec<ZoneSnap>,
    /// SDN VNets.
    #[serde(default)]
    pub vnets: Vec<VnetSnap>,
}

/// An SDN zone.
#[derive(Clone, Debug, Serialize)]
pub struct ZoneSnap {
    /// Id.
    pub zone: String,
    /// `vxlan`, `simple`, `vlan`, ...
    pub kind: String,
    /// Pending state (`new`, `changed`, `deleted`), when not applied.
    pub state: Option<String>,
}

/// An SDN VNet.
#[derive(Clone, Debug, Serialize)]
pub struct VnetSnap {
    /// Id.
    pub vnet: String,
    /// Zone.
    pub zone: String,
    /// VLAN tag or VXLAN VNI.
    pub tag: Option<u32>,
    /// Pending state (`new`, `changed`, `deleted`), when not applied.
    pub state: Option<String>,
    /// Whose it is, from the marker in its `alias`.
    pub owner: Option<Owner>,
}

impl Snapshot {
    /// Reads the cluster: resources, storage config, networks of online nodes, users, ACLs,
    /// pools, and the configs of templates and `stand`'s VMs.
    pub async fn take(pve: &(impl PveExt + ?Sized)) -> Result<Snapshot, PveError> {
        let resources = pve.resources(None).await?;
        let storage_cfg = pve.storage_config().await?;
        let mut snap = Snapshot::default();
        for r in &resources {
            match r.kind.as_str() {
                "node" => snap.nodes.push(NodeSnap {
                    name: r.node.clone().unwrap_or_default(),
                    online: r.status.as_deref() == Some("online"),
                    maxmem: r.maxmem,
                    mem: r.mem,
                    maxcpu: r.maxcpu,
                }),
                "qemu" => snap.vms.push(VmSnap {
                    vmid: r.vmid.unwrap_or(0),
                    node: r.node.clone().unwrap_or_default(),
                    name: r.name.clone().unwrap_or_default(),
                    template: r.template,
                    maxmem: r.maxmem,
                    status: r.status.clone().unwrap_or_default(),
                    tags: r.tags.as_deref().map(split_tags).unwrap_or_default(),
                    pool: r.pool.clone(),
                    lock: r.lock.clone(),
                    uptime: r.uptime,
                    config: None,
                    owner: None,
                    snapshots: None,
                }),
                _ => {}
            }
        }
        let node_names: Vec<String> = snap.nodes.iter().map(|n| n.name.clone()).collect();
        for s in storage_cfg {
            let nodes = s
                .nodes
                .as_deref()
                .map(|n| n.split(',').map(str::to_string).collect())
                .unwrap_or_else(|| node_names.clone());
            snap.storages.push(StorageSnap {
                id: s.storage,
                kind: s.kind,
                shared: s.shared,
                content: s.content.split(',').map(str::to_string).collect(),
                nodes,
            });
        }
        for node in snap.nodes.iter().filter(|n| n.online) {
            let net = pve.network(&node.name).await?;
            let bridges = net
                .ifaces
                .into_iter()
                .filter(|i| i.kind == "bridge" || i.kind == "OVSBridge")
                .map(|i| BridgeSnap {
                    iface: i.iface,
                    active: i.active,
                    vlan_aware: i.bridge_vlan_aware,
                    owner: i.comments.as_deref().and_then(Owner::of_bridge),
                    comments: i.comments.map(|c| c.trim_end().to_string()),
                })
                .collect();
            snap.bridges.insert(node.name.clone(), bridges);
            if let Some(c) = net.changes {
                snap.pending.insert(node.name.clone(), c);
            }
        }
        snap.users = pve
            .users()
            .await?
            .into_iter()
            .map(|u| {
                let groups = match &u.groups {
                    Some(serde_json::Value::String(s)) => {
                        s.split(',').filter(|g| !g.is_empty()).map(str::to_string).collect()
                    }
                    Some(serde_json::Value::Array(a)) => {
                        a.iter().filter_map(|g| g.as_str().map(str::to_string)).collect()
                    }
                    _ => Vec::new(),
                };
                let name = match (u.firstname.as_deref(), u.lastname.as_deref()) {
                    (None, None) => None,
                    (f, l) => Some(crate::roster::FullName::from_pve(f.unwrap_or_default(), l.unwrap_or_default())),
                };
                UserSnap {
                    name,
                    userid: u.userid,
                    owner: u.comment.as_deref().and_then(Owner::of_user),
                    comment: u.comment,
                    groups,
                    expire: u.expire,
                }
            })
            .collect();
        snap.groups = pve
            .groups()
            .await?
            .into_iter()
            .map(|(groupid, comment)| GroupSnap {
                groupid,
                owner: comment.as_deref().and_then(Owner::of_group),
                comment,
            })
            .collect();
        snap.realms = pve.realms().await?;
        snap.pools = pve
            .pools()
            .await?
            .into_iter()
            .map(|p| PoolSnap {
                poolid: p.poolid,
                owner: p.comment.as_deref().and_then(Owner::of_pool),
                comment: p.comment,
            })
            .collect();
        // Configs of templates and of VMs that may be ours: tagged, in one of our pools, or
        // still being cloned (the description has the marker from the clone call on; the
        // pool comes at the end of the clone, the tags after it).
        let our_pools: Vec<String> =
            snap.pools.iter().filter(|p| p.owner.is_some()).map(|p| p.poolid.clone()).collect();
        snap.read_configs(pve, |vm| {
            vm.template
                || vm.tags.iter().any(|t| t == STAND_TAG)
                || vm.pool.as_ref().is_some_and(|p| our_pools.contains(p))
                || vm.lock.as_deref() == Some("clone")
        })
        .await?;
        snap.acl = pve.acl().await?;
        snap.read_sdn(pve).await;
        snap.read_snapshot_lists(pve).await?;
        Ok(snap)
    }

    /// Reads the snapshot lists of the `stand` VMs whose latest snapshot is not their lab's
    /// baseline (`snapshot` in the group's marker, else `start`), so that a missing baseline is
    /// known without reading every VM's list: most VMs have none but the baseline, or none.
    async fn read_snapshot_lists(&mut self, pve: &(impl PveExt + ?Sized)) -> Result<(), PveError> {
        let chosen: Vec<usize> = (0..self.vms.len())
            .filter(|&i| {
                let vm = &self.vms[i];
                let Some(Owner::Vm { lab, .. }) = vm.owner() else { return false };
                let baseline = self.lab_setting(lab, "snapshot").unwrap_or_else(|| "start".into());
                vm.has_snapshot(&baseline).is_none()
            })
            .collect();
        let lists: Vec<(usize, Vec<serde_json::Value>)> = futures::stream::iter(chosen.into_iter().map(|i| {
            let (node, vmid) = (self.vms[i].node.clone(), self.vms[i].vmid);
            async move { pve.snapshots(&node, vmid).await.map(|l| (i, l)) }
        }))
        .buffer_unordered(CONFIG_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        for (i, list) in lists {
            let names = list.iter().filter_map(|s| s["name"].as_str()).filter(|n| *n != "current");
            self.vms[i].snapshots = Some(names.map(str::to_string).collect());
        }
        Ok(())
    }

    /// [`Snapshot::take`] with the config of every guest on an online node (a copy's linked
    /// clones, a bridge's users: anyone's VMs).
    pub async fn take_all(pve: &(impl PveExt + ?Sized)) -> Result<Snapshot, PveError> {
        let mut snap = Snapshot::take(pve).await?;
        let nodes: Vec<String> = snap.nodes.iter().map(|n| n.name.clone()).collect();
        snap.read_all_configs(pve, &nodes).await?;
        Ok(snap)
    }

    /// Pending SDN changes `stand` did not make, which `PUT /cluster/sdn` would apply too:
    /// VNets without a marker, and zones other than `ours`.
    pub fn foreign_sdn_pending(&self, ours: &[&str]) -> Vec<String> {
        let vnets =
            self.vnets.iter().filter(|v| v.state.is_some() && v.owner.is_none()).map(|v| format!("vnet {}", v.vnet));
        let zones = self
            .zones
            .iter()
            .filter(|z| z.state.is_some() && !ours.contains(&z.zone.as_str()))
            .map(|z| format!("zone {}", z.zone));
        vnets.chain(zones).collect()
    }

    /// Reads the SDN zones and VNets; a cluster without SDN (or a token that may not see
    /// it) has none.
    async fn read_sdn(&mut self, pve: &(impl PveExt + ?Sized)) {
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
        if let Ok(zones) = pve.sdn_zones().await {
            self.zones = zones
                .iter()
                .map(|z| ZoneSnap {
                    zone: text(z, "zone").unwrap_or_default(),
                    kind: text(z, "type").unwrap_or_default(),
                    state: text(z, "state"),
                })
                .collect();
        }
        if let Ok(vnets) = pve.sdn_vnets().await {
            self.vnets = vnets
                .iter()
                .map(|v| VnetSnap {
                    vnet: text(v, "vnet").unwrap_or_default(),
                    zone: text(v, "zone").unwrap_or_default(),
                    tag: v["tag"].as_u64().or_else(|| v["tag"].as_str().and_then(|t| t.parse().ok())).map(|t| t as u32),
                    state: text(v, "state"),
                    owner: text(v, "alias").as_deref().and_then(Owner::of_bridge),
                })
                .collect();
        }
    }

    /// Reads the configs not read yet of the guests on `nodes` (online ones), so that
    /// every NIC there is known: `down` keeps a bridge any VM is wired to, whoever's it is.
    pub async fn read_all_configs(&mut self, pve: &(impl PveExt + ?Sized), nodes: &[String]) -> Result<(), PveError> {
        self.read_configs(pve, |vm| nodes.contains(&vm.node)).await
    }

    /// Reads, 16 at a time, the configs not read yet of the guests on online nodes that
    /// `wanted` picks.
    async fn read_configs(
        &mut self,
        pve: &(impl PveExt + ?Sized),
        wanted: impl Fn(&VmSnap) -> bool,
    ) -> Result<(), PveError> {
        let online: Vec<&str> = self.nodes.iter().filter(|n| n.online).map(|n| n.name.as_str()).collect();
        let chosen: Vec<usize> = (0..self.vms.len())
            .filter(|&i| {
                let vm = &self.vms[i];
                vm.config.is_none() && online.contains(&vm.node.as_str()) && wanted(vm)
            })
            .collect();
        let configs: Vec<(usize, VmConfig)> = futures::stream::iter(chosen.into_iter().map(|i| {
            let (node, vmid) = (self.vms[i].node.clone(), self.vms[i].vmid);
            async move { pve.vm_config(&node, vmid).await.map(|c| (i, c)) }
        }))
        .buffer_unordered(CONFIG_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        for (i, config) in configs {
            self.vms[i].set_config(config);
        }
        Ok(())
    }

    /// Every owner on the cluster: VMs, bridges, VNets, pools, users, groups.
    pub fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.vms
            .iter()
            .filter_map(VmSnap::owner)
            .chain(self.bridges.values().flatten().filter_map(|b| b.owner.as_ref()))
            .chain(self.vnets.iter().filter_map(|v| v.owner.as_ref()))
            .chain(self.pools.iter().filter_map(|p| p.owner.as_ref()))
            .chain(self.users.iter().filter_map(|u| u.owner.as_ref()))
            .chain(self.groups.iter().filter_map(|g| g.owner.as_ref()))
    }

    /// The labs whose markers are on the cluster.
    pub fn labs(&self) -> BTreeSet<String> {
        self.owners().flat_map(Owner::labs).collect()
    }

    /// The students of lab `lab` on the cluster (by the owners of its VMs and pools).
    pub fn students(&self, lab: &str) -> BTreeSet<String> {
        let of_lab = |o: &Owner| o.has_lab(lab).then(|| o.user().map(str::to_string)).flatten();
        self.vms
            .iter()
            .filter_map(|v| v.owner().and_then(of_lab))
            .chain(self.pools.iter().filter_map(|p| p.owner.as_ref().and_then(of_lab)))
            .collect()
    }

    /// Whether anything on the cluster but shared bridges still carries lab `lab`'s marker.
    pub fn lab_present(&self, lab: &str) -> bool {
        self.owners().any(|o| !matches!(o, Owner::Shared { .. }) && o.has_lab(lab))
    }

    /// The last day of `lab`, from its group's marker (`expires=2026-12-31`).
    pub fn lab_expires(&self, lab: &str) -> Option<String> {
        self.lab_setting(lab, "expires")
    }

    /// A setting of `lab` recorded in its group's marker (`expires`, `teacher`,
    /// `student_reset`).
    pub fn lab_setting(&self, lab: &str, key: &str) -> Option<String> {
        let group = self.groups.iter().find(|g| matches!(&g.owner, Some(Owner::Group { lab: l }) if l == lab))?;
        Marker::parse(group.comment.as_deref()?)?.get(key).map(str::to_string)
    }

    /// The VMs of lab `lab`.
    pub fn lab_vms<'a, 'l>(&'a self, lab: &'l str) -> impl Iterator<Item = &'a VmSnap> + use<'a, 'l> {
        self.vms.iter().filter(move |v| v.owner().is_some_and(|o| o.has_lab(lab)))
    }

    /// The guests on `node` wired to bridge `iface` (any VLAN of it), and whether every
    /// guest's config there is known (an unread config may be wired to it too).
    pub fn vms_on_bridge(&self, node: &str, iface: &str) -> (Vec<u32>, bool) {
        let mut on = Vec::new();
        let mut known = true;
        for vm in self.vms.iter().filter(|v| v.node == node) {
            if vm.config.is_none() {
                known = false;
            } else if vm.nets().iter().any(|(_, d)| d.bridge.as_deref() == Some(iface)) {
                on.push(vm.vmid);
            }
        }
        (on, known)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeSnap> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A storage by id.
    pub fn storage(&self, id: &str) -> Option<&StorageSnap> {
        self.storages.iter().find(|s| s.id == id)
    }

    /// Whether `vm` has disks and all of them are on shared storage (NFS, Ceph, ...).
    pub fn on_shared_storage(&self, vm: &VmSnap) -> bool {
        let storages = vm.disk_storages();
        !storages.is_empty() && storages.iter().all(|s| self.storage(s).is_some_and(|x| x.shared))
    }

    /// A guest by VMID.
    pub fn vm(&self, vmid: u32) -> Option<&VmSnap> {
        self.vms.iter().find(|v| v.vmid == vmid)
    }

    /// A user.
    pub fn user(&self, userid: &str) -> Option<&UserSnap> {
        self.users.iter().find(|u| u.userid == userid)
    }

    /// A pool.
    pub fn pool(&self, poolid: &str) -> Option<&PoolSnap> {
        self.pools.iter().find(|p| p.poolid == poolid)
    }

    /// A bridge on a node.
    pub fn bridge(&self, node: &str, iface: &str) -> Option<&BridgeSnap> {
        self.bridges.get(node).and_then(|b| b.iter().find(|x| x.iface == iface))
    }

    /// Memory (bytes) that running guests other than lab `except`'s hold on `node`: PVE
    /// spends a node's RAM on running guests only.
    pub fn running_memory(&self, node: &str, except_lab: &str) -> u64 {
        self.vms
            .iter()
            .filter(|v| v.node == node && v.status == "running" && !v.owner().is_some_and(|o| o.has_lab(except_lab)))
            .map(|v| v.maxmem)
            .sum()
    }
}
