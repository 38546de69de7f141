//! The simulated cluster's data: what pmxcfs, the nodes and the task logs would hold.
//! Plain serde data, so it can be saved between `stand --sim` commands.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::fixture::{Fixture, VmFixture};
use super::guest::Guest;

/// A node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// CPU threads.
    pub cpus: u32,
    /// Memory, bytes.
    pub memory: u64,
    /// Online.
    pub online: bool,
}

/// A storage of `storage.cfg`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Storage {
    /// Plugin type.
    pub kind: String,
    /// Content types.
    pub content: Vec<String>,
    /// Shared between nodes.
    pub shared: bool,
    /// Nodes it is available on (empty: all).
    pub nodes: Vec<String>,
    /// Size, bytes.
    pub size: u64,
    /// Full-clone copy speed, bytes per second.
    pub bandwidth: u64,
}

impl Storage {
    /// Whether the storage is available on `node`.
    pub fn on_node(&self, node: &str) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n == node)
    }

    /// Whether it holds VM disks.
    pub fn has_images(&self) -> bool {
        self.content.iter().any(|c| c == "images")
    }

    /// Whether volumes are files (qcow2) rather than block devices.
    pub fn is_file_based(&self) -> bool {
        matches!(self.kind.as_str(), "dir" | "nfs" | "cifs" | "glusterfs" | "cephfs")
    }
}

/// A snapshot of a VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// The config at snapshot time.
    pub config: BTreeMap<String, String>,
    /// Unix seconds.
    pub snaptime: u64,
    /// Description.
    pub description: String,
    /// Parent snapshot.
    pub parent: Option<String>,
    /// The guest as the disk held it.
    #[serde(default)]
    pub guest: Option<Guest>,
}

/// A QEMU guest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vm {
    /// Node it lives on.
    pub node: String,
    /// `qemu-server/<vmid>.conf` as key → value.
    pub config: BTreeMap<String, String>,
    /// Running.
    pub running: bool,
    /// Sim time it was started, ms.
    pub started_ms: u64,
    /// Snapshots by name.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// What runs inside, for the guest agent (none: no guest the agent could reach).
    #[serde(default)]
    pub guest: Option<Guest>,
}

impl Vm {
    /// Template flag.
    pub fn is_template(&self) -> bool {
        self.config.get("template").is_some_and(|t| t == "1")
    }

    /// The `lock` property.
    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }

    /// Memory in MiB.
    pub fn memory_mib(&self) -> u64 {
        self.config.get("memory").and_then(|m| m.parse().ok()).unwrap_or(512)
    }

    /// Disk keys (`scsi0`, `virtio0`, `ide0`, `sata0`, `efidisk0`) with their values, excluding CD-ROMs.
    pub fn disks(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom") && !v.starts_with("none"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Whether a config key is a disk slot.
pub fn is_disk_key(k: &str) -> bool {
    ["scsi", "virtio", "ide", "sata", "efidisk", "tpmstate"]
        .iter()
        .any(|p| k.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
}

/// A size as PVE writes it into a drive (pve-common JSONSchema.pm `format_size`): the
/// largest of T, G, M, K that divides it, else bytes.
pub fn format_size(bytes: u64) -> String {
    let mut n = bytes;
    for unit in ["", "K", "M", "G"] {
        if !n.is_multiple_of(1024) || n == 0 {
            return format!("{n}{unit}");
        }
        n /= 1024;
    }
    format!("{n}T")
}

/// Size of a disk value (`size=8G`), bytes.
pub fn disk_size(value: &str) -> u64 {
    value
        .split(',')
        .find_map(|p| p.strip_prefix("size="))
        .map(|s| {
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = num.parse().unwrap_or(0);
            n * match unit {
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => 1,
            }
        })
        .unwrap_or(0)
}

/// A network interface in `/etc/network/interfaces`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iface {
    /// `bridge`, `eth`, `bond`, `vlan`, ...
    pub kind: String,
    /// `auto <iface>`.
    pub autostart: bool,
    /// Bridge ports.
    pub bridge_ports: Option<String>,
    /// VLAN-aware bridge.
    pub vlan_aware: bool,
    /// VLAN ids of a VLAN-aware bridge.
    pub bridge_vids: Option<String>,
    /// IPv4 CIDR.
    pub cidr: Option<String>,
    /// Gateway.
    pub gateway: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Comment.
    pub comments: Option<String>,
}

/// A node's network: the active file and the staged `interfaces.new`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeNet {
    /// `/etc/network/interfaces` (what is active).
    pub active: BTreeMap<String, Iface>,
    /// `/etc/network/interfaces.new`, when changes are staged.
    pub pending: Option<BTreeMap<String, Iface>>,
}

