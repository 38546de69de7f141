//! Bridges made under the next free name when someone took theirs meanwhile.

use crate::apply::retry::already_exists;
use crate::plan::BridgePlan;
use crate::pve::{BridgeParams, PveError, PveExt};

use super::context::Ctx;
use crate::apply::retry::repeatable;

/// Creates one bridge; when its name was taken meanwhile by something not ours, creates it
/// under the next free name. Returns the name made.
pub(super) async fn create_bridge(ctx: &Ctx, node: &str, b: &BridgePlan, planned: &[&str]) -> Result<String, PveError> {
    let pve = &ctx.pve;
    let mut iface = b.iface.clone();
    loop {
        let p = BridgeParams {
            iface: iface.clone(),
            autostart: true,
            vlan_aware: b.vlan_aware,
            ports: None,
            comments: Some(b.comment.clone()),
        };
        let err = match ctx.retry(repeatable, |_| pve.create_bridge(node, &p)).await {
            Ok(()) => return Ok(iface),
            Err(e) if already_exists(&e) => e,
            Err(e) => return Err(e),
        };
        let net = ctx.retry(repeatable, |_| pve.network(node)).await?;
        let existing = net.ifaces.iter().find(|i| i.iface == iface);
        if existing.is_some_and(|i| i.comments.as_deref().map(str::trim_end) == Some(b.comment.as_str())) {
            return Ok(iface); // ours: an earlier attempt whose answer was lost
        }
        let taken: Vec<&str> = net.ifaces.iter().map(|i| i.iface.as_str()).chain(planned.iter().copied()).collect();
        let Some(free) = (ctx.bridge_base..10_000).map(|n| format!("vmbr{n}")).find(|n| !taken.contains(&n.as_str()))
        else {
            return Err(err);
        };
        tracing::info!(node, from = %iface, to = %free, "bridge name taken meanwhile; using the next free one");
        ctx.renamed.lock().unwrap_or_else(|e| e.into_inner()).insert((node.to_string(), b.iface.clone()), free.clone());
        ctx.count(|r| r.renamed_bridges.push(format!("{node}/{} → {free}", b.iface)));
        iface = free;
    }
}

/// The name a planned bridge was made under.
pub(super) fn made_name(ctx: &Ctx, node: &str, planned: &str) -> String {
    let renamed = ctx.renamed.lock().unwrap_or_else(|e| e.into_inner());
    renamed.get(&(node.to_string(), planned.to_string())).cloned().unwrap_or_else(|| planned.to_string())
}
