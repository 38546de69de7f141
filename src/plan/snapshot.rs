//! One consistent read of the cluster before a script runs, in a handful of requests.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::marker::{Marker, STAND_TAG};
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
#[derive(Clone, Debug, Serialize)]
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
    /// Config (templates and `stand`'s VMs only).
    #[serde(skip)]
    pub config: Option<VmConfig>,
}

impl VmSnap {
    /// The ownership marker of a `stand` VM. The description carries it from the clone
    /// call on (the tags come a moment later, with the config), so a VM whose clone was
    /// interrupted is still recognized.
    pub fn marker(&self) -> Option<Marker> {
        if self.template {
            return None;
        }
        self.config.as_ref().and_then(|c| c.get("description")).and_then(|d| Marker::parse(&d))
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
}

/// A group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSnap {
    /// Group id.
    pub groupid: String,
    /// Comment (marker).
    pub comment: Option<String>,
}

/// A pool.
#[derive(Clone, Debug, Serialize)]
pub struct PoolSnap {
    /// Pool id.
    pub poolid: String,
    /// Comment (marker).
    pub comment: Option<String>,
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
                UserSnap { userid: u.userid, comment: u.comment, groups }
            })
            .collect();
        snap.groups =
            pve.groups().await?.into_iter().map(|(groupid, comment)| GroupSnap { groupid, comment }).collect();
        snap.realms = pve.realms().await?;
        snap.pools =
            pve.pools().await?.into_iter().map(|p| PoolSnap { poolid: p.poolid, comment: p.comment }).collect();
        // Configs of templates and of VMs that may be ours: tagged, in one of our pools, or
        // still being cloned (the description has the marker from the clone call on; the
        // pool comes at the end of the clone, the tags after it).
        let online: Vec<String> = snap.nodes.iter().filter(|n| n.online).map(|n| n.name.clone()).collect();
        let our_pools: Vec<&str> = snap
            .pools
            .iter()
            .filter(|p| p.comment.as_deref().and_then(Marker::parse).is_some())
            .map(|p| p.poolid.as_str())
            .collect();
        let wanted: Vec<usize> = (0..snap.vms.len())
            .filter(|&i| {
                let vm = &snap.vms[i];
                let maybe_ours = vm.tags.iter().any(|t| t == STAND_TAG)
                    || vm.pool.as_deref().is_some_and(|p| our_pools.contains(&p))
                    || vm.lock.as_deref() == Some("clone");
                (vm.template || maybe_ours) && online.contains(&vm.node)
            })
            .collect();
        let configs: Vec<(usize, VmConfig)> = futures::stream::iter(wanted.into_iter().map(|i| {
            let (node, vmid) = (snap.vms[i].node.clone(), snap.vms[i].vmid);
            async move { pve.vm_config(&node, vmid).await.map(|c| (i, c)) }
        }))
        .buffer_unordered(CONFIG_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        for (i, config) in configs {
            snap.vms[i].config = Some(config);
        }
        snap.acl = pve.acl().await?;
        Ok(snap)
    }

    /// Reads the configs not read yet of the guests on `nodes` (online ones), so that
    /// every NIC there is known: `down` keeps a bridge any VM is wired to, whoever's it is.
    pub async fn read_all_configs(&mut self, pve: &(impl PveExt + ?Sized), nodes: &[String]) -> Result<(), PveError> {
        let online: Vec<&str> = self.nodes.iter().filter(|n| n.online).map(|n| n.name.as_str()).collect();
        let wanted: Vec<usize> = (0..self.vms.len())
            .filter(|&i| {
                let vm = &self.vms[i];
                vm.config.is_none() && nodes.contains(&vm.node) && online.contains(&vm.node.as_str())
            })
            .collect();
        let configs: Vec<(usize, VmConfig)> = futures::stream::iter(wanted.into_iter().map(|i| {
            let (node, vmid) = (self.vms[i].node.clone(), self.vms[i].vmid);
            async move { pve.vm_config(&node, vmid).await.map(|c| (i, c)) }
        }))
        .buffer_unordered(CONFIG_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        for (i, config) in configs {
            self.vms[i].config = Some(config);
        }
        Ok(())
    }

    /// The labs whose markers are on the cluster (VMs, pools, groups, users, bridges).
    pub fn labs(&self) -> std::collections::BTreeSet<String> {
        let labs_of = |c: Option<&str>| c.and_then(Marker::parse).map(|m| m.all_labs()).unwrap_or_default();
        self.vms
            .iter()
            .flat_map(|v| v.marker().map(|m| m.all_labs()).unwrap_or_default())
            .chain(self.pools.iter().flat_map(|p| labs_of(p.comment.as_deref())))
            .chain(self.groups.iter().flat_map(|g| labs_of(g.comment.as_deref())))
            .chain(self.users.iter().flat_map(|u| labs_of(u.comment.as_deref())))
            .chain(self.bridges.values().flatten().flat_map(|b| labs_of(b.comments.as_deref())))
            .collect()
    }

    /// The students of lab `lab` on the cluster (by the markers of its VMs and pools).
    pub fn students(&self, lab: &str) -> std::collections::BTreeSet<String> {
        let user_of = |m: Marker| (m.get("lab") == Some(lab)).then(|| m.get("user").map(str::to_string)).flatten();
        self.vms
            .iter()
            .filter_map(|v| v.marker().and_then(user_of))
            .chain(self.pools.iter().filter_map(|p| p.comment.as_deref().and_then(Marker::parse).and_then(user_of)))
            .collect()
    }

    /// Whether anything on the cluster still carries lab `lab`'s marker (VMs, pools,
    /// users, groups).
    pub fn lab_present(&self, lab: &str) -> bool {
        let marked = |c: Option<&str>| c.and_then(Marker::parse).is_some_and(|m| m.has_lab(lab));
        self.vms.iter().any(|v| v.marker().is_some_and(|m| m.has_lab(lab)))
            || self.pools.iter().any(|p| marked(p.comment.as_deref()))
            || self.users.iter().any(|u| marked(u.comment.as_deref()))
            || self.groups.iter().any(|g| marked(g.comment.as_deref()))
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
            .filter(|v| v.node == node && v.status == "running" && !v.marker().is_some_and(|m| m.has_lab(except_lab)))
            .map(|v| v.maxmem)
            .sum()
    }
}
