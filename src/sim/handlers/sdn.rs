//! `/cluster/sdn` (pve-network `PVE/API2/Network/SDN*.pm`): zones, VNets and subnets are
//! edited in the SDN configuration and stay pending until `PUT /cluster/sdn` commits them
//! and every node reloads its network (task `reloadnetworkall`); from then on a VNet is a
//! bridge of each node of its zone, used by `SDN.Use` on `/sdn/zones/<zone>/<vnet>`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::pve::ApiFailure;
use crate::sim::access::major_version;
use crate::sim::context::{Ctx, TaskSpec};
use crate::sim::core::Reply;
use crate::sim::state::{Effect, SdnConfig};

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Zone types PVE knows (Zones.pm `type` enum).
const ZONE_TYPES: [&str; 6] = ["evpn", "faucet", "qinq", "simple", "vlan", "vxlan"];

/// Zone and VNet ids (pve-network Zones/Plugin.pm `parse_sdn_zone_id`, VnetPlugin.pm
/// `parse_sdn_vnet_id`): a letter, then letters or digits, at most 8 characters.
fn check_id(what: &str, param: &str, id: &str) -> Result<(), ApiFailure> {
    let ok = id.len() >= 2
        && id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(ApiFailure::param(param, format!("{what} ID '{id}' contains illegal characters")));
    }
    if id.len() > 8 {
        return Err(ApiFailure::param(param, format!("{what} ID '{id}' can't be more length than 8 characters")));
    }
    Ok(())
}

/// PVE 9 added SDN fabrics and the configuration lock; PVE 8 knows neither parameter.
fn check_version_params(ctx: &Ctx<'_>) -> Result<(), ApiFailure> {
    if major_version(&ctx.st.version) < 9 {
        for p in ["lock-token", "fabric", "release-lock"] {
            if ctx.param(p).is_some() {
                return Err(ApiFailure::param(
                    p,
                    "property is not defined in schema and the schema does not allow additional properties",
                ));
            }
        }
    }
    Ok(())
}

/// The sections of one kind as listed: the edited config, `running`, or with `pending`
/// each one's state against the running config (`new`, `changed`, `deleted`).
fn listing(ctx: &Ctx<'_>, pick: fn(&SdnConfig) -> &Sections, id_key: &str) -> Vec<Value> {
    let sdn = &ctx.st.sdn;
    let item = |id: &str, opts: &BTreeMap<String, String>| {
        let mut v = json!({ id_key: id });
        for (k, val) in opts {
            v[k] = match val.parse::<i64>() {
                Ok(n) if k == "tag" || k == "mtu" || k == "vxlan-port" => json!(n),
                _ => json!(val),
            };
        }
        v
    };
    if ctx.flag("running").unwrap_or(false) {
        return pick(&sdn.running).iter().map(|(id, o)| item(id, o)).collect();
    }
    let (config, running) = (pick(&sdn.config), pick(&sdn.running));
    let pending = ctx.flag("pending").unwrap_or(false);
    let mut out: Vec<Value> = config
        .iter()
        .map(|(id, o)| {
            let mut v = item(id, o);
            if pending {
                match running.get(id) {
                    None => v["state"] = json!("new"),
                    Some(r) if r != o => v["state"] = json!("changed"),
                    Some(_) => {}
                }
            }
            v
        })
        .collect();
    if pending {
        for (id, o) in running.iter().filter(|(id, _)| !config.contains_key(*id)) {
            let mut v = item(id, o);
            v["state"] = json!("deleted");
            out.push(v);
        }
    }
    out
}

/// `GET /cluster/sdn`: the directory index (SDN.Audit on `/`).
pub(super) fn index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, "/", &["SDN.Audit"])?;
    let ids = ["vnets", "zones", "controllers", "ipams", "dns"];
    Ok(Value::Array(ids.iter().map(|id| json!({ "id": id })).collect()).into())
}