impl NodeNet {
    /// The configuration GET shows: the staged one if any.
    pub fn current(&self) -> &BTreeMap<String, Iface> {
        self.pending.as_ref().unwrap_or(&self.active)
    }

    /// The staged configuration, created from the active one on first change.
    pub fn staged(&mut self) -> &mut BTreeMap<String, Iface> {
        let active = &self.active;
        self.pending.get_or_insert_with(|| active.clone())
    }
}

/// An API token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Token {
    /// SHA-256 of the secret (hex).
    pub secret_hash: String,
    /// Privilege separation: the token has only its own ACLs (intersected with the user's).
    pub privsep: bool,
    /// Expiry, Unix seconds (0 = never).
    pub expire: u64,
    /// Comment.
    pub comment: Option<String>,
}

/// A user of `user.cfg`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct User {
    /// Salted SHA-256 of the password (hex), if one is set.
    pub password_hash: Option<String>,
    /// Enabled.
    pub enable: bool,
    /// Expiry, Unix seconds.
    pub expire: u64,
    /// Comment.
    pub comment: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// Groups.
    pub groups: BTreeSet<String>,
    /// API tokens by id.
    pub tokens: BTreeMap<String, Token>,
}

/// A group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Group {
    /// Comment.
    pub comment: Option<String>,
}

/// One ACL entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    /// Normalized path.
    pub path: String,
    /// `user`, `group` or `token`.
    pub kind: String,
    /// Who.
    pub ugid: String,
    /// Role.
    pub role: String,
    /// Propagates to children.
    pub propagate: bool,
}

/// A resource pool.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Pool {
    /// Comment.
    pub comment: Option<String>,
    /// Member VMIDs.
    pub vms: BTreeSet<u32>,
    /// Member storages.
    pub storages: BTreeSet<String>,
}

/// What a task does to the cluster when it ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Effect {
    /// Nothing beyond its exit status.
    None,
    /// A clone ends: drop the lock and join the pool (success), or remove the half-made VM
    /// (failure).
    Clone {
        /// The new VM.
        newid: u32,
        /// The pool it joins (qemu-server adds it at the end of the worker).
        #[serde(default)]
        pool: Option<String>,
    },
    /// Remove a VM.
    Destroy {
        /// The VM.
        vmid: u32,
    },
    /// Power a VM on or off.
    Power {
        /// The VM.
        vmid: u32,
        /// Running afterwards.
        running: bool,
    },
    /// Make the staged network active.
    NetworkReload {
        /// The node.
        node: String,
    },
    /// A migration ends: the config moves to the target node (success), the lock goes.
    Migrate {
        /// The VM.
        vmid: u32,
        /// The node it moves to.
        target: String,
        /// Local volumes moved onto another storage there (`targetstorage`), source → target.
        #[serde(default)]
        storages: BTreeMap<String, String>,
    },
    /// The nodes have reloaded their network with the committed SDN configuration.
    SdnApply {
        /// The configuration they now carry.
        applied: Box<SdnConfig>,
    },
    /// A snapshot ends: the lock goes; a failed one leaves no snapshot behind.
    Snapshot {
        /// The VM.
        vmid: u32,
        /// The snapshot.
        name: String,
    },
    /// A rollback ends: the lock goes; with `start`, the VM runs.
    Rollback {
        /// The VM.
        vmid: u32,
        /// Started after rolling back (the `start` parameter).
        start: bool,
    },
    /// A disk grows: the config gets its new value (size) when the worker ends well.
    Resize {
        /// The VM.
        vmid: u32,
        /// The disk key (`scsi0`).
        disk: String,
        /// The disk's new config value.
        value: String,
    },
    /// Drop a lock a task held.
    Unlock {
        /// The VM.
        vmid: u32,
    },
}

