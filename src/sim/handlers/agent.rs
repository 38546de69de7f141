//! `/nodes/{node}/qemu/{vmid}/agent/...`: the QEMU guest agent (qemu-server
//! `API2/Qemu/Agent.pm`, `QemuServer/Agent.pm`) over the guest model of `sim/guest.rs`.

use serde_json::{Value, json};

use crate::pve::{ApiFailure, NetDevice, list_items};
use crate::sim::access::major_version;
use crate::sim::context::Ctx;
use crate::sim::core::Reply;
use crate::sim::guest::{Canned, Guest, Process, nic_name};

/// Who may call an agent command. PVE 9 (qemu-server b92a40ce "api: agent: use more
/// specific guest agent privileges") asks for `VM.GuestAgent.*`, each command also allowing
/// `Unrestricted`; exec and exec-status need `Unrestricted`. PVE 8 asks `VM.Monitor` for all.
fn check_privilege(ctx: &Ctx<'_>, command: &str) -> Result<(), ApiFailure> {
    let path = format!("/vms/{}", ctx.vmid());
    if major_version(&ctx.st.version) < 9 {
        return ctx.st.check(&ctx.who, &path, &["VM.Monitor"]);
    }
    let unrestricted = "VM.GuestAgent.Unrestricted";
    match command {
        "exec" | "exec-status" => ctx.st.check(&ctx.who, &path, &[unrestricted]),
        "file-read" => ctx.st.check_any(&ctx.who, &path, &["VM.GuestAgent.FileRead", unrestricted]),
        "file-write" => ctx.st.check_any(&ctx.who, &path, &["VM.GuestAgent.FileWrite", unrestricted]),
        _ => ctx.st.check_any(&ctx.who, &path, &["VM.GuestAgent.Audit", unrestricted]),
    }
}

/// `assert_agent_available` (QemuServer/Agent.pm): the config has `agent`, the VM runs,
/// and the agent answers a ping: it is enabled, installed in the guest, and the guest has
/// booted far enough (the latency model's `guest_boot_ms` after the start).
fn available<'a>(ctx: &'a mut Ctx<'_>, command: &str) -> Result<&'a mut Guest, ApiFailure> {
    check_privilege(ctx, command)?;
    let (node, vmid) = (ctx.var("node").to_string(), ctx.vmid());
    let boot = ctx.scaled(ctx.opts.latency.guest_boot_ms);
    let now = ctx.now;
    let vm = ctx.st.vms.get_mut(&vmid).filter(|v| v.node == node).ok_or_else(|| {
        ApiFailure::internal(format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"))
    })?;
    let Some(agent) = vm.config.get("agent") else {
        return Err(ApiFailure::internal("No QEMU guest agent configured"));
    };
    let enabled = crate::pve::agent_enabled(agent);
    if !vm.running {
        return Err(ApiFailure::internal(format!("VM {vmid} is not running")));
    }
    let booted = now >= vm.started_ms + boot;
    match vm.guest.as_mut() {
        Some(g) if enabled && g.agent && booted => Ok(g),
        _ => Err(ApiFailure::internal("QEMU guest agent is not running")),
    }
}

/// An error the agent itself returned, as QMPClient.pm `cmd` words it.
fn qga_error(vmid: u32, command: &str, desc: &str) -> ApiFailure {
    ApiFailure::internal(format!("VM {vmid} qga command 'guest-{command}' failed - {desc}"))
}

/// `POST .../agent/ping`.
pub(super) fn ping(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    available(ctx, "ping")?;
    Ok(json!({ "result": {} }).into())
}

/// `GET .../agent/get-host-name`.
pub(super) fn hostname(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let g = available(ctx, "get-host-name")?;
    Ok(json!({ "result": { "host-name": g.hostname() } }).into())
}

/// `GET .../agent/network-get-interfaces`: `lo`, then one interface per NIC of the config
/// (named as a Linux guest names virtio NICs), with the guest's addresses.
pub(super) fn interfaces(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let vmid = ctx.vmid();
    let guest = available(ctx, "network-get-interfaces")?.clone();
    let config = ctx.st.vms.get(&vmid).map(|v| v.config.clone()).unwrap_or_default();
    let address = |cidr: &str| {
        let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "24"));
        let kind = if ip.contains(':') { "ipv6" } else { "ipv4" };
        json!({ "ip-address-type": kind, "ip-address": ip, "prefix": prefix.parse::<u32>().unwrap_or(24) })
    };
    let mut out = vec![json!({
        "name": "lo",
        "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [address("127.0.0.1/8")],
    })];
    let mut nics: Vec<(usize, NetDevice)> =
        config.iter().filter_map(|(k, v)| Some((k.strip_prefix("net")?.parse().ok()?, v.parse().ok()?))).collect();
    nics.sort_by_key(|(i, _)| *i);
    for (position, (_, nic)) in nics.iter().enumerate() {
        let name = nic_name(position);
        let addrs: Vec<Value> = guest.addresses_of(&name).iter().map(|a| address(a)).collect();
        out.push(json!({
            "name": name,
            "hardware-address": nic.mac.clone().unwrap_or_default().to_lowercase(),
            "ip-addresses": addrs,
        }));
    }
    Ok(json!({ "result": out }).into())
}