/// `PUT /cluster/sdn` (SDN.pm `reload`, SDN.Allocate on `/sdn`): commits the configuration
/// at once (`commit_config`), then a `reloadnetworkall` worker reloads every node.
pub(super) fn apply(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, "/sdn", &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    ctx.st.sdn.running = ctx.st.sdn.config.clone();
    let applied = Box::new(ctx.st.sdn.running.clone());
    let node = ctx.st.nodes.keys().next().cloned().unwrap_or_default();
    let lat = &ctx.opts.latency;
    let duration = ctx.scaled(lat.task_overhead_ms + lat.network_reload_ms);
    let (fail, slow) = ctx.roll_task_faults();
    let exit = if fail { "reload network config failed".to_string() } else { "OK".to_string() };
    let mut spec = TaskSpec::now(ctx.now, duration * slow, exit, Effect::SdnApply { applied });
    spec.log = ctx.st.nodes.keys().map(|n| format!("{n}: reloading network config")).collect();
    let upid = ctx.start_task(&node, "reloadnetworkall", "", spec);
    Ok(json!(upid).into())
}

/// `GET /cluster/sdn/zones`: the zones the caller may audit or allocate on.
pub(super) fn zones(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let kind = ctx.param("type").map(str::to_string);
    let list: Vec<Value> = listing(ctx, |c| &c.zones, "zone")
        .into_iter()
        .filter(|z| kind.as_deref().is_none_or(|k| z["type"] == k))
        .filter(|z| {
            let path = format!("/sdn/zones/{}", z["zone"].as_str().unwrap_or_default());
            ctx.st.check_any(&ctx.who, &path, &["SDN.Audit", "SDN.Allocate"]).is_ok()
        })
        .collect();
    Ok(Value::Array(list).into())
}

/// `GET /cluster/sdn/zones/{zone}`.
pub(super) fn zone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("zone").to_string();
    ctx.st.check_any(&ctx.who, &format!("/sdn/zones/{id}"), &["SDN.Audit", "SDN.Allocate"])?;
    listing(ctx, |c| &c.zones, "zone")
        .into_iter()
        .find(|z| z["zone"] == id.as_str())
        .map(Reply::from)
        .ok_or_else(|| ApiFailure::internal(format!("sdn zone '{id}' does not exist")))
}

/// `POST /cluster/sdn/zones` (Zones.pm `create`, SDN.Allocate on `/sdn/zones`).
pub(super) fn create_zone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, "/sdn/zones", &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    let id = ctx.param("zone").unwrap_or_default().to_string();
    let kind = ctx.param("type").unwrap_or_default().to_string();
    check_id("zone", "zone", &id)?;
    if !ZONE_TYPES.contains(&kind.as_str()) {
        return Err(ApiFailure::param("type", format!("value '{kind}' does not have a value in the enumeration")));
    }
    if ctx.st.sdn.config.zones.contains_key(&id) {
        return Err(ApiFailure::internal(format!("sdn zone object ID '{id}' already defined")));
    }
    match kind.as_str() {
        // VxlanPlugin.pm on_update_hook (PVE 9); PVE 8's schema requires `peers`.
        "vxlan" if major_version(&ctx.st.version) < 9 && ctx.param("peers").is_none() => {
            return Err(ApiFailure::param("peers", "property is missing and it is not optional"));
        }
        "vxlan" if ctx.param("peers").is_some() == ctx.param("fabric").is_some() => {
            return Err(ApiFailure::params(BTreeMap::from([
                ("peers".to_string(), "must have exactly one of peers / fabric defined".to_string()),
                ("fabric".to_string(), "must have exactly one of peers / fabric defined".to_string()),
            ])));
        }
        // VlanPlugin.pm and QinQPlugin.pm: `bridge` is not optional.
        "vlan" | "qinq" if ctx.param("bridge").is_none() => {
            return Err(ApiFailure::param("bridge", "property is missing and it is not optional"));
        }
        _ => {}
    }
    if let Some(nodes) = ctx.param("nodes") {
        for n in nodes.split(',').map(str::trim) {
            if !ctx.st.nodes.contains_key(n) {
                return Err(ApiFailure::param("nodes", format!("no such cluster node '{n}'")));
            }
        }
    }
    let mut opts = BTreeMap::from([("type".to_string(), kind)]);
    for k in ["peers", "nodes", "mtu", "vxlan-port", "bridge", "tag", "ipam", "dns", "fabric"] {
        if let Some(v) = ctx.param(k) {
            opts.insert(k.to_string(), v.to_string());
        }
    }
    ctx.st.sdn.config.zones.insert(id, opts);
    Ok(Value::Null.into())
}

