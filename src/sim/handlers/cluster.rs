//! `/version`, `/nodes`, `/cluster/*`, `/storage`, `/nodes/{node}/storage`.

use serde_json::{Value, json};

use crate::pve::ApiFailure;
use crate::sim::context::Ctx;
use crate::sim::core::Reply;
use crate::sim::state::{SimState, disk_size};

const BASE_MEM: u64 = 2 << 30;

fn node_used_mem(st: &SimState, node: &str) -> u64 {
    BASE_MEM + st.vms.values().filter(|v| v.node == node && v.running).map(|v| v.memory_mib() << 20).sum::<u64>()
}

pub(super) fn version(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let v = &ctx.st.version;
    let release = v.rsplitn(2, '.').last().unwrap_or(v).to_string();
    Ok(json!({ "version": v, "release": release, "repoid": "5d2c1e6f" }).into())
}

pub(super) fn nodes(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let st = &*ctx.st;
    let list: Vec<Value> = st
        .nodes
        .iter()
        .map(|(name, n)| {
            let mut item = json!({
                "node": name, "id": format!("node/{name}"), "type": "node",
                "status": if n.online { "online" } else { "offline" }, "level": "",
                "ssl_fingerprint": st.ssl_fingerprint(name),
            });
            if n.online && st.has(&ctx.who, &format!("/nodes/{name}"), "Sys.Audit") {
                item["maxmem"] = json!(n.memory);
                item["mem"] = json!(node_used_mem(st, name));
                item["maxcpu"] = json!(n.cpus);
                item["cpu"] = json!(0.02);
                item["uptime"] = json!(86_400 + st.now_ms / 1000);
                item["maxdisk"] = json!(100u64 << 30);
                item["disk"] = json!(8u64 << 30);
            }
            item
        })
        .collect();
    Ok(Value::Array(list).into())
}

pub(super) fn node_status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let node = ctx.var("node").to_string();
    ctx.st.check(&ctx.who, &format!("/nodes/{node}"), &["Sys.Audit"])?;
    let n = ctx.st.nodes.get(&node).ok_or_else(|| ApiFailure::internal(format!("no such cluster node '{node}'")))?;
    let used = node_used_mem(ctx.st, &node);
    Ok(json!({
        "uptime": 86_400 + ctx.st.now_ms / 1000,
        "cpu": 0.02,
        "cpuinfo": { "cpus": n.cpus, "sockets": 1, "model": "Simulated CPU" },
        "memory": { "total": n.memory, "used": used, "free": n.memory.saturating_sub(used) },
        "pveversion": format!("pve-manager/{}/5d2c1e6f", ctx.st.version),
        "kversion": "Linux 6.8.12-4-pve",
    })
    .into())
}

pub(super) fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let st = &*ctx.st;
    let online = st.nodes.values().filter(|n| n.online).count();
    let mut list = vec![json!({
        "type": "cluster", "id": "cluster", "name": st.cluster, "nodes": st.nodes.len(),
        "quorate": if online * 2 > st.nodes.len() { 1 } else { 0 }, "version": st.nodes.len() + 2
    })];
    for (i, (name, n)) in st.nodes.iter().enumerate() {
        list.push(json!({
            "type": "node", "id": format!("node/{name}"), "name": name, "nodeid": i + 1,
            "online": if n.online { 1 } else { 0 }, "local": if i == 0 { 1 } else { 0 },
            "ip": format!("192.0.2.{}", 11 + i), "level": ""
        }));
    }
    Ok(Value::Array(list).into())
}