/// A worker task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// The UPID text.
    pub upid: String,
    /// Node.
    pub node: String,
    /// Worker type.
    pub kind: String,
    /// Object id.
    pub id: String,
    /// Who started it (`user@realm[!token]`).
    pub user: String,
    /// Sim start, ms.
    pub start_ms: u64,
    /// Sim end, ms.
    pub end_ms: u64,
    /// Exit status it will have (`OK` or the error).
    pub exit: String,
    /// Log lines written before the end line.
    pub log: Vec<String>,
    /// What happens at the end.
    pub effect: Effect,
    /// The effect has been applied.
    pub done: bool,
}

/// The whole simulated cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimState {
    /// Cluster name.
    pub cluster: String,
    /// PVE version.
    pub version: String,
    /// Unix seconds at sim time 0.
    pub epoch: u64,
    /// Sim time reached, ms (kept across saves).
    pub now_ms: u64,
    /// Nodes.
    pub nodes: BTreeMap<String, Node>,
    /// Storages.
    pub storages: BTreeMap<String, Storage>,
    /// Guests.
    pub vms: BTreeMap<u32, Vm>,
    /// Networks per node.
    pub net: BTreeMap<String, NodeNet>,
    /// Users.
    pub users: BTreeMap<String, User>,
    /// Groups.
    pub groups: BTreeMap<String, Group>,
    /// Custom roles.
    pub roles: BTreeMap<String, BTreeSet<String>>,
    /// ACL entries.
    pub acl: BTreeSet<Acl>,
    /// Pools.
    pub pools: BTreeMap<String, Pool>,
    /// Tasks, oldest first.
    pub tasks: Vec<Task>,
    /// Storage allocation locks: storage (per node for local ones) → sim ms when free.
    pub storage_busy: BTreeMap<String, u64>,
    /// Next worker pid.
    pub next_pid: u32,
    /// Key for tickets and CSRF tokens (hex).
    pub auth_key: String,
    /// Counter behind generated MACs.
    pub mac_seq: u64,
    /// The fingerprint of the certificate nodes present (`sim serve`'s), for `/nodes`.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    /// Software-defined networking (`/cluster/sdn`).
    #[serde(default)]
    pub sdn: Sdn,
    /// The digest of the fixture this cluster started from ([`Fixture::digest`]); `None` in
    /// state saved before it was recorded.
    #[serde(default)]
    pub fixture_digest: Option<String>,
}

/// One SDN configuration (`/etc/pve/sdn/*.cfg`): sections by id, each its options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdnConfig {
    /// Zones (`type`, `peers`, `nodes`, `bridge`, ...).
    pub zones: BTreeMap<String, BTreeMap<String, String>>,
    /// VNets (`zone`, `tag`, `alias`, ...).
    pub vnets: BTreeMap<String, BTreeMap<String, String>>,
    /// Subnets by id `<zone>-<address>-<prefix>` (`vnet`, `gateway`, `snat`, ...).
    pub subnets: BTreeMap<String, BTreeMap<String, String>>,
}

/// SDN as pve-network keeps it: the edited configuration, the running one (`PUT
/// /cluster/sdn` commits it), and what the nodes have applied (at the end of the
/// `reloadnetworkall` task): a VNet is a bridge of a node from then on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sdn {
    /// The edited configuration (pending until applied).
    pub config: SdnConfig,
    /// The committed configuration (`.running-config`).
    pub running: SdnConfig,
    /// What the nodes' networks carry.
    pub applied: SdnConfig,
}

