//! `/nodes/{node}/qemu/...`: list, config, clone, template, power, destroy, snapshots,
//! with qemu-server's synchronous checks, config locks and storage allocation locks.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::cluster::vm_resource;
use crate::pve::{ApiFailure, NetDevice};
use crate::sim::context::{Ctx, TaskSpec};
use crate::sim::core::Reply;
use crate::sim::state::{Effect, SimState, Snapshot, Vm, disk_size, format_size, is_disk_key};

fn missing(node: &str, vmid: u32) -> ApiFailure {
    ApiFailure::internal(format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"))
}

/// The VM of the path, which must live on the path's node.
fn vm_on_node<'a>(ctx: &'a Ctx<'_>) -> Result<&'a Vm, ApiFailure> {
    let (node, vmid) = (ctx.var("node"), ctx.vmid());
    ctx.st.vms.get(&vmid).filter(|v| v.node == node).ok_or_else(|| missing(node, vmid))
}

fn check_lock(vm: &Vm, skiplock: bool) -> Result<(), ApiFailure> {
    match vm.lock() {
        Some(l) if !skiplock => Err(ApiFailure::internal(format!("VM is locked ({l})"))),
        _ => Ok(()),
    }
}

fn digest(config: &BTreeMap<String, String>) -> String {
    let text: String = config.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    hex::encode(Sha256::digest(text.as_bytes()))[..40].to_string()
}

const INT_KEYS: &[&str] = &["cores", "sockets", "template", "onboot", "balloon", "numa", "vcpus", "protection"];

fn config_json(config: &BTreeMap<String, String>) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in config {
        let val = match (INT_KEYS.contains(&k.as_str()), v.parse::<i64>()) {
            (true, Ok(n)) => json!(n),
            _ => json!(v),
        };
        m.insert(k.clone(), val);
    }
    m.insert("digest".into(), json!(digest(config)));
    Value::Object(m)
}

pub(super) fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let node = ctx.var("node").to_string();
    let st = &*ctx.st;
    let out: Vec<Value> = st
        .vms
        .iter()
        .filter(|(id, v)| v.node == node && st.has(&ctx.who, &format!("/vms/{id}"), "VM.Audit"))
        .filter_map(|(id, v)| {
            let r = vm_resource(st, *id)?;
            let mut item = json!({
                "vmid": id, "name": r["name"], "status": r["status"], "maxmem": r["maxmem"], "mem": r["mem"],
                "maxdisk": r["maxdisk"], "disk": 0, "cpus": r["maxcpu"], "cpu": 0, "uptime": r["uptime"],
                "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
            });
            if v.is_template() {
                item["template"] = json!(1);
            }
            for k in ["tags", "lock"] {
                if !r[k].is_null() {
                    item[k] = r[k].clone();
                }
            }
            Some(item)
        })
        .collect();
    Ok(Value::Array(out).into())
}

pub(super) fn index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    vm_on_node(ctx)?;
    let subdirs = ["config", "status", "clone", "template", "snapshot", "pending", "firewall"];
    Ok(Value::Array(subdirs.iter().map(|s| json!({ "subdir": s })).collect()).into())
}

pub(super) fn config(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, &format!("/vms/{}", ctx.vmid()), &["VM.Audit"])?;
    let vm = vm_on_node(ctx)?;
    Ok(config_json(&vm.config).into())
}

/// The privilege a config key needs (qemu-server `check_vm_modify_config_perm`).
fn privilege_for_key(key: &str) -> &'static str {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match base {
        "net" => "VM.Config.Network",
        "memory" | "balloon" | "shares" => "VM.Config.Memory",
        "cores" | "sockets" | "cpu" | "cpulimit" | "cpuunits" | "vcpus" | "numa" | "affinity" => "VM.Config.CPU",
        "ipconfig" | "ciuser" | "cipassword" | "sshkeys" | "nameserver" | "searchdomain" | "citype" | "ciupgrade" => {
            "VM.Config.Cloudinit"
        }
        "machine" | "vga" | "scsihw" | "bios" | "hostpci" | "usb" | "serial" | "audio" | "tablet" | "rng" => {
            "VM.Config.HWType"
        }
        _ if is_disk_key(key) || base == "unused" => "VM.Config.Disk",
        _ => "VM.Config.Options",
    }
}

/// A `net[n]` value as PVE stores it: the MAC filled in when missing.
fn normalize_net(st: &mut SimState, value: &str) -> Result<String, String> {
    let mut dev: NetDevice = value.parse().map_err(|e: crate::pve::NetDeviceError| e.to_string())?;
    if dev.mac.is_none() {
        dev.mac = Some(st.next_mac("BC:24:11"));
    }
    Ok(dev.to_string())
}

