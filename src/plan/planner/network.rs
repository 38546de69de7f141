//! Bridges: shared ones (`ensure_bridge`) and each student's private ones (`alias`), and
//! which bridge a NIC names.

use std::collections::BTreeSet;

use super::{PlanError, Planner, invalid};
use crate::plan::marker::Marker;
use crate::plan::model::BridgePlan;
use crate::plan::owner::Owner;

impl Planner {
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
        if let Some(zone) = self.settings.vxlan_zone.clone() {
            self.user_index(userid)?;
            let vnet = self.vnet_alias(userid, name, vlan.is_some(), &zone)?;
            return Ok(match vlan {
                Some(t) => format!("{vnet}.{t}"),
                None => vnet,
            });
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

    /// Whether `bridge` is a bridge on `node`: one of the node's, planned there, or one of
    /// the lab's VNets (present on every node of the zone).
    pub(super) fn bridge_on_node(&self, node: &str, bridge: &str) -> bool {
        self.snap.bridge(node, bridge).is_some()
            || self.bridges.iter().any(|b| b.node == node && b.iface == bridge)
            || self.vnets.iter().any(|v| v.vnet == bridge)
    }

    /// Whether NIC target `net` is one of `userid`'s private networks (a bridge or a VNet).
    pub(super) fn is_private(&self, userid: &str, net: &str) -> bool {
        let base = net.rsplit_once('.').filter(|(_, t)| t.parse::<u16>().is_ok()).map_or(net, |(b, _)| b);
        self.bridges.iter().any(|b| b.owner.as_deref() == Some(userid) && b.iface == base)
            || self.vnets.iter().any(|v| v.owner == userid && v.vnet == base)
    }

    pub(super) fn nic_target(&self, node: &str, spec_net: &str) -> Result<(String, Option<u16>), PlanError> {
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
}
