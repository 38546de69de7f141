//! What the SDN actions do: a VXLAN zone with the nodes' addresses as peers, the lab's
//! VNets, their removal, and the one `PUT /cluster/sdn` of a run that applies them.

use super::act::{ActError, Done};
use super::options::ApplyOptions;
use super::retry::{gone, repeatable, transient};
use crate::plan::Action;
use crate::pve::{Pve, PveError, PveExt};

/// A create answered "already defined" by an earlier attempt (or another run): done.
fn defined(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("already defined"))
}

/// Carries out a zone, VNet or SDN apply action.
pub async fn perform(pve: &dyn Pve, action: &Action, opts: &ApplyOptions) -> Result<Done, ActError> {
    let retries = opts.retries();
    let created = |r: Result<(), PveError>, hint: &str| match r {
        Ok(()) => Ok(Done::Changed),
        Err(e) if defined(&e) => Ok(Done::AlreadyDone),
        Err(e) => Err(ActError::new(e, hint.to_string())),
    };
    match action {
        Action::CreateZone { zone } => {
            let r = retries
                .run(transient, |_| async {
                    // The peers are the nodes' cluster addresses (pve-network VxlanPlugin:
                    // every peer but the node's own address becomes a `vxlan_remoteip`).
                    let peers: Vec<String> = pve
                        .cluster_status()
                        .await?
                        .into_iter()
                        .filter(|i| i.kind == "node")
                        .filter_map(|i| i.ip)
                        .collect();
                    pve.create_vxlan_zone(zone, &peers).await
                })
                .await;
            created(r, "check SDN.Allocate on /sdn/zones, or name an existing VXLAN zone in lab(#{ zone: .. })")
        }
        Action::CreateVnet { zone, vnet, tag, vlan_aware, marker } => {
            let r = retries.run(transient, |_| pve.create_vnet(zone, vnet, *tag, *vlan_aware, marker)).await;
            created(r, &format!("check SDN.Allocate on /sdn/zones/{zone}; re-run `stand up`"))
        }
        Action::DeleteVnet { vnet } => match retries.run(transient, |_| pve.delete_vnet(vnet)).await {
            Ok(()) => Ok(Done::Changed),
            Err(e) if gone(&e) => Ok(Done::AlreadyDone),
            Err(e) => Err(ActError::new(e, "re-run `stand down`")),
        },
        Action::ApplySdn { foreign } => {
            // `PUT /cluster/sdn` applies every pending SDN change, so not over someone else's.
            if !foreign.is_empty() && !opts.apply_foreign_network {
                return Err(ActError::new(
                    format!("pending SDN changes stand did not make ({})", foreign.join(", ")),
                    "review them (Datacenter → SDN: Apply), or pass --apply-foreign-network",
                ));
            }
            retries
                .run(repeatable, |_| async {
                    let upid = pve.apply_sdn().await?;
                    pve.wait_task(&upid, opts.wait).await
                })
                .await
                .map(|_| Done::Changed)
                .map_err(|e| ActError::new(e, "the VNets are pending; apply them in Datacenter → SDN, or re-run"))
        }
        other => {
            Err(ActError::new(format!("{} is not an SDN action", other.object()), "report this as a bug of stand"))
        }
    }
}
