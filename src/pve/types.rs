//! Typed answers of the endpoints `stand` uses. PVE is loose with JSON types (booleans as
//! `0`/`1`, numbers as strings), so the fields accept every form PVE sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Accepts `true`, `1`, `"1"` as true; a missing field is false.
pub fn boolish<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "yes" | "on"),
        _ => false,
    })
}

/// Accepts a number or a numeric string; anything else is 0.
pub fn numish<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)).unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

/// `GET /version`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VersionInfo {
    /// e.g. `8.4.1`.
    pub version: String,
    /// e.g. `8.4`.
    #[serde(default)]
    pub release: String,
    /// Git commit of pve-manager.
    #[serde(default)]
    pub repoid: String,
}

/// One item of `GET /nodes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name.
    pub node: String,
    /// `online`, `offline` or `unknown`.
    #[serde(default)]
    pub status: String,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "numish")]
    pub maxmem: u64,
    /// Used memory in bytes.
    #[serde(default, deserialize_with = "numish")]
    pub mem: u64,
    /// CPU count.
    #[serde(default, deserialize_with = "numish")]
    pub maxcpu: u64,
    /// Seconds since boot.
    #[serde(default, deserialize_with = "numish")]
    pub uptime: u64,
}

/// One item of `GET /cluster/resources`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterResource {
    /// `qemu`, `lxc`, `node`, `storage`, `pool`, `sdn`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `qemu/100`, `node/pve1`, `storage/pve1/local`.
    pub id: String,
    /// Node of the resource.
    #[serde(default)]
    pub node: Option<String>,
    /// VMID of a guest.
    #[serde(default)]
    pub vmid: Option<u32>,
    /// Guest name.
    #[serde(default)]
    pub name: Option<String>,
    /// `running`, `stopped`, `online`, `available`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Whether a guest is a template.
    #[serde(default, deserialize_with = "boolish")]
    pub template: bool,
    /// Memory (bytes) of a guest or node.
    #[serde(default, deserialize_with = "numish")]
    pub maxmem: u64,
    /// Used memory.
    #[serde(default, deserialize_with = "numish")]
    pub mem: u64,
    /// Disk size (bytes).
    #[serde(default, deserialize_with = "numish")]
    pub maxdisk: u64,
    /// Used disk.
    #[serde(default, deserialize_with = "numish")]
    pub disk: u64,
    /// CPUs.
    #[serde(default, deserialize_with = "numish")]
    pub maxcpu: u64,
    /// CPU use, 0.0..maxcpu (running guests and nodes).
    #[serde(default)]
    pub cpu: f64,
    /// Seconds running.
    #[serde(default, deserialize_with = "numish")]
    pub uptime: u64,
    /// Guest tags, `;`-separated.
    #[serde(default)]
    pub tags: Option<String>,
    /// Pool of a guest.
    #[serde(default)]
    pub pool: Option<String>,
    /// Config lock of a guest.
    #[serde(default)]
    pub lock: Option<String>,
    /// Storage id.
    #[serde(default)]
    pub storage: Option<String>,
    /// Whether a storage is shared.
    #[serde(default, deserialize_with = "boolish")]
    pub shared: bool,
    /// Storage content types.
    #[serde(default)]
    pub content: Option<String>,
    /// Storage plugin type.
    #[serde(default)]
    pub plugintype: Option<String>,
}

/// One item of `GET /storage` (the datacenter storage config).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Storage id.
    pub storage: String,
    /// Plugin type: `dir`, `lvmthin`, `nfs`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types, comma-separated.
    #[serde(default)]
    pub content: String,
    /// Whether it is shared between nodes.
    #[serde(default, deserialize_with = "boolish")]
    pub shared: bool,
    /// Nodes it is restricted to, comma-separated (all when absent).
    #[serde(default)]
    pub nodes: Option<String>,
}

/// One item of `GET /nodes/{node}/storage`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeStorage {
    /// Storage id.
    pub storage: String,
    /// Plugin type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types.
    #[serde(default)]
    pub content: String,
    /// Shared between nodes.
    #[serde(default, deserialize_with = "boolish")]
    pub shared: bool,
    /// Active on this node.
    #[serde(default, deserialize_with = "boolish")]
    pub active: bool,
    /// Enabled.
    #[serde(default, deserialize_with = "boolish")]
    pub enabled: bool,
    /// Size in bytes.
    #[serde(default, deserialize_with = "numish")]
    pub total: u64,
    /// Used bytes.
    #[serde(default, deserialize_with = "numish")]
    pub used: u64,
    /// Free bytes.
    #[serde(default, deserialize_with = "numish")]
    pub avail: u64,
}

/// One item of `GET /nodes/{node}/qemu`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VmListItem {
    /// VMID.
    #[serde(deserialize_with = "numish")]
    pub vmid: u64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// `running` or `stopped`.
    #[serde(default)]
    pub status: String,
    /// Template flag.
    #[serde(default, deserialize_with = "boolish")]
    pub template: bool,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "numish")]
    pub maxmem: u64,
    /// Tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Lock.
    #[serde(default)]
    pub lock: Option<String>,
}

/// A VM config: PVE's flat key/value map (`net0`, `memory`, `tags`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmConfig(pub BTreeMap<String, Value>);