pub(super) fn update_config(ctx: &mut Ctx<'_>, asynchronous: bool) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    let skiplock = ctx.flag("skiplock").unwrap_or(false);
    if skiplock && !ctx.who.is_root() {
        return Err(ApiFailure::param("skiplock", "Only root may use this option."));
    }
    let meta = ["digest", "skiplock", "background_delay", "delete", "revert", "node", "vmid"];
    let sets: Vec<(String, String)> =
        ctx.params.iter().filter(|(k, _)| !meta.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let deletes: Vec<String> = ctx
        .param("delete")
        .map(|d| d.split([',', ';', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let path = format!("/vms/{vmid}");
    for key in sets.iter().map(|(k, _)| k).chain(&deletes) {
        ctx.st.check(&ctx.who, &path, &[privilege_for_key(key)])?;
    }
    let vm = vm_on_node(ctx)?;
    check_lock(vm, skiplock)?;
    if let Some(d) = ctx.param("digest")
        && d != digest(&vm.config)
    {
        return Err(ApiFailure::internal("detected modified configuration - file changed by other user? Try again."));
    }
    let running = vm.running;
    let mut new_config = vm.config.clone();
    for (k, v) in &sets {
        let value = if k.starts_with("net") && k[3..].chars().all(|c| c.is_ascii_digit()) {
            let value = normalize_net(ctx.st, v).map_err(|e| ApiFailure::param(k, e))?;
            let dev: NetDevice =
                value.parse().map_err(|e: crate::pve::NetDeviceError| ApiFailure::param(k, e.to_string()))?;
            if let Some(bridge) = &dev.bridge {
                check_bridge_use(ctx, bridge, dev.tag)?;
                if running && !bridge_active(ctx.st, &node, bridge) {
                    return Err(ApiFailure::internal(format!("bridge '{bridge}' does not exist")));
                }
            }
            value
        } else if is_disk_key(k) && v.split(',').next().is_some_and(|vol| vol.ends_with(":cloudinit")) {
            cloudinit_drive(ctx.st, &new_config, k, v, vmid).map_err(ApiFailure::internal)?
        } else {
            v.clone()
        };
        new_config.insert(k.clone(), value);
    }
    for k in &deletes {
        new_config.remove(k);
    }
    if let Some(vm) = ctx.st.vms.get_mut(&vmid) {
        vm.config = new_config;
    }
    if asynchronous {
        let upid = ctx.start_task(
            &node,
            "qmconfig",
            &vmid.to_string(),
            TaskSpec::now(ctx.now, ctx.scaled(ctx.opts.latency.task_overhead_ms / 4), "OK".into(), Effect::None),
        );
        return Ok(json!(upid).into());
    }
    Ok(Value::Null.into())
}

/// A cloud-init drive asked for as `STORAGE:cloudinit` (qemu-server API2/Qemu.pm
/// `create_disks`): a volume `vm-<vmid>-cloudinit` (`.qcow2` on file storages) attached as a
/// CD-ROM, one per VM.
fn cloudinit_drive(
    st: &SimState,
    config: &BTreeMap<String, String>,
    key: &str,
    value: &str,
    vmid: u32,
) -> Result<String, String> {
    if let Some((other, _)) = config.iter().find(|(k, v)| {
        k.as_str() != key && is_disk_key(k) && v.split(',').next().is_some_and(|vol| vol.contains("-cloudinit"))
    }) {
        return Err(format!("{key} - cloud-init drive is already attached at '{other}'"));
    }
    let mut parts = value.split(',');
    let storage = parts.next().and_then(|v| v.strip_suffix(":cloudinit")).unwrap_or_default();
    let volume = match st.storages.get(storage) {
        None => return Err(format!("storage '{storage}' does not exist")),
        Some(s) if s.is_file_based() => format!("{storage}:{vmid}/vm-{vmid}-cloudinit.qcow2"),
        Some(_) => format!("{storage}:vm-{vmid}-cloudinit"),
    };
    let options = parts.filter(|p| !p.starts_with("media=") && !p.starts_with("format="));
    Ok(std::iter::once(volume)
        .chain(options.map(str::to_string))
        .chain(["media=cdrom".to_string()])
        .collect::<Vec<_>>()
        .join(","))
}

/// A non-root user needs `SDN.Use` on the bridge (pve-guest-common `check_vnet_access`):
/// a VNet on `/sdn/zones/<zone>/<vnet>[/<tag>]`, a plain bridge in the `localnetwork` zone.
fn check_bridge_use(ctx: &Ctx<'_>, bridge: &str, tag: Option<u16>) -> Result<(), ApiFailure> {
    if ctx.who.is_root() {
        return Ok(());
    }
    let zone = ctx.st.sdn.zone_of(bridge).unwrap_or("localnetwork");
    let path = match tag {
        Some(t) => format!("/sdn/zones/{zone}/{bridge}/{t}"),
        None => format!("/sdn/zones/{zone}/{bridge}"),
    };
    ctx.st.check(&ctx.who, &path, &["SDN.Use"])
}

/// A bridge the node's network has up: its own, or a VNet applied in a zone spanning it.
fn bridge_active(st: &SimState, node: &str, bridge: &str) -> bool {
    st.net.get(node).is_some_and(|n| n.active.get(bridge).is_some_and(|i| i.kind == "bridge"))
        || st.sdn.bridge_on(node, bridge)
}

fn quorate(st: &SimState) -> bool {
    st.nodes.values().filter(|n| n.online).count() * 2 > st.nodes.len()
}

/// The volume id a disk gets on `storage` for VM `newid` (linked from `base` or full).
fn new_volume(st: &SimState, storage: &str, base: Option<&str>, newid: u32) -> String {
    let file = st.storages.get(storage).is_some_and(|s| s.is_file_based());
    match (base, file) {
        (Some(b), true) => {
            format!("{storage}:{}/{newid}/vm-{newid}-disk-0.qcow2", b.split_once(':').map(|x| x.1).unwrap_or(b))
        }
        (Some(b), false) => format!("{storage}:{}/vm-{newid}-disk-0", b.split_once(':').map(|x| x.1).unwrap_or(b)),
        (None, true) => format!("{storage}:{newid}/vm-{newid}-disk-0.qcow2"),
        (None, false) => format!("{storage}:vm-{newid}-disk-0"),
    }
}

pub(super) fn clone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    let newid: u32 = ctx.param("newid").and_then(|v| v.parse().ok()).unwrap_or(0);
    let pool = ctx.param("pool").map(str::to_string);
    let target = ctx.param("target").unwrap_or(&node).to_string();
    let storage_param = ctx.param("storage").map(str::to_string);

    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Clone"])?;
    match &pool {
        Some(p) => ctx.st.check(&ctx.who, &format!("/pool/{p}"), &["VM.Allocate"])?,
        None => ctx.st.check(&ctx.who, &format!("/vms/{newid}"), &["VM.Allocate"])?,
    }
    if let Some(s) = &storage_param {
        ctx.st.check(&ctx.who, &format!("/storage/{s}"), &["Datastore.AllocateSpace"])?;
    }
    if let Some(p) = &pool
        && !ctx.st.pools.contains_key(p)
    {
        return Err(ApiFailure::internal(format!("pool '{p}' does not exist")));
    }
    if !ctx.st.nodes.contains_key(&target) {
        return Err(ApiFailure::param("target", format!("no such cluster node '{target}'")));
    }
    if let Some(s) = &storage_param {
        match ctx.st.storages.get(s) {
            None => return Err(ApiFailure::param("storage", format!("storage '{s}' does not exist"))),
            Some(st) if !st.has_images() => {
                return Err(ApiFailure::param("storage", format!("storage '{s}' does not support vm images")));
            }
            Some(st) if target != node && !st.shared => {
                return Err(ApiFailure::internal(format!("can't clone to non-shared storage '{s}'")));
            }
            Some(st) if !st.on_node(&target) => {
                return Err(ApiFailure::internal(format!("storage '{s}' is not available on node '{target}'")));
            }
            _ => {}
        }
    }
    if !quorate(ctx.st) {
        return Err(ApiFailure::internal("cluster not ready - no quorum?"));
    }
    let src = vm_on_node(ctx)?.clone();
    check_lock(&src, false)?;
    let full = ctx.flag("full").unwrap_or(!src.is_template());
    if !full {
        if storage_param.is_some() {
            return Err(ApiFailure::internal("parameter 'storage' not allowed for linked clones"));
        }
        if ctx.param("format").is_some() {
            return Err(ApiFailure::internal("parameter 'format' not allowed for linked clones"));
        }
        if !src.is_template() {
            return Err(ApiFailure::internal(
                "Linked clone feature for non-template VMs is not supported - use full clone",
            ));
        }
    }
    if ctx.st.vms.contains_key(&newid) {
        return Err(ApiFailure::internal(format!("unable to create VM {newid}: config file already exists")));
    }
    let disks = src.disks();
    if target != node {
        for (_, d) in &disks {
            let sid = d.split(':').next().unwrap_or_default();
            let shared = ctx.st.storages.get(sid).is_some_and(|s| s.shared);
            if !shared && (!full || storage_param.is_none()) {
                return Err(ApiFailure::internal(format!("can't clone VM to node '{target}' (VM uses local storage)")));
            }
        }
    }

    // The new config: the source's, new MACs on every NIC, new volumes, `lock: clone`.
    let mut config = src.config.clone();
    config.remove("template");
    config.insert("vmgenid".into(), uuid::Builder::from_random_bytes(ctx.rng.r#gen()).into_uuid().to_string());
    config.insert(
        "name".into(),
        ctx.param("name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("Copy-of-VM-{}", src.config.get("name").cloned().unwrap_or_default())),
    );
    match ctx.param("description") {
        Some(d) => {
            config.insert("description".into(), d.to_string());
        }
        None => {
            config.remove("description");
        }
    }
    let net_keys: Vec<String> =
        config.keys().filter(|k| k.starts_with("net") && k[3..].chars().all(|c| c.is_ascii_digit())).cloned().collect();
    for k in net_keys {
        if let Ok(mut dev) = config[&k].parse::<NetDevice>() {
            // qemu-server: "always change MAC! address", with the datacenter prefix.
            dev.mac = Some(ctx.st.next_mac("BC:24:11"));
            config.insert(k, dev.to_string());
        }
    }
    let mut bytes_to_copy = 0u64;
    let mut lock_storage = None;
    let mut log = Vec::new();
    for (k, d) in &disks {
        let (vol, rest) = d.split_once(',').unwrap_or((d.as_str(), ""));
        let src_storage = vol.split(':').next().unwrap_or_default().to_string();
        let dst_storage =
            if full { storage_param.clone().unwrap_or_else(|| src_storage.clone()) } else { src_storage.clone() };
        let new_vol = new_volume(ctx.st, &dst_storage, if full { None } else { Some(vol) }, newid);
        log.push(format!("create {} clone of drive {k} ({vol})", if full { "full" } else { "linked" }));
        if full {
            bytes_to_copy += disk_size(d);
        }
        config.insert(k.clone(), if rest.is_empty() { new_vol } else { format!("{new_vol},{rest}") });
        lock_storage.get_or_insert(dst_storage);
    }
    // A cloud-init drive is a CD-ROM that is not kept as it is: qemu-server's clone_vm
    // always copies it in full (`drive_is_cloudinit` → `$fullclone`), so the clone gets its
    // own `vm-<newid>-cloudinit` on the target storage.
    let cloudinit: Vec<(String, String)> = src
        .config
        .iter()
        .filter(|(k, v)| is_disk_key(k) && v.split(',').next().is_some_and(|vol| vol.contains("-cloudinit")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in cloudinit {
        let src_storage = v.split(':').next().unwrap_or_default().to_string();
        let storage = if full { storage_param.clone().unwrap_or(src_storage) } else { src_storage };
        let volume = match ctx.st.storages.get(&storage) {
            Some(s) if s.is_file_based() => format!("{storage}:{newid}/vm-{newid}-cloudinit.qcow2"),
            _ => format!("{storage}:vm-{newid}-cloudinit"),
        };
        log.push(format!("create full clone of drive {k} ({})", v.split(',').next().unwrap_or_default()));
        config.insert(k, format!("{volume},media=cdrom"));
    }
    config.insert("lock".into(), "clone".into());

    // Timing: the storage allocation lock serializes volume creation per storage.
    let lat = ctx.opts.latency.clone();
    let (fail, slow) = ctx.roll_task_faults();
    let overhead = ctx.scaled(lat.task_overhead_ms) * slow;
    let hold = ctx.scaled(if full { lat.full_alloc_ms } else { lat.linked_lock_ms }) * disks.len().max(1) as u64 * slow;
    let mut start = ctx.now + overhead / 2;
    let mut exit = "OK".to_string();
    let mut duration = overhead;
    if let Some(sid) = &lock_storage {
        let shared = ctx.st.storages.get(sid).is_some_and(|s| s.shared);
        let key = if shared { sid.clone() } else { format!("{node}/{sid}") };
        let free_at = ctx.st.storage_busy.get(&key).copied().unwrap_or(0);
        let wait = free_at.saturating_sub(start);
        let timeout = ctx.scaled(lat.lock_timeout_ms);
        if wait > timeout {
            ctx.stats.contention_timeouts += 1;
            exit = if shared {
                format!("clone failed: cfs-lock 'storage-{sid}' error: got lock request timeout")
            } else {
                format!("clone failed: can't lock file '/var/lock/pve-manager/pve-storage-{sid}' - got timeout")
            };
            duration = start - ctx.now + timeout;
            start = ctx.now;
        } else {
            let got = start + wait;
            ctx.st.storage_busy.insert(key, got + hold);
            let bandwidth = ctx.st.storages.get(sid).map(|s| s.bandwidth).unwrap_or(1 << 28);
            let copy = if lat.copy_data { ctx.scaled(bytes_to_copy * 1000 / bandwidth.max(1)) * slow } else { 0 };
            duration = (got - ctx.now) + hold + copy + overhead / 2;
            start = ctx.now;
        }
    }
    if fail && exit == "OK" {
        exit = "clone failed: command '/usr/bin/qemu-img convert' failed: exit code 1".into();
    }
    ctx.st.vms.insert(
        newid,
        Vm {
            node: target.clone(),
            config,
            running: false,
            started_ms: 0,
            snapshots: BTreeMap::new(),
            guest: src.guest.as_ref().map(|g| g.disk_copy()),
        },
    );
    let upid = ctx.start_task(
        &node,
        "qmclone",
        &vmid.to_string(),
        TaskSpec { start, duration, exit, effect: Effect::Clone { newid, pool }, log },
    );
    Ok(json!(upid).into())
}

/// End of a clone: drop the lock and join the pool, or remove the half-made VM.
pub(super) fn finish_clone(st: &mut SimState, newid: u32, pool: Option<&str>, ok: bool) {
    if ok {
        if let Some(vm) = st.vms.get_mut(&newid) {
            vm.config.remove("lock");
        }
        if let Some(p) = pool
            && let Some(pool) = st.pools.get_mut(p)
        {
            pool.vms.insert(newid);
        }
    } else {
        remove_vm(st, newid);
    }
}

/// Removes a VM with `purge`: from pools and ACLs too.
pub(super) fn remove_vm(st: &mut SimState, vmid: u32) {
    st.vms.remove(&vmid);
    for p in st.pools.values_mut() {
        p.vms.remove(&vmid);
    }
    let path = format!("/vms/{vmid}");
    st.acl.retain(|a| a.path != path);
}

/// `PUT /nodes/{node}/qemu/{vmid}/resize` (qemu-server API2/Qemu.pm `resize_vm`): `skiplock`
/// and `VM.Config.Disk` are checked at once; everything else runs in a `resize` worker under
/// the config lock, so its failures (no such VM or disk, a lock, a CD-ROM, no
/// `Datastore.AllocateSpace` on the volume's storage, a smaller size) end the task with
/// PVE's message. `+` adds to the current size; the same size changes nothing.
pub(super) fn resize(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    let skiplock = ctx.flag("skiplock").unwrap_or(false);
    if skiplock && !ctx.who.is_root() {
        return Err(ApiFailure::param("skiplock", "Only root may use this option."));
    }
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Config.Disk"])?;
    let disk = ctx.param("disk").unwrap_or_default().to_string();
    let size = ctx.param("size").unwrap_or_default().to_string();
    let grown = (|| -> Result<Option<String>, String> {
        let vm = vm_on_node(ctx).map_err(|e| e.message)?;
        if ctx.param("digest").is_some_and(|d| d != digest(&vm.config)) {
            return Err("checksum mismatch (file change by other user?)".into());
        }
        check_lock(vm, skiplock).map_err(|e| e.message)?;
        let value = vm.config.get(&disk).ok_or_else(|| format!("disk '{disk}' does not exist"))?;
        let (volid, _) = value.split_once(',').unwrap_or((value.as_str(), ""));
        if value.split(',').any(|p| p == "media=cdrom") {
            return Err("you can't resize a cdrom".into());
        }
        let storage = volid.split(':').next().unwrap_or_default();
        ctx.st.check(&ctx.who, &format!("/storage/{storage}"), &["Datastore.AllocateSpace"]).map_err(|e| e.message)?;
        let current = disk_size(value);
        let wanted = new_disk_size(&size, current).ok_or_else(|| "internal error".to_string())?;
        if wanted < current {
            return Err("shrinking disks is not supported".into());
        }
        if wanted == current {
            return Ok(None);
        }
        let rest = value.split(',').skip(1).filter(|p| !p.starts_with("size="));
        let mut parts: Vec<String> = std::iter::once(volid.to_string()).chain(rest.map(str::to_string)).collect();
        parts.push(format!("size={}", format_size(wanted)));
        Ok(Some(parts.join(",")))
    })();
    let (exit, effect) = match grown {
        Err(e) => (e, Effect::None),
        Ok(None) => ("OK".to_string(), Effect::None),
        Ok(Some(value)) => ("OK".to_string(), Effect::Resize { vmid, disk, value }),
    };
    let duration = ctx.scaled(ctx.opts.latency.task_overhead_ms / 2);
    let upid = ctx.start_task(&node, "resize", &vmid.to_string(), TaskSpec::now(ctx.now, duration, exit, effect));
    Ok(json!(upid).into())
}

/// The size `resize_vm` asks for: `[+]N[.M][KMGT]` bytes, added to `current` with `+`.
fn new_disk_size(spec: &str, current: u64) -> Option<u64> {
    let (add, num) = match spec.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let (digits, unit) = num.split_at(num.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(num.len()));
    let factor: f64 = match unit {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (digits.parse::<f64>().ok()? * factor) as u64;
    Some(if add { current + bytes } else { bytes })
}

pub(super) fn template(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Allocate"])?;
    let vm = vm_on_node(ctx)?;
    check_lock(vm, false)?;
    if vm.running {
        return Err(ApiFailure::internal("you can't convert a VM to template if VM is running"));
    }
    // qemu-server API2/Qemu.pm `template`: snapshots are checked first.
    if !vm.snapshots.is_empty() {
        return Err(ApiFailure::internal("unable to create template, because VM contains snapshots"));
    }
    if vm.is_template() {
        return Err(ApiFailure::internal("you can't convert a template to a template"));
    }
    if let Some(vm) = ctx.st.vms.get_mut(&vmid) {
        vm.config.insert("template".into(), "1".into());
        let disks = vm.disks();
        for (k, d) in disks {
            vm.config.insert(k, d.replace(&format!("vm-{vmid}-disk"), &format!("base-{vmid}-disk")));
        }
    }
    let upid = ctx.start_task(
        &node,
        "qmtemplate",
        &vmid.to_string(),
        TaskSpec::now(ctx.now, ctx.scaled(ctx.opts.latency.task_overhead_ms), "OK".into(), Effect::None),
    );
    Ok(json!(upid).into())
}

/// `GET .../status`: the directory index (qemu-server `vmcmdidx`), 500 for a missing VM.
pub(super) fn status_index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, &format!("/vms/{}", ctx.vmid()), &["VM.Audit"])?;
    vm_on_node(ctx)?;
    let subdirs = ["current", "start", "stop", "reset", "shutdown", "suspend", "reboot"];
    Ok(Value::Array(subdirs.iter().map(|s| json!({ "subcmd": s })).collect()).into())
}

/// `POST .../migrate` (qemu-server `migrate_vm` and QemuMigrate; semantics.md §13): the
/// config moves to `target` in a `qmigrate` task holding `lock: migrate`; volumes on shared
/// storage stay, local ones are copied to the same storage on the target at its bandwidth.
/// A running VM needs `online`; a stopped one asked `online` migrates offline.
pub(super) fn migrate(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Migrate"])?;
    let target = ctx.param("target").unwrap_or_default().to_string();
    if target == node {
        return Err(ApiFailure::internal("target is local node."));
    }
    match ctx.st.nodes.get(&target) {
        None => return Err(ApiFailure::param("target", format!("no such cluster node '{target}'"))),
        Some(n) if !n.online => {
            return Err(ApiFailure::internal(format!("target node '{target}' is not online")));
        }
        Some(_) => {}
    }
    let vm = vm_on_node(ctx)?.clone();
    check_lock(&vm, false)?;
    let online = ctx.flag("online").unwrap_or(false);
    if vm.running && !online {
        return Err(ApiFailure::internal("can't migrate running VM without --online"));
    }
    let mut log = Vec::new();
    if online && !vm.running {
        log.push("VM isn't running. Doing offline migration instead.".to_string());
    }
    // `targetstorage`: one storage id maps every local volume, `src:dst,..` each one
    // (qemu-server migrate_vm, storage-pair-list); each target is checked like PVE's
    // check_storage_access_migrate: enabled on the target, Datastore.AllocateSpace, images.
    let mut storages = BTreeMap::new();
    let mut map_all = None;
    if let Some(list) = ctx.param("targetstorage").map(str::to_string) {
        for pair in list.split(',') {
            let (from, to) = match pair.split_once(':') {
                Some((f, t)) => (Some(f.to_string()), t.to_string()),
                None => (None, pair.to_string()),
            };
            ctx.st.check(&ctx.who, &format!("/storage/{to}"), &["Datastore.AllocateSpace"])?;
            match ctx.st.storages.get(&to) {
                None => return Err(ApiFailure::param("targetstorage", format!("storage '{to}' does not exist"))),
                Some(s) if !s.on_node(&target) => {
                    return Err(ApiFailure::internal(format!("storage '{to}' is not available on node '{target}'")));
                }
                Some(s) if !s.has_images() => {
                    return Err(ApiFailure::internal(format!("storage '{to}' does not support vm images")));
                }
                Some(_) => {}
            }
            match from {
                Some(f) => {
                    storages.insert(f, to);
                }
                None => map_all = Some(to),
            }
        }
    }
    let mut bytes = 0u64;
    let mut bandwidth = u64::MAX;
    for (key, d) in vm.disks() {
        let sid = d.split(':').next().unwrap_or_default().to_string();
        let Some(storage) = ctx.st.storages.get(&sid) else { continue };
        if storage.shared {
            continue;
        }
        if let Some(to) = &map_all {
            storages.insert(sid.clone(), to.clone());
        }
        let lands_on = storages.get(&sid).unwrap_or(&sid);
        if !ctx.st.storages.get(lands_on).is_some_and(|s| s.on_node(&target)) {
            return Err(ApiFailure::internal(format!("storage '{lands_on}' is not available on node '{target}'")));
        }
        if vm.running && !ctx.flag("with-local-disks").unwrap_or(false) {
            return Err(ApiFailure::internal(format!(
                "can't live migrate attached local disks without with-local-disks option ({key})"
            )));
        }
        log.push(format!("copying local disk '{d}' to node '{target}'"));
        bytes += disk_size(&d);
        bandwidth = bandwidth.min(storage.bandwidth.max(1));
    }
    let lat = ctx.opts.latency.clone();
    let (fail, slow) = ctx.roll_task_faults();
    let copy = if bytes == 0 || !lat.copy_data { 0 } else { ctx.scaled(bytes * 1000 / bandwidth) };
    let duration = (ctx.scaled(lat.task_overhead_ms) + copy) * slow;
    let exit = if fail { "migration problems".to_string() } else { "OK".to_string() };
    if let Some(v) = ctx.st.vms.get_mut(&vmid) {
        v.config.insert("lock".into(), "migrate".into());
    }
    let mut spec = TaskSpec::now(ctx.now, duration, exit, Effect::Migrate { vmid, target, storages });
    spec.log = log;
    let upid = ctx.start_task(&node, "qmigrate", &vmid.to_string(), spec);
    Ok(json!(upid).into())
}

pub(super) fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let vmid = ctx.vmid();
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Audit"])?;
    vm_on_node(ctx)?;
    let r = vm_resource(ctx.st, vmid).unwrap_or_default();
    let mut out = json!({
        "vmid": vmid, "status": r["status"], "qmpstatus": r["status"], "name": r["name"], "uptime": r["uptime"],
        "cpus": r["maxcpu"], "maxmem": r["maxmem"], "mem": r["mem"], "maxdisk": r["maxdisk"], "disk": 0,
        "cpu": 0, "diskread": 0, "diskwrite": 0, "netin": 0, "netout": 0,
        "ha": { "managed": 0 },
    });
    if !r["lock"].is_null() {
        out["lock"] = r["lock"].clone();
    }
    if r["template"] == json!(1) {
        out["template"] = json!(1);
    }
    Ok(out.into())
}

/// `POST .../status/{start,stop,shutdown,reboot}` (qemu-server API2/Qemu.pm `vm_start`,
/// `vm_stop`, `vm_shutdown`, `vm_reboot`; QemuServer.pm `_do_vm_stop`). A shutdown asks the
/// guest (ACPI `system_powerdown`); a guest with `acpi: 0` never reacts, so after `timeout`
/// seconds (default 60) the task fails with "got timeout", or with `forceStop` the VM is
/// killed. A reboot needs a running VM.
pub(super) fn power(ctx: &mut Ctx<'_>, action: &str) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.PowerMgmt"])?;
    let vm = vm_on_node(ctx)?.clone();
    if vm.is_template() && action == "start" {
        return Err(ApiFailure::internal("you can't start a vm if it's a template"));
    }
    if action == "reboot" && !vm.running {
        return Err(ApiFailure::internal(format!("VM {vmid} not running")));
    }
    check_lock(&vm, false)?;
    let lat = ctx.opts.latency.clone();
    let (fail, slow) = ctx.roll_task_faults();
    let mut exit = "OK".to_string();
    let mut log = Vec::new();
    let (kind, model_ms, running) = match action {
        "start" => ("qmstart", if vm.running { 0 } else { lat.start_ms }, true),
        "stop" => ("qmstop", if vm.running { lat.stop_ms } else { 0 }, false),
        "reboot" => ("qmreboot", lat.shutdown_ms + lat.start_ms, true),
        _ => {
            let timeout_ms = ctx.param("timeout").and_then(|t| t.parse::<u64>().ok()).unwrap_or(60) * 1000;
            let ignores_acpi = vm.config.get("acpi").is_some_and(|a| a == "0");
            let ms = if !vm.running {
                0
            } else if !ignores_acpi && lat.shutdown_ms <= timeout_ms {
                lat.shutdown_ms
            } else if ctx.flag("forceStop").unwrap_or(false) {
                log.push("VM still running - terminating now with SIGTERM".to_string());
                timeout_ms + lat.stop_ms
            } else {
                exit = "VM quit/powerdown failed - got timeout".to_string();
                timeout_ms
            };
            ("qmshutdown", ms, false)
        }
    };
    if action == "start" {
        if vm.running {
            exit = format!("VM {vmid} already running");
        } else if let Some(b) = vm
            .config
            .iter()
            .filter(|(k, _)| k.starts_with("net"))
            .filter_map(|(_, v)| v.parse::<NetDevice>().ok()?.bridge)
            .find(|b| !bridge_active(ctx.st, &node, b))
        {
            exit = format!("bridge '{b}' does not exist");
        }
    }
    if fail && exit == "OK" {
        exit = format!("{action} failed: QEMU exited with code 1");
    }
    let dur = ctx.scaled(lat.task_overhead_ms + model_ms) * slow;
    let mut spec = TaskSpec::now(ctx.now, dur, exit, Effect::Power { vmid, running });
    spec.log = log;
    let upid = ctx.start_task(&node, kind, &vmid.to_string(), spec);
    Ok(json!(upid).into())
}

pub(super) fn destroy(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Allocate"])?;
    let skiplock = ctx.flag("skiplock").unwrap_or(false);
    if skiplock && !ctx.who.is_root() {
        return Err(ApiFailure::param("skiplock", "Only root may use this option."));
    }
    let vm = vm_on_node(ctx)?.clone();
    check_lock(&vm, skiplock)?;
    if vm.running {
        return Err(ApiFailure::internal(format!("VM {vmid} is running - destroy failed")));
    }
    let mut exit = "OK".to_string();
    if vm.is_template() {
        let base = format!("base-{vmid}-disk");
        let users: Vec<u32> = ctx
            .st
            .vms
            .iter()
            .filter(|(id, v)| **id != vmid && v.disks().iter().any(|(_, d)| d.contains(&base)))
            .map(|(id, _)| *id)
            .collect();
        if let Some(u) = users.first() {
            exit = format!("base volume '{base}-0' is still in use by linked cloned VM {u}");
        }
    }
    let (fail, slow) = ctx.roll_task_faults();
    if fail && exit == "OK" {
        exit = "volume deletion failed: command 'lvremove' failed: exit code 5".into();
    }
    if let Some(v) = ctx.st.vms.get_mut(&vmid) {
        v.config.insert("lock".into(), "destroyed".into());
    }
    let lat = &ctx.opts.latency;
    let dur = ctx.scaled(lat.task_overhead_ms + lat.destroy_ms * vm.disks().len() as u64) * slow;
    let upid = ctx.start_task(
        &node,
        "qmdestroy",
        &vmid.to_string(),
        TaskSpec::now(ctx.now, dur, exit, Effect::Destroy { vmid }),
    );
    Ok(json!(upid).into())
}

pub(super) fn snapshots(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    ctx.st.check(&ctx.who, &format!("/vms/{}", ctx.vmid()), &["VM.Audit"])?;
    let vm = vm_on_node(ctx)?;
    let mut out: Vec<Value> = vm
        .snapshots
        .iter()
        .map(|(name, s)| {
            let mut item = json!({ "name": name, "snaptime": s.snaptime, "description": s.description });
            if let Some(p) = &s.parent {
                item["parent"] = json!(p);
            }
            item
        })
        .collect();
    let mut current = json!({ "name": "current", "description": "You are here!", "running": if vm.running { 1 } else { 0 }, "digest": digest(&vm.config) });
    if let Some(p) = vm.config.get("parent") {
        current["parent"] = json!(p);
    }
    out.push(current);
    Ok(Value::Array(out).into())
}

pub(super) fn snapshot(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Snapshot"])?;
    let name = ctx.param("snapname").unwrap_or_default().to_string();
    let description = ctx.param("description").unwrap_or_default().to_string();
    let vm = vm_on_node(ctx)?;
    check_lock(vm, false)?;
    if vm.is_template() {
        return Err(ApiFailure::internal("you can't take a snapshot if it's a template"));
    }
    if vm.snapshots.contains_key(&name) {
        return Err(ApiFailure::internal(format!("snapshot name '{name}' already used")));
    }
    // AbstractConfig::snapshot_prepare: every volume's storage must support snapshots.
    if !can_snapshot(ctx.st, vm) {
        return Err(ApiFailure::internal("snapshot feature is not available"));
    }
    let snaptime = ctx.st.unix(ctx.now);
    if let Some(vm) = ctx.st.vms.get_mut(&vmid) {
        let mut config = vm.config.clone();
        config.remove("parent");
        let parent = vm.config.get("parent").cloned();
        let guest = vm.guest.as_ref().map(|g| g.disk_copy());
        vm.snapshots.insert(name.clone(), Snapshot { config, snaptime, description, parent, guest });
        vm.config.insert("parent".into(), name.clone());
        vm.config.insert("lock".into(), "snapshot".into());
    }
    let (fail, slow) = ctx.roll_task_faults();
    let exit = if fail { "snapshot create failed: starting cleanup".to_string() } else { "OK".to_string() };
    let dur = ctx.scaled(ctx.opts.latency.snapshot_ms) * slow;
    let upid = ctx.start_task(
        &node,
        "qmsnapshot",
        &vmid.to_string(),
        TaskSpec::now(ctx.now, dur, exit, Effect::Snapshot { vmid, name }),
    );
    Ok(json!(upid).into())
}

/// `POST .../snapshot/{snapname}/rollback` (qemu-server API2/Qemu.pm `rollback`,
/// AbstractConfig::snapshot_rollback): `VM.Snapshot` or `VM.Snapshot.Rollback`, and
/// `VM.PowerMgmt` with `start`. A running VM is stopped first; the snapshot's config comes
/// back under `lock: rollback`; with `start` the VM starts at the end of the task.
pub(super) fn rollback(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check_any(&ctx.who, &format!("/vms/{vmid}"), &["VM.Snapshot", "VM.Snapshot.Rollback"])?;
    let start = ctx.flag("start").unwrap_or(false);
    if start {
        ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.PowerMgmt"])?;
    }
    let name = ctx.var("snapname").to_string();
    let vm = vm_on_node(ctx)?;
    check_lock(vm, false)?;
    let was_running = vm.running;
    let snap = vm
        .snapshots
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiFailure::internal(format!("snapshot '{name}' does not exist")))?;
    if let Some(vm) = ctx.st.vms.get_mut(&vmid) {
        vm.config = snap.config;
        // The disk goes back, and with it what the guest held.
        if snap.guest.is_some() {
            vm.guest = snap.guest;
        }
        vm.config.insert("parent".into(), name);
        vm.config.insert("lock".into(), "rollback".into());
        vm.running = false;
    }
    let lat = ctx.opts.latency.clone();
    let (fail, slow) = ctx.roll_task_faults();
    let exit = if fail {
        "rollback failed: command 'qemu-img snapshot' failed: exit code 1".to_string()
    } else {
        "OK".to_string()
    };
    let model = lat.snapshot_ms + if was_running { lat.stop_ms } else { 0 } + if start { lat.start_ms } else { 0 };
    let dur = ctx.scaled(lat.task_overhead_ms + model) * slow;
    let upid = ctx.start_task(
        &node,
        "qmrollback",
        &vmid.to_string(),
        TaskSpec::now(ctx.now, dur, exit, Effect::Rollback { vmid, start }),
    );
    Ok(json!(upid).into())
}

/// Whether every volume of `vm` is on a storage that can snapshot it (pve-storage
/// `volume_has_feature`): not thick LVM, not a raw file.
fn can_snapshot(st: &SimState, vm: &Vm) -> bool {
    vm.disks().iter().all(|(_, d)| {
        let sid = d.split(':').next().unwrap_or_default();
        let volume = d.split(',').next().unwrap_or_default();
        match st.storages.get(sid) {
            Some(s) if s.kind == "lvm" => false,
            Some(s) if matches!(s.kind.as_str(), "dir" | "nfs" | "cifs") => !volume.ends_with(".raw"),
            _ => true,
        }
    })
}

/// The end of a `qmsnapshot` task: the lock goes; a failed snapshot is removed again.
pub(super) fn finish_snapshot(st: &mut SimState, vmid: u32, name: &str, ok: bool) {
    let Some(vm) = st.vms.get_mut(&vmid) else { return };
    vm.config.remove("lock");
    if !ok && let Some(snap) = vm.snapshots.remove(name) {
        match snap.parent {
            Some(p) => vm.config.insert("parent".into(), p),
            None => vm.config.remove("parent"),
        };
    }
}

pub(super) fn delete_snapshot(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Snapshot"])?;
    let name = ctx.var("snapname").to_string();
    let vm = vm_on_node(ctx)?;
    if !vm.snapshots.contains_key(&name) {
        return Err(ApiFailure::internal(format!("snapshot '{name}' does not exist")));
    }
    if let Some(vm) = ctx.st.vms.get_mut(&vmid) {
        let removed = vm.snapshots.remove(&name);
        let parent = removed.and_then(|s| s.parent);
        for s in vm.snapshots.values_mut() {
            if s.parent.as_deref() == Some(name.as_str()) {
                s.parent = parent.clone();
            }
        }
        if vm.config.get("parent") == Some(&name) {
            match &parent {
                Some(p) => vm.config.insert("parent".into(), p.clone()),
                None => vm.config.remove("parent"),
            };
        }
    }
    let upid = ctx.start_task(
        &node,
        "qmdelsnapshot",
        &vmid.to_string(),
        TaskSpec::now(ctx.now, ctx.scaled(ctx.opts.latency.snapshot_ms), "OK".into(), Effect::None),
    );
    Ok(json!(upid).into())
}