/// `POST .../agent/exec`: starts the command; it runs for the model's `guest_exec_ms`.
pub(super) fn exec(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let argv: Vec<String> =
        ctx.param("command").map(|c| list_items(c).map(str::to_string).collect()).unwrap_or_default();
    if argv.is_empty() && ctx.param("input-data").is_none() {
        return Err(ApiFailure::internal("command or input-data (or both) required"));
    }
    let done_ms = ctx.now + ctx.scaled(ctx.opts.latency.guest_exec_ms);
    let g = available(ctx, "exec")?;
    let result = g.run(&argv);
    g.last_pid = g.last_pid.max(1200) + 1 + (g.processes.len() as u64 % 3);
    let pid = g.last_pid;
    g.processes.insert(pid, Process { done_ms, result });
    Ok(json!({ "pid": pid }).into())
}

/// `GET .../agent/exec-status`: `exited: 0` while it runs; then its exit code and output,
/// once (the agent forgets a finished process it reported).
pub(super) fn exec_status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (vmid, now) = (ctx.vmid(), ctx.now);
    let pid: u64 = ctx.param("pid").and_then(|p| p.parse().ok()).unwrap_or(0);
    let g = available(ctx, "exec-status")?;
    let Some(p) = g.processes.get(&pid) else {
        return Err(qga_error(vmid, "exec-status", "Invalid parameter 'pid'"));
    };
    if now < p.done_ms {
        return Ok(json!({ "exited": 0 }).into());
    }
    let Canned { code, out, err } = g.processes.remove(&pid).map(|p| p.result).unwrap_or_default();
    let mut answer = json!({ "exited": 1, "exitcode": code });
    // qemu-ga leaves out empty streams.
    if !out.is_empty() {
        answer["out-data"] = json!(out);
    }
    if !err.is_empty() {
        answer["err-data"] = json!(err);
    }
    Ok(answer.into())
}

/// `GET .../agent/file-read`.
pub(super) fn file_read(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let vmid = ctx.vmid();
    let file = ctx.param("file").unwrap_or_default().to_string();
    let g = available(ctx, "file-read")?;
    match g.files.get(&file) {
        Some(content) => Ok(json!({ "content": content, "bytes-read": content.len() }).into()),
        None => Err(qga_error(
            vmid,
            "file-open",
            &format!("failed to open file '{file}' (mode: 'r'): No such file or directory"),
        )),
    }
}

/// `POST .../agent/file-write`: `content` as given (`encode`, the default, has PVE encode
/// it for the agent; without it the content must be base64 already).
pub(super) fn file_write(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    use base64::Engine as _;
    let vmid = ctx.vmid();
    let file = ctx.param("file").unwrap_or_default().to_string();
    let raw = ctx.param("content").unwrap_or_default().to_string();
    let content = if ctx.flag("encode").unwrap_or(true) {
        raw
    } else {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| qga_error(vmid, "file-write", "Invalid parameter 'buf-b64'"))?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    if !file.starts_with('/') {
        return Err(qga_error(
            vmid,
            "file-open",
            &format!("failed to open file '{file}' (mode: 'wb'): No such file or directory"),
        ));
    }
    let g = available(ctx, "file-write")?;
    g.files.insert(file, content);
    Ok(Value::Null.into())
}
