//! The `net[n]` property string of a QEMU VM: `virtio=MAC,bridge=vmbr0,firewall=1,tag=100`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// NIC models `stand` creates (PVE knows more; they are kept as they are).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    /// Paravirtual, for Linux guests.
    Virtio,
    /// VMware's, for EcoRouter.
    Vmxnet3,
    /// Intel e1000.
    E1000,
    /// Any other model PVE supports.
    Other(String),
}

impl NicModel {
    /// The model as PVE names it.
    pub fn as_str(&self) -> &str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::Vmxnet3 => "vmxnet3",
            NicModel::E1000 => "e1000",
            NicModel::Other(s) => s,
        }
    }

    fn parse(s: &str) -> NicModel {
        match s {
            "virtio" => NicModel::Virtio,
            "vmxnet3" => NicModel::Vmxnet3,
            "e1000" => NicModel::E1000,
            other => NicModel::Other(other.to_string()),
        }
    }
}

const MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];

/// One NIC of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevice {
    /// NIC model.
    pub model: NicModel,
    /// MAC address (uppercase), if set.
    pub mac: Option<String>,
    /// Bridge it plugs into.
    pub bridge: Option<String>,
    /// PVE firewall on this NIC.
    pub firewall: bool,
    /// Link disconnected.
    pub link_down: bool,
    /// VLAN tag.
    pub tag: Option<u16>,
    /// Other keys, as given.
    pub extra: Vec<(String, String)>,
}

impl NetDevice {
    /// A NIC of `model` on `bridge`.
    pub fn new(model: NicModel, bridge: &str) -> Self {
        Self {
            model,
            mac: None,
            bridge: Some(bridge.to_string()),
            firewall: false,
            link_down: false,
            tag: None,
            extra: Vec::new(),
        }
    }

    /// Whether two NICs are the same apart from a MAC one of them does not set.
    pub fn matches(&self, other: &NetDevice) -> bool {
        let mac_ok = match (&self.mac, &other.mac) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        mac_ok
            && self.model == other.model
            && self.bridge == other.bridge
            && self.firewall == other.firewall
            && self.link_down == other.link_down
            && self.tag == other.tag
    }
}

/// A `net[n]` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network device '{text}': {reason}")]
pub struct NetDeviceError {
    /// The value.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

fn flag(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes" | "on")
}

impl FromStr for NetDevice {
    type Err = NetDeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| NetDeviceError { text: s.to_string(), reason };
        let mut dev = NetDevice {
            model: NicModel::Virtio,
            mac: None,
            bridge: None,
            firewall: false,
            link_down: false,
            tag: None,
            extra: Vec::new(),
        };
        let mut model = None;
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (part, None),
            };
            if MODELS.contains(&k) {
                model = Some(NicModel::parse(k));
                dev.mac = v.map(str::to_ascii_uppercase);
                continue;
            }
            let v = v.ok_or_else(|| err(format!("'{k}' has no value")))?;
            match k {
                "model" => model = Some(NicModel::parse(v)),
                "macaddr" => dev.mac = Some(v.to_ascii_uppercase()),
                "bridge" => dev.bridge = Some(v.to_string()),
                "firewall" => dev.firewall = flag(v),
                "link_down" => dev.link_down = flag(v),
                "tag" => dev.tag = Some(v.parse().map_err(|_| err(format!("tag '{v}' is not a VLAN id")))?),
                _ => dev.extra.push((k.to_string(), v.to_string())),
            }
        }
        dev.model = model.ok_or_else(|| err("no model".into()))?;
        Ok(dev)
    }
}

impl fmt::Display for NetDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.model.as_str())?;
        if let Some(mac) = &self.mac {
            write!(f, "={mac}")?;
        }
        let mut keys: Vec<(String, String)> = Vec::new();
        if let Some(b) = &self.bridge {
            keys.push(("bridge".into(), b.clone()));
        }
        if self.firewall {
            keys.push(("firewall".into(), "1".into()));
        }
        if self.link_down {
            keys.push(("link_down".into(), "1".into()));
        }
        if let Some(t) = self.tag {
            keys.push(("tag".into(), t.to_string()));
        }
        keys.extend(self.extra.iter().cloned());
        keys.sort();
        for (k, v) in keys {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_forms_pve_stores() {
        for s in [
            "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1",
            "vmxnet3=1C:87:76:40:00:01,bridge=vmbr0,link_down=1",
            "virtio=BC:24:11:00:00:02,bridge=vmbr1000,firewall=1,tag=100",
        ] {
            assert_eq!(s.parse::<NetDevice>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn model_key_and_macaddr_forms_agree() {
        let a: NetDevice = "model=virtio,macaddr=bc:24:11:00:00:01,bridge=vmbr0".parse().unwrap();
        let b: NetDevice = "virtio=BC:24:11:00:00:01,bridge=vmbr0".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn missing_model_is_an_error() {
        assert!("bridge=vmbr0".parse::<NetDevice>().is_err());
    }
}