/// `DELETE /cluster/sdn/zones/{zone}` (SDN.Allocate on `/sdn/zones/<zone>`): refused while
/// a VNet is in it (Zones/Plugin.pm `on_delete_hook`).
pub(super) fn delete_zone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("zone").to_string();
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{id}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    if !ctx.st.sdn.config.zones.contains_key(&id) {
        return Err(ApiFailure::internal(format!("sdn zone '{id}' does not exist")));
    }
    if let Some((vnet, _)) = ctx.st.sdn.config.vnets.iter().find(|(_, v)| v.get("zone") == Some(&id)) {
        return Err(ApiFailure::internal(format!("Can't delete zone '{id}', vnet '{vnet}' is using it")));
    }
    ctx.st.sdn.config.zones.remove(&id);
    Ok(Value::Null.into())
}

/// `GET /cluster/sdn/vnets`: the VNets the caller may audit or allocate on.
pub(super) fn vnets(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let list: Vec<Value> = listing(ctx, |c| &c.vnets, "vnet")
        .into_iter()
        .filter(|v| {
            let path = format!(
                "/sdn/zones/{}/{}",
                v["zone"].as_str().unwrap_or_default(),
                v["vnet"].as_str().unwrap_or_default()
            );
            ctx.st.check_any(&ctx.who, &path, &["SDN.Audit", "SDN.Allocate"]).is_ok()
        })
        .map(|mut v| {
            v["type"] = json!("vnet");
            v
        })
        .collect();
    Ok(Value::Array(list).into())
}

/// The zone of an existing VNet (edited configuration), or PVE's error.
fn vnet_zone(ctx: &Ctx<'_>, vnet: &str) -> Result<String, ApiFailure> {
    ctx.st
        .sdn
        .zone_of(vnet)
        .map(str::to_string)
        .ok_or_else(|| ApiFailure::internal(format!("sdn vnet '{vnet}' does not exist")))
}

/// `GET /cluster/sdn/vnets/{vnet}` (SDN.Audit or SDN.Allocate on `/sdn/zones/<zone>/<vnet>`).
pub(super) fn vnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("vnet").to_string();
    let zone = vnet_zone(ctx, &id)?;
    ctx.st.check_any(&ctx.who, &format!("/sdn/zones/{zone}/{id}"), &["SDN.Audit", "SDN.Allocate"])?;
    let mut v =
        listing(ctx, |c| &c.vnets, "vnet").into_iter().find(|v| v["vnet"] == id.as_str()).unwrap_or(Value::Null);
    v["type"] = json!("vnet");
    Ok(v.into())
}