impl Sdn {
    /// Whether VNet `vnet` is a bridge on `node`: applied, in a zone that spans the node.
    pub fn bridge_on(&self, node: &str, vnet: &str) -> bool {
        let Some(v) = self.applied.vnets.get(vnet) else { return false };
        let Some(zone) = v.get("zone").and_then(|z| self.applied.zones.get(z)) else { return false };
        zone.get("nodes").is_none_or(|nodes| nodes.split(',').any(|n| n.trim() == node))
    }

    /// The zone of VNet `vnet` in the edited configuration (what permission checks use).
    pub fn zone_of(&self, vnet: &str) -> Option<&str> {
        self.config.vnets.get(vnet).and_then(|v| v.get("zone")).map(String::as_str)
    }
}

impl SimState {
    /// A node's `ssl_fingerprint` (pve-manager Nodes.pm lists it from pve-cluster): the
    /// served certificate's, else a fixed digest of the cluster and node names.
    pub fn ssl_fingerprint(&self, node: &str) -> String {
        use sha2::{Digest, Sha256};
        self.tls_fingerprint.clone().unwrap_or_else(|| {
            let d = Sha256::digest(format!("{}/{node}", self.cluster).as_bytes());
            d.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
        })
    }

    /// A fresh cluster from a fixture.
    pub fn from_fixture(f: &Fixture, epoch: u64, auth_key: String) -> SimState {
        let gib = 1u64 << 30;
        let mut s = SimState {
            cluster: f.cluster.clone(),
            version: f.version.clone(),
            epoch,
            now_ms: 0,
            nodes: f
                .nodes
                .iter()
                .map(|n| (n.name.clone(), Node { cpus: n.cpus, memory: n.memory_gib * gib, online: n.online }))
                .collect(),
            storages: f
                .storages
                .iter()
                .map(|st| {
                    let storage = Storage {
                        kind: st.kind.clone(),
                        content: st.content.clone(),
                        shared: st.shared,
                        nodes: st.nodes.clone(),
                        size: st.size_gib * gib,
                        bandwidth: st.bandwidth_mib_s.max(1) << 20,
                    };
                    (st.id.clone(), storage)
                })
                .collect(),
            vms: BTreeMap::new(),
            net: BTreeMap::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            acl: BTreeSet::new(),
            pools: BTreeMap::new(),
            tasks: Vec::new(),
            storage_busy: BTreeMap::new(),
            next_pid: 0x1000,
            auth_key,
            mac_seq: 0,
            tls_fingerprint: None,
            sdn: Sdn::default(),
            fixture_digest: Some(f.digest()),
        };
        for node in s.nodes.keys().cloned().collect::<Vec<_>>() {
            let mut net = NodeNet::default();
            net.active.insert("eno1".into(), Iface { kind: "eth".into(), ..Iface::default() });
            for b in f.bridges.iter().filter(|b| b.node.as_deref().is_none_or(|n| n == node)) {
                let iface = Iface {
                    kind: "bridge".into(),
                    autostart: true,
                    bridge_ports: b.ports.clone(),
                    vlan_aware: b.vlan_aware,
                    comments: b.comments.clone(),
                    ..Iface::default()
                };
                net.active.insert(b.iface.clone(), iface);
            }
            s.net.insert(node, net);
        }
        s.users.insert("root@pam".into(), User { enable: true, ..User::default() });
        for u in &f.users {
            let user = s.users.entry(u.userid.clone()).or_insert_with(|| User { enable: true, ..User::default() });
            user.comment = u.comment.clone();
            if let Some(p) = &u.password {
                user.password_hash = Some(super::access::hash_password(&u.userid, p));
            }
        }
        for t in &f.templates {
            s.add_fixture_vm(t, true);
        }
        for v in &f.vms {
            s.add_fixture_vm(v, false);
        }
        s
    }