/// The `/cluster/resources` item of a VM.
pub(super) fn vm_resource(st: &SimState, vmid: u32) -> Option<Value> {
    let vm = st.vms.get(&vmid)?;
    let maxdisk: u64 = vm.disks().iter().map(|(_, v)| disk_size(v)).sum();
    let mut item = json!({
        "id": format!("qemu/{vmid}"), "type": "qemu", "vmid": vmid, "node": vm.node,
        "name": vm.config.get("name").cloned().unwrap_or_else(|| format!("VM {vmid}")),
        "status": if vm.running { "running" } else { "stopped" },
        "template": if vm.is_template() { 1 } else { 0 },
        "maxmem": vm.memory_mib() << 20, "mem": if vm.running { (vm.memory_mib() << 20) / 3 } else { 0 },
        "maxcpu": vm.config.get("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1),
        "cpu": if vm.running { 0.01 * f64::from(1 + vmid % 7) } else { 0.0 }, "maxdisk": maxdisk, "disk": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
        "uptime": if vm.running { st.now_ms.saturating_sub(vm.started_ms) / 1000 } else { 0 },
    });
    if let Some(t) = vm.config.get("tags") {
        item["tags"] = json!(t);
    }
    if let Some(l) = vm.lock() {
        item["lock"] = json!(l);
    }
    if let Some(p) = st.pool_of(vmid) {
        item["pool"] = json!(p);
    }
    Some(item)
}

fn storage_resource(st: &SimState, node: &str, id: &str) -> Option<Value> {
    let s = st.storages.get(id)?;
    let used: u64 = st
        .vms
        .values()
        .flat_map(|v| v.disks())
        .filter(|(_, d)| d.starts_with(&format!("{id}:")))
        .map(|(_, d)| disk_size(&d) / if d.contains("/vm-") && d.contains("base-") { 10 } else { 1 })
        .sum();
    Some(json!({
        "id": format!("storage/{node}/{id}"), "type": "storage", "storage": id, "node": node,
        "status": "available", "plugintype": s.kind, "content": s.content.join(","),
        "shared": if s.shared { 1 } else { 0 }, "maxdisk": s.size, "disk": used.min(s.size),
    }))
}

pub(super) fn resources(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let kind = ctx.param("type").map(str::to_string);
    let want = |k: &str| kind.as_deref().is_none_or(|t| t == k);
    let st = &*ctx.st;
    let mut out = Vec::new();
    if want("vm") {
        for vmid in st.vms.keys() {
            if st.has(&ctx.who, &format!("/vms/{vmid}"), "VM.Audit")
                && let Some(r) = vm_resource(st, *vmid)
            {
                out.push(r);
            }
        }
    }
    if want("node") {
        for (name, n) in &st.nodes {
            let mut item = json!({ "id": format!("node/{name}"), "type": "node", "node": name, "status": if n.online { "online" } else { "offline" }, "level": "" });
            if st.has(&ctx.who, &format!("/nodes/{name}"), "Sys.Audit") {
                item["maxmem"] = json!(n.memory);
                item["mem"] = json!(node_used_mem(st, name));
                item["maxcpu"] = json!(n.cpus);
                item["cpu"] = json!(0.02);
                item["uptime"] = json!(86_400 + st.now_ms / 1000);
            }
            out.push(item);
        }
    }
    if want("storage") {
        for (node, n) in &st.nodes {
            if !n.online {
                continue;
            }
            for (id, s) in &st.storages {
                let path = format!("/storage/{id}");
                let visible =
                    st.has(&ctx.who, &path, "Datastore.Audit") || st.has(&ctx.who, &path, "Datastore.AllocateSpace");
                if s.on_node(node)
                    && visible
                    && let Some(r) = storage_resource(st, node, id)
                {
                    out.push(r);
                }
            }
        }
    }
    if want("pool") {
        for id in st.pools.keys() {
            if st.has(&ctx.who, &format!("/pool/{id}"), "Pool.Audit") {
                out.push(json!({ "id": format!("/pool/{id}"), "type": "pool", "pool": id }));
            }
        }
    }
    Ok(Value::Array(out).into())
}

pub(super) fn nextid(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    if let Some(v) = ctx.param("vmid") {
        let vmid: u32 = v.parse().unwrap_or(0);
        if ctx.st.vms.contains_key(&vmid) {
            return Err(ApiFailure::param("vmid", format!("VM {vmid} already exists")));
        }
        return Ok(json!(vmid.to_string()).into());
    }
    let id = (100u32..).find(|i| !ctx.st.vms.contains_key(i)).unwrap_or(100);
    Ok(json!(id.to_string()).into())
}

pub(super) fn storage_config(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let st = &*ctx.st;
    let list: Vec<Value> = st
        .storages
        .iter()
        .filter(|(id, _)| {
            let path = format!("/storage/{id}");
            st.has(&ctx.who, &path, "Datastore.Audit") || st.has(&ctx.who, &path, "Datastore.AllocateSpace")
        })
        .filter(|(_, s)| ctx.param("type").is_none_or(|t| t == s.kind))
        .map(|(id, s)| {
            let mut item = json!({ "storage": id, "type": s.kind, "content": s.content.join(","), "digest": "0000000000000000000000000000000000000000" });
            if s.shared {
                item["shared"] = json!(1);
            }
            if !s.nodes.is_empty() {
                item["nodes"] = json!(s.nodes.join(","));
            }
            item
        })
        .collect();
    Ok(Value::Array(list).into())
}

pub(super) fn node_storage(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let node = ctx.var("node").to_string();
    let st = &*ctx.st;
    let mut out = Vec::new();
    for (id, s) in &st.storages {
        let path = format!("/storage/{id}");
        let visible = st.has(&ctx.who, &path, "Datastore.Audit") || st.has(&ctx.who, &path, "Datastore.AllocateSpace");
        if !s.on_node(&node) || !visible {
            continue;
        }
        if let Some(c) = ctx.param("content")
            && !c.split(',').all(|c| s.content.iter().any(|x| x == c))
        {
            continue;
        }
        if ctx.param("storage").is_some_and(|x| x != id) {
            continue;
        }
        let r = storage_resource(st, &node, id).unwrap_or_default();
        let used = r["disk"].as_u64().unwrap_or(0);
        out.push(json!({
            "storage": id, "type": s.kind, "content": s.content.join(","), "shared": if s.shared { 1 } else { 0 },
            "active": 1, "enabled": 1, "total": s.size, "used": used, "avail": s.size - used,
            "used_fraction": used as f64 / s.size.max(1) as f64,
        }));
    }
    Ok(Value::Array(out).into())
}