/// `POST /cluster/sdn/vnets` (Vnets.pm `create`, SDN.Allocate on `/sdn/zones/<zone>`).
pub(super) fn create_vnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.param("vnet").unwrap_or_default().to_string();
    let zone = ctx.param("zone").unwrap_or_default().to_string();
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{zone}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    check_id("vnet", "vnet", &id)?;
    let Some(zone_type) = ctx.st.sdn.config.zones.get(&zone).and_then(|z| z.get("type")).cloned() else {
        return Err(ApiFailure::param("zone", format!("zone '{zone}' doesn't exist")));
    };
    if ctx.st.sdn.config.vnets.contains_key(&id) {
        return Err(ApiFailure::internal(format!("sdn vnet object ID '{id}' already defined")));
    }
    let tag = ctx.param("tag").and_then(|t| t.parse::<u32>().ok());
    match zone_type.as_str() {
        // VxlanPlugin.pm `vnet_update_hook`: a VNI, unique among VXLAN and EVPN zones.
        "vxlan" | "evpn" => {
            let Some(tag) = tag else { return Err(ApiFailure::param("tag", "missing vxlan tag")) };
            let clash = ctx.st.sdn.config.vnets.iter().find(|(_, v)| {
                v.get("tag").and_then(|t| t.parse::<u32>().ok()) == Some(tag)
                    && v.get("zone")
                        .and_then(|z| ctx.st.sdn.config.zones.get(z))
                        .is_some_and(|z| matches!(z.get("type").map(String::as_str), Some("vxlan" | "evpn")))
            });
            if let Some((other, v)) = clash {
                let other_zone = v.get("zone").cloned().unwrap_or_default();
                return Err(ApiFailure::param(
                    "tag",
                    format!("vxlan tag {tag} already exist in vnet {other} in zone {other_zone} "),
                ));
            }
        }
        // VlanPlugin.pm: a VLAN tag 1-4094; SimplePlugin.pm: no tag at all.
        "vlan" | "qinq" if !tag.is_some_and(|t| (1..=4094).contains(&t)) => {
            return Err(ApiFailure::param("tag", "missing vlan tag"));
        }
        "simple" if tag.is_some() => return Err(ApiFailure::param("tag", "vlan tag is not allowed on simple zone")),
        _ => {}
    }
    let mut opts = BTreeMap::from([("zone".to_string(), zone)]);
    for k in ["tag", "alias", "vlanaware", "isolate-ports"] {
        if let Some(v) = ctx.param(k) {
            opts.insert(k.to_string(), v.to_string());
        }
    }
    ctx.st.sdn.config.vnets.insert(id, opts);
    Ok(Value::Null.into())
}

/// `DELETE /cluster/sdn/vnets/{vnet}` (SDN.Allocate on `/sdn/zones/<zone>/<vnet>`): refused
/// while it has subnets (VnetPlugin.pm `on_delete_hook`).
pub(super) fn delete_vnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("vnet").to_string();
    let zone = vnet_zone(ctx, &id)?;
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{zone}/{id}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    if ctx.st.sdn.config.subnets.values().any(|s| s.get("vnet") == Some(&id)) {
        return Err(ApiFailure::internal(format!("Can't delete vnet '{id}', it has subnets")));
    }
    ctx.st.sdn.config.vnets.remove(&id);
    Ok(Value::Null.into())
}

/// A subnet as the API shows it: its options, and what its id `<zone>-<network>-<mask>` says
/// (Subnets.pm `sdn_subnets_config`: `id`, `cidr`, `zone`, `network`, `mask`; the API adds
/// `dhcp-range` as a list, empty without ranges).
fn subnet_view(mut s: Value) -> Value {
    let id = s["subnet"].as_str().unwrap_or_default().to_string();
    let mut parts = id.splitn(3, '-');
    if let (Some(zone), Some(network), Some(mask)) = (parts.next(), parts.next(), parts.next()) {
        s["id"] = json!(id);
        s["cidr"] = json!(format!("{network}/{mask}"));
        s["zone"] = json!(zone);
        s["network"] = json!(network);
        s["mask"] = json!(mask);
    }
    if s.get("dhcp-range").is_none() {
        s["dhcp-range"] = json!([]);
    }
    s["type"] = json!("subnet");
    s
}

/// The subnets of `vnet` as listed (edited, `running` or `pending` configuration).
fn vnet_subnets(ctx: &Ctx<'_>, vnet: &str) -> Vec<Value> {
    listing(ctx, |c| &c.subnets, "subnet").into_iter().filter(|s| s["vnet"] == vnet).map(subnet_view).collect()
}

/// `GET /cluster/sdn/vnets/{vnet}/subnets`.
pub(super) fn subnets(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("vnet").to_string();
    let zone = vnet_zone(ctx, &id)?;
    ctx.st.check_any(&ctx.who, &format!("/sdn/zones/{zone}/{id}"), &["SDN.Audit", "SDN.Allocate"])?;
    Ok(Value::Array(vnet_subnets(ctx, &id)).into())
}

