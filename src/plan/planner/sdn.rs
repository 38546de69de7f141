//! Students' networks as SDN VNets (`lab(#{ network: "vxlan" })`): each `alias` is a VNet
//! of the lab's VXLAN zone, present on every node, so a stand's VMs may sit on different
//! nodes; and the placement of single VMs (`clone(.., #{ node })`, `spread: true`).

use sha2::{Digest, Sha256};

use super::{PlanError, Planner, invalid};
use crate::plan::marker::Marker;
use crate::plan::model::{SdnPlan, VnetPlan};
use crate::plan::owner::Owner;

/// VXLAN network identifiers PVE accepts (VnetPlugin `tag`, 1..16777215).
const VNI_RANGE: u32 = 16_777_215;

/// Whether `id` is a valid SDN zone or VNet id (pve-network `parse_sdn_zone_id`,
/// `parse_sdn_vnet_id`): a letter, then letters or digits, 2 to 8 characters.
pub fn valid_sdn_id(id: &str) -> bool {
    (2..=8).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The `n`th candidate name and VNI of the network `seed` (lab/user/alias): the same on
/// every run, so a re-run finds the VNet it made.
fn candidate(seed: &str, n: u32) -> (String, u32) {
    let h = Sha256::digest(format!("{seed}#{n}").as_bytes());
    let mut x = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let mut name = String::from("s");
    for _ in 0..7 {
        let d = (x % 36) as u32;
        x /= 36;
        name.push(char::from_digit(d, 36).unwrap_or('0'));
    }
    let vni = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) % (VNI_RANGE - 10_000) + 10_000;
    (name, vni)
}

impl Planner {
    /// `alias(user, name)` in a VXLAN lab: the user's VNet for `name` (found by its marker,
    /// else a new stable name), with `SDN.Use` for the user only.
    pub(super) fn vnet_alias(&mut self, userid: &str, name: &str, vlan: bool, zone: &str) -> Result<String, PlanError> {
        if let Some(v) = self.vnets.iter_mut().find(|v| v.owner == userid && v.alias == name) {
            v.vlan_aware |= vlan;
            return Ok(v.vnet.clone());
        }
        let lab = self.lab().to_string();
        let existing = self.snap.vnets.iter().find(|v| {
            v.state.as_deref() != Some("deleted")
                && matches!(&v.owner, Some(Owner::Private { lab: l, user, alias }) if *l == lab && user == userid && alias == name)
        });
        let (vnet, tag, exists) = match existing {
            Some(v) => (v.vnet.clone(), v.tag.unwrap_or(0), true),
            None => {
                let seed = format!("{lab}/{userid}/{name}");
                let taken_name =
                    |n: &str| self.snap.vnets.iter().any(|v| v.vnet == n) || self.vnets.iter().any(|v| v.vnet == n);
                let taken_tag =
                    |t: u32| self.snap.vnets.iter().any(|v| v.tag == Some(t)) || self.vnets.iter().any(|v| v.tag == t);
                let (vnet, tag) = (0..1000)
                    .map(|n| candidate(&seed, n))
                    .find(|(v, t)| !taken_name(v) && !taken_tag(*t))
                    .ok_or_else(|| PlanError::Exhausted("no free VNet name or VXLAN id left".into()))?;
                (vnet, tag, false)
            }
        };
        let acl_exists =
            self.snap.acl.iter().any(|a| a.path == format!("/sdn/zones/{zone}/{vnet}") && a.ugid == userid);
        let marker = Marker::new(&[("lab", &lab), ("user", userid), ("alias", name)]).to_string();
        self.vnets.push(VnetPlan {
            vnet: vnet.clone(),
            tag,
            vlan_aware: vlan,
            owner: userid.to_string(),
            alias: name.to_string(),
            marker,
            exists,
            acl_exists,
        });
        Ok(vnet)
    }

    /// Checks the lab's zone: an existing one must carry VXLAN (or EVPN) VNets.
    pub(super) fn check_zone(&self, zone: &str) -> Result<(), PlanError> {
        if !valid_sdn_id(zone) {
            return Err(invalid(format!(
                "lab: `zone` '{zone}' is not a valid SDN zone id (a letter, then letters or digits, 2-8 characters)"
            )));
        }
        match self.snap.zones.iter().find(|z| z.zone == zone) {
            Some(z) if z.kind != "vxlan" && z.kind != "evpn" => Err(invalid(format!(
                "lab: zone '{zone}' is a {} zone; a stand spanning nodes needs a vxlan (or evpn) zone: name another `zone`",
                z.kind
            ))),
            _ => Ok(()),
        }
    }

    /// The SDN part of the plan, in a VXLAN lab.
    pub(super) fn sdn_plan(&self) -> Option<SdnPlan> {
        let zone = self.settings.vxlan_zone.clone()?;
        let lab = self.lab();
        let zone_snap = self.snap.zones.iter().find(|z| z.zone == zone && z.state.as_deref() != Some("deleted"));
        let ours = |o: &Option<Owner>| o.as_ref().is_some_and(|o| o.has_lab(lab));
        let pending_ours = zone_snap.is_some_and(|z| z.state.is_some())
            || self.snap.vnets.iter().any(|v| v.state.is_some() && ours(&v.owner));
        let foreign = self.snap.foreign_sdn_pending(&[&zone]);
        Some(SdnPlan { zone, zone_exists: zone_snap.is_some(), vnets: self.vnets.clone(), pending_ours, foreign })
    }

    /// The node of one VM of `userid`'s stand: pinned by `clone(.., #{ node })`, placed on
    /// its own with `spread: true`, else the stand's node.
    pub(super) fn vm_node(
        &mut self,
        userid: &str,
        pinned: Option<&str>,
        private_nets: bool,
    ) -> Result<String, PlanError> {
        let vxlan = self.settings.vxlan_zone.is_some();
        match pinned {
            Some(node) => {
                let n = self.snap.node(node).ok_or_else(|| self.unknown_node(node))?;
                if !n.online {
                    return Err(invalid(format!(
                        "node '{node}' is offline: pin the VM elsewhere or bring the node back"
                    )));
                }
                let stand = self.place_balanced(userid, None)?;
                if private_nets && !vxlan && stand != node {
                    return Err(invalid(format!(
                        "the stand of {userid} is on {stand}, and its private networks are bridges of that node: \
                         pin the VM there, or make the networks span nodes with lab(#{{ network: \"vxlan\" }})"
                    )));
                }
                Ok(node.to_string())
            }
            None if self.settings.spread => self.place_alone(),
            None => self.place_balanced(userid, None),
        }
    }
}
