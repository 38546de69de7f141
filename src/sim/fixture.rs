//! The cluster fixture format (YAML): nodes, storages, bridges, templates, VMs, users.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::guest::Canned;

/// A simulated cluster as written in a fixture file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Cluster name (`/cluster/status`).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// PVE version reported by `/version`.
    #[serde(default = "default_version")]
    pub version: String,
    /// Nodes.
    pub nodes: Vec<NodeFixture>,
    /// Storages (datacenter `storage.cfg`).
    #[serde(default)]
    pub storages: Vec<StorageFixture>,
    /// Bridges present and active at start.
    #[serde(default)]
    pub bridges: Vec<BridgeFixture>,
    /// Templates.
    #[serde(default)]
    pub templates: Vec<VmFixture>,
    /// Ordinary VMs (not ours).
    #[serde(default)]
    pub vms: Vec<VmFixture>,
    /// Users besides `root@pam`.
    #[serde(default)]
    pub users: Vec<UserFixture>,
}

/// A node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFixture {
    /// Node name.
    pub name: String,
    /// CPU threads.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory in GiB.
    #[serde(default = "default_mem")]
    pub memory_gib: u64,
    /// Online at start.
    #[serde(default = "yes")]
    pub online: bool,
}

/// A storage.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFixture {
    /// Storage id.
    pub id: String,
    /// Plugin type: `dir`, `lvmthin`, `nfs`, `rbd`, `zfspool`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types.
    #[serde(default = "default_content")]
    pub content: Vec<String>,
    /// Shared between nodes (one volume namespace, cluster-wide lock).
    #[serde(default)]
    pub shared: bool,
    /// Restrict to these nodes (all when empty).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Size in GiB (per node for local storages).
    #[serde(default = "default_size")]
    pub size_gib: u64,
    /// Copy speed for full clones, MiB/s.
    #[serde(default = "default_bw")]
    pub bandwidth_mib_s: u64,
}

/// A bridge on one node (or every node when `node` is absent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeFixture {
    /// Node, or all nodes.
    #[serde(default)]
    pub node: Option<String>,
    /// Interface name.
    pub iface: String,
    /// Bridge ports.
    #[serde(default)]
    pub ports: Option<String>,
    /// VLAN aware.
    #[serde(default)]
    pub vlan_aware: bool,
    /// Comment.
    #[serde(default)]
    pub comments: Option<String>,
}

/// A template or VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmFixture {
    /// VMID.
    pub vmid: u32,
    /// Name.
    pub name: String,
    /// Node that owns it.
    pub node: String,
    /// Storage of its disk.
    pub storage: String,
    /// Memory, MiB.
    #[serde(default = "default_vm_mem")]
    pub memory: u64,
    /// Cores.
    #[serde(default = "default_cores")]
    pub cores: u32,
    /// Disk size, GiB.
    #[serde(default = "default_disk")]
    pub disk_gib: u64,
    /// `net[n]` values in order (MACs are generated when missing).
    #[serde(default)]
    pub nets: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Running at start (VMs only).
    #[serde(default)]
    pub running: bool,
    /// Pool.
    #[serde(default)]
    pub pool: Option<String>,
    /// The QEMU guest agent is configured (`agent: 1`) and runs in the guest.
    #[serde(default)]
    pub agent: bool,
    /// It has a cloud-init drive (`ide2: <storage>:vm-<vmid>-cloudinit,media=cdrom`).
    #[serde(default)]
    pub cloudinit: bool,
    /// What the guest holds (clones inherit it, like the disk).
    #[serde(default)]
    pub guest: Option<GuestFixture>,
}

/// A guest's content, for the guest agent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestFixture {
    /// Files by absolute path (`/etc/hostname: "debian\n"`).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Canned results of command lines `exec` runs (`"systemctl is-active nginx": { code: 3, out: "inactive\n" }`).
    #[serde(default)]
    pub commands: BTreeMap<String, Canned>,
    /// Addresses by interface name (`ens18: ["192.168.1.10/24"]`).
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<String>>,
}

/// A user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFixture {
    /// `name@realm`.
    pub userid: String,
    /// Password (for `pve`/`pam` login in the simulator).
    #[serde(default)]
    pub password: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
}

fn default_cluster() -> String {
    "stand-sim".into()
}
fn default_version() -> String {
    "8.4.1".into()
}
fn default_cpus() -> u32 {
    16
}
fn default_mem() -> u64 {
    64
}
fn yes() -> bool {
    true
}
fn default_content() -> Vec<String> {
    vec!["images".into()]
}
fn default_size() -> u64 {
    1000
}
fn default_bw() -> u64 {
    300
}
fn default_vm_mem() -> u64 {
    1024
}
fn default_cores() -> u32 {
    1
}
fn default_disk() -> u64 {
    8
}

/// The built-in default fixture: `pve1..3`, `local`, `local-lvm`, `nfs-shared`, templates 100–103.
pub const DEFAULT_FIXTURE: &str = include_str!("default_fixture.yaml");

/// A fixture that does not load.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Not readable.
    #[error("cannot read fixture {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid YAML of the fixture's shape.
    #[error("fixture {path}: {source}")]
    Parse {
        /// File.
        path: String,
        /// Cause, with line and column.
        source: serde_yaml::Error,
    },
    /// Inconsistent content.
    #[error("fixture {path}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Fixture {
    /// The built-in default cluster.
    pub fn default_cluster() -> Fixture {
        Self::parse(DEFAULT_FIXTURE, "<built-in>").expect("the built-in fixture is valid")
    }

    /// What the fixture describes, as a digest: the same for the same cluster however the
    /// file is laid out or commented, different when anything in it differs.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(canonical))[..16].to_string()
    }

    /// Whether this is the built-in cluster.
    pub fn is_builtin(&self) -> bool {
        self.digest() == Self::default_cluster().digest()
    }

    /// Reads a fixture file.
    pub fn load(path: &std::path::Path) -> Result<Fixture, FixtureError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read { path: p.clone(), source })?;
        Self::parse(&text, &p)
    }

    /// Parses and checks fixture text.
    pub fn parse(text: &str, path: &str) -> Result<Fixture, FixtureError> {
        let f: Fixture =
            serde_yaml::from_str(text).map_err(|source| FixtureError::Parse { path: path.into(), source })?;
        f.check(path)?;
        Ok(f)
    }

    fn check(&self, path: &str) -> Result<(), FixtureError> {
        let bad = |message: String| Err(FixtureError::Invalid { path: path.into(), message });
        if self.nodes.is_empty() {
            return bad("no nodes: add at least one under `nodes:`".into());
        }
        let node_ok = |n: &str| self.nodes.iter().any(|x| x.name == n);
        let mut seen = std::collections::BTreeSet::new();
        for vm in self.templates.iter().chain(&self.vms) {
            if !seen.insert(vm.vmid) {
                return bad(format!("VMID {} is used twice", vm.vmid));
            }
            if vm.vmid < 100 {
                return bad(format!("VMID {} is below 100", vm.vmid));
            }
            if !node_ok(&vm.node) {
                return bad(format!("VM {} is on unknown node '{}'", vm.vmid, vm.node));
            }
            if !self.storages.iter().any(|s| s.id == vm.storage) {
                return bad(format!("VM {} is on unknown storage '{}'", vm.vmid, vm.storage));
            }
        }
        for b in &self.bridges {
            if let Some(n) = &b.node
                && !node_ok(n)
            {
                return bad(format!("bridge {} is on unknown node '{n}'", b.iface));
            }
        }
        Ok(())
    }
}