impl VmConfig {
    /// A key as text (numbers are rendered).
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The `net[n]` keys in order, as (index, property string).
    pub fn nets(&self) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix("net").and_then(|n| n.parse().ok()).map(|n: u32| (n, k)))
            .filter_map(|(n, k)| self.get(k).map(|v| (n, v)))
            .collect();
        out.sort();
        out
    }

    /// Tags as a list.
    pub fn tags(&self) -> Vec<String> {
        self.get("tags").map(|t| split_tags(&t)).unwrap_or_default()
    }

    /// Memory in MiB.
    pub fn memory_mib(&self) -> Option<u64> {
        self.get("memory")
            .and_then(|m| m.split(',').next().map(str::to_string))
            .and_then(|m| m.strip_prefix("current=").unwrap_or(&m).parse().ok())
    }

    /// Whether the VM is a template.
    pub fn is_template(&self) -> bool {
        self.get("template").is_some_and(|t| t == "1" || t == "true")
    }
}

/// Splits a PVE tag list (`a;b,c d`).
pub fn split_tags(s: &str) -> Vec<String> {
    s.split([';', ',', ' ']).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VmStatus {
    /// VMID.
    #[serde(default, deserialize_with = "numish")]
    pub vmid: u64,
    /// `running` or `stopped`.
    pub status: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Seconds running.
    #[serde(default, deserialize_with = "numish")]
    pub uptime: u64,
    /// Lock.
    #[serde(default)]
    pub lock: Option<String>,
    /// Template flag.
    #[serde(default, deserialize_with = "boolish")]
    pub template: bool,
}

/// One interface of `GET /nodes/{node}/network`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetIface {
    /// Interface name.
    pub iface: String,
    /// `bridge`, `eth`, `bond`, `vlan`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Active now (absent for pending ones).
    #[serde(default, deserialize_with = "boolish")]
    pub active: bool,
    /// Start on boot.
    #[serde(default, deserialize_with = "boolish")]
    pub autostart: bool,
    /// Bridge ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_ports: Option<String>,
    /// VLAN-aware bridge.
    #[serde(default, deserialize_with = "boolish")]
    pub bridge_vlan_aware: bool,
    /// Comment (carries `stand`'s marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// IPv4 CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
}

/// `GET /nodes/{node}/network` with the pending diff.
#[derive(Clone, Debug, Default)]
pub struct NetworkState {
    /// Interfaces as PVE lists them (pending ones included).
    pub ifaces: Vec<NetIface>,
    /// The pending `diff -u interfaces interfaces.new`, if any.
    pub changes: Option<String>,
}

/// One item of `GET /access/users`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserInfo {
    /// `name@realm`.
    pub userid: String,
    /// Comment (carries `stand`'s marker).
    #[serde(default)]
    pub comment: Option<String>,
    /// Enabled.
    #[serde(default = "yes", deserialize_with = "boolish")]
    pub enable: bool,
    /// Expiry, Unix seconds (0 = never).
    #[serde(default, deserialize_with = "numish")]
    pub expire: u64,
    /// Groups, comma-separated.
    #[serde(default)]
    pub groups: Option<Value>,
    /// Given name (and patronymic).
    #[serde(default)]
    pub firstname: Option<String>,
    /// Surname.
    #[serde(default)]
    pub lastname: Option<String>,
}

fn yes() -> bool {
    true
}

/// One item of `GET /pools`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolInfo {
    /// Pool id.
    pub poolid: String,
    /// Comment (carries `stand`'s marker).
    #[serde(default)]
    pub comment: Option<String>,
    /// Members (with `GET /pools/{poolid}` or PVE 8.1+ list).
    #[serde(default)]
    pub members: Vec<ClusterResource>,
}

/// One item of `GET /access/acl`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    /// ACL path.
    pub path: String,
    /// `user`, `group` or `token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// User, group or token id.
    pub ugid: String,
    /// Role.
    pub roleid: String,
    /// Propagates to children.
    #[serde(default, deserialize_with = "boolish")]
    pub propagate: bool,
}

/// One item of `GET /cluster/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterStatusItem {
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cluster or node name.
    pub name: String,
    /// Cluster quorate.
    #[serde(default, deserialize_with = "boolish")]
    pub quorate: bool,
    /// Node online.
    #[serde(default, deserialize_with = "boolish")]
    pub online: bool,
    /// A node's cluster address.
    #[serde(default)]
    pub ip: Option<String>,
}

/// `POST /access/ticket`.
#[derive(Clone, Deserialize)]
pub struct TicketInfo {
    /// The authenticated user.
    pub username: String,
    /// The ticket (a secret).
    pub ticket: String,
    /// The CSRF token for writes.
    #[serde(rename = "CSRFPreventionToken")]
    pub csrf: String,
}

impl std::fmt::Debug for TicketInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketInfo").field("username", &self.username).field("ticket", &"<redacted>").finish()
    }
}

/// One item of `GET /nodes/{node}/tasks`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskListItem {
    /// The UPID.
    pub upid: String,
    /// Worker type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Object id.
    #[serde(default)]
    pub id: String,
    /// User.
    pub user: String,
    /// Exit status when ended (there is no `exitstatus` key in the list).
    #[serde(default)]
    pub status: Option<String>,
    /// Start, Unix seconds.
    #[serde(default, deserialize_with = "numish")]
    pub starttime: u64,
    /// End, Unix seconds.
    #[serde(default, deserialize_with = "numish")]
    pub endtime: u64,
}
