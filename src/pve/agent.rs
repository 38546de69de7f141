//! The QEMU guest agent through the API (`/nodes/{node}/qemu/{vmid}/agent/...`, qemu-server
//! `API2/Qemu/Agent.pm`): typed answers and [`AgentExt`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::{Pve, PveExt};
use super::error::PveError;
use super::request::{ApiRequest, segment};
use super::types::{boolish, numish};

/// `GET .../agent/exec-status`: PVE turns the agent's booleans into `0`/`1` and decodes
/// the base64 output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStatus {
    /// The process has ended.
    #[serde(deserialize_with = "boolish", default)]
    pub exited: bool,
    /// Its exit code, when it ended normally.
    #[serde(default)]
    pub exitcode: Option<i64>,
    /// The signal that ended it, if one did.
    #[serde(default)]
    pub signal: Option<i64>,
    /// Standard output.
    #[serde(rename = "out-data", default)]
    pub out_data: Option<String>,
    /// Standard error.
    #[serde(rename = "err-data", default)]
    pub err_data: Option<String>,
    /// Standard output was cut (the agent keeps 16 MiB at most).
    #[serde(rename = "out-truncated", deserialize_with = "boolish", default)]
    pub out_truncated: bool,
    /// Standard error was cut.
    #[serde(rename = "err-truncated", deserialize_with = "boolish", default)]
    pub err_truncated: bool,
}

/// `GET .../agent/file-read`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FileRead {
    /// The content (decoded).
    #[serde(default)]
    pub content: String,
    /// The file was longer than what was read.
    #[serde(deserialize_with = "boolish", default)]
    pub truncated: bool,
}

/// One address of a guest interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAddress {
    /// `ipv4` or `ipv6`.
    #[serde(rename = "ip-address-type")]
    pub kind: String,
    /// The address.
    #[serde(rename = "ip-address")]
    pub address: String,
    /// Prefix length.
    #[serde(deserialize_with = "numish", default)]
    pub prefix: u64,
}

/// One interface of `guest-network-get-interfaces`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInterface {
    /// Name in the guest (`ens18`, `lo`).
    pub name: String,
    /// MAC address.
    #[serde(rename = "hardware-address", default)]
    pub mac: Option<String>,
    /// Addresses.
    #[serde(rename = "ip-addresses", default)]
    pub addresses: Vec<GuestAddress>,
}

/// Whether a VM config's `agent` value enables the agent: `1`, or the property string
/// `enabled=1,...` / `1,fstrim_cloned_disks=1` (qemu-server `QemuServer/Agent.pm` `$agent_fmt`,
/// `enabled` its default key).
pub fn agent_enabled(value: &str) -> bool {
    value.split(',').any(|p| matches!(p, "1" | "enabled=1"))
}

fn agent_path(node: &str, vmid: u32, command: &str) -> String {
    format!("/nodes/{}/qemu/{vmid}/agent/{command}", segment(node))
}

/// The `result` property of a plain agent command's answer.
fn result_of(v: Value) -> Value {
    match v {
        Value::Object(mut m) => m.remove("result").unwrap_or(Value::Null),
        other => other,
    }
}

/// The guest agent endpoints. Implemented for every [`Pve`].
#[async_trait]
pub trait AgentExt: Pve {
    /// `POST .../agent/ping`: the agent answers.
    async fn agent_ping(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        self.exec(ApiRequest::post(agent_path(node, vmid, "ping"))).await
    }

    /// `GET .../agent/get-host-name`.
    async fn agent_hostname(&self, node: &str, vmid: u32) -> Result<String, PveError> {
        let v: Value = self.data(ApiRequest::get(agent_path(node, vmid, "get-host-name"))).await?;
        Ok(result_of(v).get("host-name").and_then(Value::as_str).unwrap_or_default().to_string())
    }

    /// `GET .../agent/network-get-interfaces`.
    async fn agent_interfaces(&self, node: &str, vmid: u32) -> Result<Vec<GuestInterface>, PveError> {
        let path = agent_path(node, vmid, "network-get-interfaces");
        let v: Value = self.data(ApiRequest::get(path.clone())).await?;
        serde_json::from_value(result_of(v)).map_err(|e| PveError::Decode { path, message: e.to_string() })
    }

    /// `POST .../agent/exec`: starts `argv` in the guest and returns its pid.
    async fn agent_exec(&self, node: &str, vmid: u32, argv: &[String]) -> Result<u64, PveError> {
        let path = agent_path(node, vmid, "exec");
        let v: Value = self.data(ApiRequest::post(path.clone()).list("command", argv)).await?;
        v.get("pid")
            .and_then(|p| p.as_u64().or_else(|| p.as_str().and_then(|s| s.parse().ok())))
            .ok_or_else(|| PveError::Decode { path, message: format!("no pid in {v}") })
    }

    /// `GET .../agent/exec-status?pid=`.
    async fn agent_exec_status(&self, node: &str, vmid: u32, pid: u64) -> Result<ExecStatus, PveError> {
        self.data(ApiRequest::get(agent_path(node, vmid, "exec-status")).param("pid", pid)).await
    }

    /// `GET .../agent/file-read?file=`.
    async fn agent_file_read(&self, node: &str, vmid: u32, file: &str) -> Result<FileRead, PveError> {
        self.data(ApiRequest::get(agent_path(node, vmid, "file-read")).param("file", file)).await
    }

    /// `POST .../agent/file-write` (the content is base64-encoded by PVE).
    async fn agent_file_write(&self, node: &str, vmid: u32, file: &str, content: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::post(agent_path(node, vmid, "file-write")).param("file", file).param("content", content))
            .await
    }
}

impl<P: Pve + ?Sized> AgentExt for P {}