/// `GET /cluster/sdn/vnets/{vnet}/subnets/{subnet}` (Subnets.pm `read`): a subnet of another
/// VNet is a parameter error on `vnet`.
pub(super) fn subnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (vnet, id) = (ctx.var("vnet").to_string(), ctx.var("subnet").to_string());
    let zone = vnet_zone(ctx, &vnet)?;
    ctx.st.check_any(&ctx.who, &format!("/sdn/zones/{zone}/{vnet}"), &["SDN.Audit", "SDN.Allocate"])?;
    let found = listing(ctx, |c| &c.subnets, "subnet").into_iter().find(|s| s["subnet"] == id.as_str());
    match found {
        None => Err(ApiFailure::internal(format!("sdn subnet '{id}' does not exist"))),
        Some(s) if s["vnet"] != vnet.as_str() => Err(ApiFailure::param("vnet", "wrong vnet")),
        Some(s) => Ok(subnet_view(s).into()),
    }
}

/// Subnet options a client sets (SubnetPlugin.pm `options`); the rest comes from the id.
const SUBNET_OPTIONS: [&str; 4] = ["gateway", "snat", "dhcp-range", "dnszoneprefix"];

/// `POST /cluster/sdn/vnets/{vnet}/subnets` (Subnets.pm `create`, SDN.Allocate on the
/// VNet): the id is `<zone>-<address>-<prefix>`.
pub(super) fn create_subnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let vnet = ctx.var("vnet").to_string();
    let zone = vnet_zone(ctx, &vnet)?;
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{zone}/{vnet}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    let cidr = ctx.param("subnet").unwrap_or_default().to_string();
    let Some((addr, prefix)) =
        cidr.split_once('/').filter(|(a, p)| a.parse::<std::net::IpAddr>().is_ok() && p.parse::<u8>().is_ok())
    else {
        return Err(ApiFailure::param("subnet", format!("invalid format - invalid CIDR '{cidr}'")));
    };
    let id = format!("{zone}-{addr}-{prefix}");
    if ctx.st.sdn.config.subnets.contains_key(&id) {
        return Err(ApiFailure::internal(format!("sdn subnet object ID '{id}' already defined")));
    }
    let mut opts = BTreeMap::from([("vnet".to_string(), vnet)]);
    for k in SUBNET_OPTIONS {
        if let Some(v) = ctx.param(k) {
            opts.insert(k.to_string(), v.to_string());
        }
    }
    ctx.st.sdn.config.subnets.insert(id, opts);
    Ok(Value::Null.into())
}

/// `PUT /cluster/sdn/vnets/{vnet}/subnets/{subnet}` (Subnets.pm `update`): sets and
/// `delete`s options, refused on a stale `digest`.
pub(super) fn update_subnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (vnet, id) = (ctx.var("vnet").to_string(), ctx.var("subnet").to_string());
    let zone = vnet_zone(ctx, &vnet)?;
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{zone}/{vnet}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    let sets: Vec<(String, String)> =
        SUBNET_OPTIONS.iter().filter_map(|k| ctx.param(k).map(|v| (k.to_string(), v.to_string()))).collect();
    let deletes: Vec<String> =
        ctx.param("delete").map(|d| d.split([',', ';', ' ']).map(str::to_string).collect()).unwrap_or_default();
    let Some(opts) = ctx.st.sdn.config.subnets.get_mut(&id) else {
        return Err(ApiFailure::internal(format!("sdn subnet '{id}' does not exist")));
    };
    opts.extend(sets);
    for k in deletes {
        opts.remove(&k);
    }
    Ok(Value::Null.into())
}

/// `DELETE /cluster/sdn/vnets/{vnet}/subnets/{subnet}` (Subnets.pm `delete`, SDN.Allocate on
/// the VNet): the subnet goes from the edited configuration; one already gone is no error
/// (`sdn_subnets_config` is called with `noerr`). The simulator keeps no IPAM, so no subnet
/// is refused for addresses still allocated in it.
pub(super) fn delete_subnet(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (vnet, id) = (ctx.var("vnet").to_string(), ctx.var("subnet").to_string());
    let zone = vnet_zone(ctx, &vnet)?;
    ctx.st.check(&ctx.who, &format!("/sdn/zones/{zone}/{vnet}"), &["SDN.Allocate"])?;
    check_version_params(ctx)?;
    ctx.st.sdn.config.subnets.remove(&id);
    Ok(Value::Null.into())
}