    fn add_fixture_vm(&mut self, f: &VmFixture, template: bool) {
        let mut config = BTreeMap::new();
        config.insert("name".into(), f.name.clone());
        config.insert("memory".into(), f.memory.to_string());
        config.insert("cores".into(), f.cores.to_string());
        config.insert("ostype".into(), "l26".into());
        config.insert("scsihw".into(), "virtio-scsi-single".into());
        config.insert("boot".into(), "order=scsi0".into());
        let st = self.storages.get(&f.storage);
        let prefix = if template { "base" } else { "vm" };
        let vol = match st {
            Some(s) if s.is_file_based() => format!("{}:{}/{prefix}-{}-disk-0.qcow2", f.storage, f.vmid, f.vmid),
            _ => format!("{}:{prefix}-{}-disk-0", f.storage, f.vmid),
        };
        config.insert("scsi0".into(), format!("{vol},size={}G", f.disk_gib));
        if f.cloudinit {
            // qemu-server names a cloud-init drive `vm-<vmid>-cloudinit` (qcow2 on file
            // storages), as `create_disks` does for `<storage>:cloudinit`.
            let drive = match st {
                Some(s) if s.is_file_based() => {
                    format!("{}:{}/vm-{}-cloudinit.qcow2,media=cdrom", f.storage, f.vmid, f.vmid)
                }
                _ => format!("{}:vm-{}-cloudinit,media=cdrom", f.storage, f.vmid),
            };
            config.insert("ide2".into(), drive);
        }
        for (i, n) in f.nets.iter().enumerate() {
            let value = if n.contains('=') && n.split(',').next().is_some_and(|m| m.contains('=')) {
                n.clone()
            } else {
                let mac = self.next_mac("BC:24:11");
                let (model, rest) = n.split_once(',').unwrap_or((n.as_str(), ""));
                if rest.is_empty() { format!("{model}={mac}") } else { format!("{model}={mac},{rest}") }
            };
            config.insert(format!("net{i}"), value);
        }
        if !f.tags.is_empty() {
            config.insert("tags".into(), f.tags.join(";"));
        }
        if template {
            config.insert("template".into(), "1".into());
        }
        if f.agent {
            config.insert("agent".into(), "1".into());
        }
        let guest = (f.agent || f.guest.is_some()).then(|| {
            let g = f.guest.clone().unwrap_or_default();
            Guest { agent: f.agent, files: g.files, commands: g.commands, addresses: g.addresses, ..Guest::default() }
        });
        // A fixture VM's generation id follows from its VMID, like everything the seed decides.
        let genid: [u8; 16] = StdRng::seed_from_u64(f.vmid.into()).r#gen();
        config.insert("vmgenid".into(), uuid::Builder::from_random_bytes(genid).into_uuid().to_string());
        self.vms.insert(
            f.vmid,
            Vm {
                node: f.node.clone(),
                config,
                running: f.running && !template,
                started_ms: 0,
                snapshots: BTreeMap::new(),
                guest,
            },
        );
        if let Some(p) = &f.pool {
            self.pools.entry(p.clone()).or_default().vms.insert(f.vmid);
        }
    }

    /// A new MAC address with the given prefix (deterministic sequence, unique in the cluster).
    pub fn next_mac(&mut self, prefix: &str) -> String {
        loop {
            self.mac_seq += 1;
            let n = self.mac_seq.wrapping_mul(0x9E37_79B9) & 0xFF_FFFF;
            let mac = format!("{prefix}:{:02X}:{:02X}:{:02X}", (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF);
            let taken =
                self.vms.values().any(|v| v.config.iter().any(|(k, val)| k.starts_with("net") && val.contains(&mac)));
            if !taken {
                return mac;
            }
        }
    }

    /// The pool a VM belongs to.
    pub fn pool_of(&self, vmid: u32) -> Option<&str> {
        self.pools.iter().find(|(_, p)| p.vms.contains(&vmid)).map(|(id, _)| id.as_str())
    }

    /// Unix seconds at sim time `ms`.
    pub fn unix(&self, ms: u64) -> u64 {
        self.epoch + ms / 1000
    }
}
