//! [`ObjectRef`]: which cluster object an action acts on or a failure concerns, as data.

use std::fmt;

use serde::Serialize;

/// A cluster object, typed; its `Display` is how reports name it (`vm 3001 web-s1`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectRef {
    /// A PVE group.
    Group {
        /// Its id.
        groupid: String,
    },
    /// A PVE user.
    User {
        /// `name@realm`.
        userid: String,
    },
    /// A resource pool.
    Pool {
        /// Its id.
        poolid: String,
    },
    /// An ACL entry.
    Acl {
        /// The ACL path.
        path: String,
        /// The user or group it grants to.
        ugid: String,
    },
    /// A Linux bridge of a node.
    Bridge {
        /// The node.
        node: String,
        /// `vmbrN`.
        iface: String,
    },
    /// A node's network configuration (its reload).
    Network {
        /// The node.
        node: String,
    },
    /// An SDN zone.
    Zone {
        /// Its id.
        zone: String,
    },
    /// An SDN VNet.
    Vnet {
        /// Its id.
        vnet: String,
    },
    /// The cluster's SDN configuration (its apply).
    Sdn,
    /// A VM.
    Vm {
        /// Its VMID.
        vmid: u32,
        /// Its name, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Group { groupid } => write!(f, "group {groupid}"),
            ObjectRef::User { userid } => write!(f, "user {userid}"),
            ObjectRef::Pool { poolid } => write!(f, "pool {poolid}"),
            ObjectRef::Acl { path, ugid } => write!(f, "acl {path} {ugid}"),
            ObjectRef::Bridge { node, iface } => write!(f, "bridge {node}/{iface}"),
            ObjectRef::Network { node } => write!(f, "network {node}"),
            ObjectRef::Zone { zone } => write!(f, "zone {zone}"),
            ObjectRef::Vnet { vnet } => write!(f, "vnet {vnet}"),
            ObjectRef::Sdn => f.write_str("sdn"),
            ObjectRef::Vm { vmid, name: Some(name) } => write!(f, "vm {vmid} {name}"),
            ObjectRef::Vm { vmid, name: None } => write!(f, "vm {vmid}"),
        }
    }
}
