//! The [`Pve`] trait (one raw call) and [`PveExt`], the typed endpoints built on it.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::PveError;
use super::request::{ApiRequest, Params, segment};
use super::task::{TaskStatus, WaitPolicy};
use super::types::*;
use super::upid::Upid;

/// A Proxmox VE API endpoint: the HTTPS client or the simulator.
#[async_trait]
pub trait Pve: Send + Sync {
    /// Performs one call and returns the whole JSON body (`{"data": ..., "changes": ...}`).
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError>;

    /// Where the calls go, for messages (`https://pve1:8006`, `simulator`).
    fn endpoint(&self) -> String;
}

#[async_trait]
impl<P: Pve + ?Sized> Pve for std::sync::Arc<P> {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        (**self).call(req).await
    }

    fn endpoint(&self) -> String {
        (**self).endpoint()
    }
}

/// Parameters of `POST /nodes/{node}/qemu/{vmid}/clone`.
#[derive(Clone, Debug, Default)]
pub struct CloneParams {
    /// VMID of the new VM.
    pub newid: u32,
    /// Name of the new VM.
    pub name: Option<String>,
    /// Target node (when not the source's).
    pub target: Option<String>,
    /// Full clone instead of linked.
    pub full: Option<bool>,
    /// Target storage (full clones only).
    pub storage: Option<String>,
    /// Pool to add the VM to.
    pub pool: Option<String>,
    /// Description of the new VM.
    pub description: Option<String>,
}

/// Parameters of `POST /nodes/{node}/network` for a bridge.
#[derive(Clone, Debug, Default)]
pub struct BridgeParams {
    /// Interface name (`vmbr1000`).
    pub iface: String,
    /// Start on boot.
    pub autostart: bool,
    /// VLAN aware.
    pub vlan_aware: bool,
    /// Ports (empty: an isolated bridge).
    pub ports: Option<String>,
    /// Comment.
    pub comments: Option<String>,
}

fn decode<T: DeserializeOwned>(path: &str, v: Value) -> Result<T, PveError> {
    serde_json::from_value(v).map_err(|e| PveError::Decode { path: path.to_string(), message: e.to_string() })
}

fn vm_path(node: &str, vmid: u32) -> String {
    format!("/nodes/{}/qemu/{vmid}", segment(node))
}

fn upid_of(path: &str, v: Value) -> Result<Upid, PveError> {
    let s: String = decode(path, v)?;
    s.parse()
        .map_err(|e: super::upid::UpidParseError| PveError::Decode { path: path.to_string(), message: e.to_string() })
}

/// The endpoints `stand` uses, typed. Implemented for every [`Pve`].
#[async_trait]
pub trait PveExt: Pve {
    /// Performs a call and decodes its `data`.
    async fn data<T: DeserializeOwned + Send>(&self, req: ApiRequest) -> Result<T, PveError> {
        let path = req.path.clone();
        let mut body = self.call(req).await?;
        decode(&path, body.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// Performs a write whose answer is `null`.
    async fn exec(&self, req: ApiRequest) -> Result<(), PveError> {
        self.call(req).await.map(|_| ())
    }

    /// Performs a call that starts a task and returns its UPID.
    async fn task(&self, req: ApiRequest) -> Result<Upid, PveError> {
        let path = req.path.clone();
        let v: Value = self.data(req).await?;
        upid_of(&path, v)
    }

    /// `GET /version`.
    async fn version(&self) -> Result<VersionInfo, PveError> {
        self.data(ApiRequest::get("/version")).await
    }

    /// `GET /nodes`.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, PveError> {
        self.data(ApiRequest::get("/nodes")).await
    }

    /// `GET /cluster/status`.
    async fn cluster_status(&self) -> Result<Vec<ClusterStatusItem>, PveError> {
        self.data(ApiRequest::get("/cluster/status")).await
    }

    /// Which cluster this is, for what is recorded about it: the cluster's name
    /// (`/cluster/status`), or for a node that is in no cluster `node/<name>`.
    async fn cluster_identity(&self) -> Result<String, PveError> {
        let status = self.cluster_status().await?;
        let name = status.iter().find(|i| i.kind == "cluster").map(|c| c.name.clone());
        let node = status.iter().find(|i| i.kind == "node").map(|n| format!("node/{}", n.name));
        Ok(name.or(node).unwrap_or_default())
    }

    /// `GET /cluster/resources[?type=..]`.
    async fn resources(&self, kind: Option<&str>) -> Result<Vec<ClusterResource>, PveError> {
        self.data(ApiRequest::get("/cluster/resources").opt("type", kind)).await
    }

    /// `GET /cluster/nextid`: read as a string or a number.
    async fn nextid(&self) -> Result<u32, PveError> {
        let v: Value = self.data(ApiRequest::get("/cluster/nextid")).await?;
        let n = match &v {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        n.ok_or_else(|| PveError::Decode { path: "/cluster/nextid".into(), message: format!("not a VMID: {v}") })
    }

    /// `GET /storage`.
    async fn storage_config(&self) -> Result<Vec<StorageConfig>, PveError> {
        self.data(ApiRequest::get("/storage")).await
    }

    /// `GET /nodes/{node}/storage`.
    async fn node_storage(&self, node: &str) -> Result<Vec<NodeStorage>, PveError> {
        self.data(ApiRequest::get(format!("/nodes/{}/storage", segment(node)))).await
    }

    /// `GET /nodes/{node}/qemu`.
    async fn vms(&self, node: &str) -> Result<Vec<VmListItem>, PveError> {
        self.data(ApiRequest::get(format!("/nodes/{}/qemu", segment(node)))).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`.
    async fn vm_config(&self, node: &str, vmid: u32) -> Result<VmConfig, PveError> {
        self.data(ApiRequest::get(format!("{}/config", vm_path(node, vmid)))).await
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/config` (synchronous).
    async fn set_vm_config(&self, node: &str, vmid: u32, params: Params) -> Result<(), PveError> {
        let mut req = ApiRequest::put(format!("{}/config", vm_path(node, vmid)));
        req.params = params;
        self.exec(req).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/clone`: the `qmclone` task.
    async fn clone_vm(&self, node: &str, vmid: u32, p: &CloneParams) -> Result<Upid, PveError> {
        let req = ApiRequest::post(format!("{}/clone", vm_path(node, vmid)))
            .param("newid", p.newid)
            .opt("name", p.name.as_deref())
            .opt("target", p.target.as_deref())
            .opt("full", p.full.map(|f| if f { 1 } else { 0 }))
            .opt("storage", p.storage.as_deref())
            .opt("pool", p.pool.as_deref())
            .opt("description", p.description.as_deref());
        self.task(req).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/template`: the `qmtemplate` task.
    async fn convert_to_template(&self, node: &str, vmid: u32) -> Result<Upid, PveError> {
        self.task(ApiRequest::post(format!("{}/template", vm_path(node, vmid)))).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/status/current`.
    async fn vm_status(&self, node: &str, vmid: u32) -> Result<VmStatus, PveError> {
        self.data(ApiRequest::get(format!("{}/status/current", vm_path(node, vmid)))).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/status/{start|stop|shutdown}`.
    async fn vm_power(&self, node: &str, vmid: u32, action: &str) -> Result<Upid, PveError> {
        self.task(ApiRequest::post(format!("{}/status/{action}", vm_path(node, vmid)))).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/status/shutdown`: asks the guest to power off (ACPI or
    /// the guest agent); after `timeout` seconds PVE stops it when `force`, else the task fails.
    async fn shutdown_vm(&self, node: &str, vmid: u32, timeout: u64, force: bool) -> Result<Upid, PveError> {
        let path = format!("{}/status/shutdown", vm_path(node, vmid));
        self.task(ApiRequest::post(path).param("timeout", timeout).opt("forceStop", force.then_some(1))).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/migrate`: moves the VM to `target` (a stopped VM
    /// offline; a running one only with `online`).
    async fn migrate_vm(&self, node: &str, vmid: u32, target: &str, online: bool) -> Result<Upid, PveError> {
        self.migrate_vm_to(node, vmid, target, online, None).await
    }

    /// [`migrate_vm`](PveExt::migrate_vm), moving local disks onto `targetstorage` on the
    /// target (PVE: "Mapping from source to target storages"; one id maps them all).
    async fn migrate_vm_to(
        &self,
        node: &str,
        vmid: u32,
        target: &str,
        online: bool,
        targetstorage: Option<&str>,
    ) -> Result<Upid, PveError> {
        let path = format!("{}/migrate", vm_path(node, vmid));
        let req = ApiRequest::post(path)
            .param("target", target)
            .opt("online", online.then_some(1))
            .opt("targetstorage", targetstorage);
        self.task(req).await
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`.
    async fn delete_vm(&self, node: &str, vmid: u32) -> Result<Upid, PveError> {
        let req = ApiRequest::delete(vm_path(node, vmid)).flag("purge", true).flag("destroy-unreferenced-disks", true);
        self.task(req).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/snapshot` (disks and config, no RAM).
    async fn snapshot(&self, node: &str, vmid: u32, name: &str, description: &str) -> Result<Upid, PveError> {
        let req = ApiRequest::post(format!("{}/snapshot", vm_path(node, vmid))).param("snapname", name);
        self.task(req.opt("description", (!description.is_empty()).then_some(description))).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/snapshot`.
    async fn snapshots(&self, node: &str, vmid: u32) -> Result<Vec<Value>, PveError> {
        self.data(ApiRequest::get(format!("{}/snapshot", vm_path(node, vmid)))).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/snapshot/{name}/rollback`.
    /// With `start`, PVE starts the VM at the end of the same task.
    async fn rollback(&self, node: &str, vmid: u32, name: &str, start: bool) -> Result<Upid, PveError> {
        let path = format!("{}/snapshot/{}/rollback", vm_path(node, vmid), segment(name));
        self.task(ApiRequest::post(path).opt("start", start.then_some(1))).await
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}/snapshot/{name}`.
    async fn delete_snapshot(&self, node: &str, vmid: u32, name: &str) -> Result<Upid, PveError> {
        self.task(ApiRequest::delete(format!("{}/snapshot/{}", vm_path(node, vmid), segment(name)))).await
    }

    /// `GET /nodes/{node}/network` with its pending `changes`.
    async fn network(&self, node: &str) -> Result<NetworkState, PveError> {
        let path = format!("/nodes/{}/network", segment(node));
        let mut body = self.call(ApiRequest::get(path.clone())).await?;
        let ifaces = decode(&path, body.get_mut("data").map(Value::take).unwrap_or(Value::Null))?;
        let changes = body.get("changes").and_then(Value::as_str).map(str::to_string);
        Ok(NetworkState { ifaces, changes })
    }

    /// `POST /nodes/{node}/network` for a bridge (staged until applied).
    async fn create_bridge(&self, node: &str, p: &BridgeParams) -> Result<(), PveError> {
        let req = ApiRequest::post(format!("/nodes/{}/network", segment(node)))
            .param("iface", &p.iface)
            .param("type", "bridge")
            .flag("autostart", p.autostart)
            .opt("bridge_vlan_aware", p.vlan_aware.then_some(1))
            .opt("bridge_ports", p.ports.as_deref())
            .opt("comments", p.comments.as_deref());
        self.exec(req).await
    }

    /// `PUT /nodes/{node}/network/{iface}`: a bridge's comment (staged until applied; PVE
    /// keeps the settings not named).
    async fn set_bridge_comment(&self, node: &str, iface: &str, comments: &str) -> Result<(), PveError> {
        let req = ApiRequest::put(format!("/nodes/{}/network/{}", segment(node), segment(iface)))
            .param("type", "bridge")
            .param("comments", comments);
        self.exec(req).await
    }

    /// `DELETE /nodes/{node}/network/{iface}` (staged until applied).
    async fn delete_iface(&self, node: &str, iface: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/nodes/{}/network/{}", segment(node), segment(iface)))).await
    }

    /// `PUT /nodes/{node}/network`: applies staged changes in a `srvreload` task.
    async fn apply_network(&self, node: &str) -> Result<Upid, PveError> {
        self.task(ApiRequest::put(format!("/nodes/{}/network", segment(node)))).await
    }

    /// `DELETE /nodes/{node}/network`: drops staged changes.
    async fn revert_network(&self, node: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/nodes/{}/network", segment(node)))).await
    }

    /// `GET /nodes/{node}/tasks`.
    async fn tasks(&self, node: &str) -> Result<Vec<TaskListItem>, PveError> {
        self.data(ApiRequest::get(format!("/nodes/{}/tasks", segment(node)))).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    async fn task_status(&self, upid: &Upid) -> Result<TaskStatus, PveError> {
        self.data(ApiRequest::get(format!(
            "/nodes/{}/tasks/{}/status",
            segment(&upid.node),
            segment(&upid.to_string())
        )))
        .await
    }

    /// `GET /nodes/{node}/tasks/{upid}/log`: the lines.
    async fn task_log(&self, upid: &Upid) -> Result<Vec<String>, PveError> {
        let v: Vec<Value> = self
            .data(ApiRequest::get(format!("/nodes/{}/tasks/{}/log", segment(&upid.node), segment(&upid.to_string()))))
            .await?;
        Ok(v.iter().filter_map(|l| l.get("t").and_then(Value::as_str).map(str::to_string)).collect())
    }

    /// Polls a VM's config until it has no lock (a task holding it ended); `Ok(false)` when
    /// the VM does not exist.
    async fn wait_unlocked(&self, node: &str, vmid: u32, policy: WaitPolicy) -> Result<bool, PveError> {
        policy
            .poll(&format!("lock of VM {vmid}"), true, || async {
                match self.vm_config(node, vmid).await {
                    Ok(cfg) => Ok(cfg.get("lock").is_none().then_some(true)),
                    Err(e) if e.failure().is_some_and(|f| f.message.contains("does not exist")) => Ok(Some(false)),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// Polls a task with backoff until it stops; a failed task is an error with its exit status.
    /// Transient failures of the poll itself are retried (a status read is always safe).
    async fn wait_task(&self, upid: &Upid, policy: WaitPolicy) -> Result<TaskStatus, PveError> {
        let st = policy
            .poll(&upid.to_string(), false, || async {
                self.task_status(upid).await.map(|st| st.is_stopped().then_some(st))
            })
            .await?;
        if st.is_ok() {
            Ok(st)
        } else {
            Err(PveError::TaskFailed { upid: upid.to_string(), exitstatus: st.exitstatus.unwrap_or_default() })
        }
    }

    /// `GET /access/domains`: the realm names.
    async fn realms(&self) -> Result<Vec<String>, PveError> {
        let list: Vec<Value> = self.data(ApiRequest::get("/access/domains")).await?;
        Ok(list.iter().filter_map(|r| r.get("realm").and_then(Value::as_str).map(str::to_string)).collect())
    }

    /// `GET /access/users?full=1`.
    async fn users(&self) -> Result<Vec<UserInfo>, PveError> {
        self.data(ApiRequest::get("/access/users").flag("full", true)).await
    }

    /// `POST /access/users`.
    async fn create_user(&self, userid: &str, password: Option<&str>, comment: Option<&str>) -> Result<(), PveError> {
        self.create_user_in(userid, password, comment, None, 0, None).await
    }

    /// `POST /access/users` with its first group, its expiry (Unix seconds, 0 = never) and
    /// its name (`firstname`, `lastname`).
    async fn create_user_in(
        &self,
        userid: &str,
        password: Option<&str>,
        comment: Option<&str>,
        group: Option<&str>,
        expire: u64,
        name: Option<(&str, &str)>,
    ) -> Result<(), PveError> {
        let expire = (expire > 0).then(|| expire.to_string());
        let req = ApiRequest::post("/access/users")
            .param("userid", userid)
            .opt("password", password)
            .opt("comment", comment)
            .opt("groups", group)
            .opt("expire", expire.as_deref())
            .opt("firstname", name.map(|n| n.0).filter(|f| !f.is_empty()))
            .opt("lastname", name.map(|n| n.1).filter(|l| !l.is_empty()));
        self.exec(req).await
    }

    /// `PUT /access/users/{userid}` adding one group to the user's groups.
    async fn join_group(&self, userid: &str, group: &str) -> Result<(), PveError> {
        let req =
            ApiRequest::put(format!("/access/users/{}", segment(userid))).param("groups", group).flag("append", true);
        self.exec(req).await
    }

    /// `GET /access/groups`: (groupid, comment).
    async fn groups(&self) -> Result<Vec<(String, Option<String>)>, PveError> {
        let list: Vec<Value> = self.data(ApiRequest::get("/access/groups")).await?;
        Ok(list
            .iter()
            .filter_map(|g| {
                let id = g.get("groupid")?.as_str()?.to_string();
                Some((id, g.get("comment").and_then(Value::as_str).map(str::to_string)))
            })
            .collect())
    }

    /// `POST /access/groups`.
    async fn create_group(&self, groupid: &str, comment: Option<&str>) -> Result<(), PveError> {
        self.exec(ApiRequest::post("/access/groups").param("groupid", groupid).opt("comment", comment)).await
    }

    /// `DELETE /access/groups/{groupid}`.
    async fn delete_group(&self, groupid: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/access/groups/{}", segment(groupid)))).await
    }

    /// `DELETE /access/users/{userid}`.
    async fn delete_user(&self, userid: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/access/users/{}", segment(userid)))).await
    }

    /// `PUT /access/password`.
    async fn set_password(&self, userid: &str, password: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::put("/access/password").param("userid", userid).param("password", password)).await
    }

    /// `GET /access/acl`.
    async fn acl(&self) -> Result<Vec<AclEntry>, PveError> {
        self.data(ApiRequest::get("/access/acl")).await
    }

    /// `PUT /access/acl` for one user (or with `delete`).
    async fn set_acl(
        &self,
        path: &str,
        role: &str,
        users: Option<&str>,
        groups: Option<&str>,
        delete: bool,
    ) -> Result<(), PveError> {
        let req = ApiRequest::put("/access/acl")
            .param("path", path)
            .param("roles", role)
            .opt("users", users)
            .opt("groups", groups)
            .opt("delete", delete.then_some(1));
        self.exec(req).await
    }

    /// `GET /pools`.
    async fn pools(&self) -> Result<Vec<PoolInfo>, PveError> {
        self.data(ApiRequest::get("/pools")).await
    }

    /// `POST /pools`.
    async fn create_pool(&self, poolid: &str, comment: Option<&str>) -> Result<(), PveError> {
        self.exec(ApiRequest::post("/pools").param("poolid", poolid).opt("comment", comment)).await
    }

    /// `DELETE /pools/{poolid}`.
    async fn delete_pool(&self, poolid: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/pools/{}", segment(poolid)))).await
    }

    /// `GET /cluster/sdn/zones?pending=1`: zones with their pending state.
    async fn sdn_zones(&self) -> Result<Vec<Value>, PveError> {
        self.data(ApiRequest::get("/cluster/sdn/zones").param("pending", 1)).await
    }

    /// `GET /cluster/sdn/vnets?pending=1`: VNets with their pending state.
    async fn sdn_vnets(&self) -> Result<Vec<Value>, PveError> {
        self.data(ApiRequest::get("/cluster/sdn/vnets").param("pending", 1)).await
    }

    /// `POST /cluster/sdn/zones`: a VXLAN zone with these peers (pending until applied).
    async fn create_vxlan_zone(&self, zone: &str, peers: &[String]) -> Result<(), PveError> {
        let req = ApiRequest::post("/cluster/sdn/zones")
            .param("zone", zone)
            .param("type", "vxlan")
            .param("peers", peers.join(","));
        self.exec(req).await
    }

    /// `POST /cluster/sdn/vnets` (pending until applied).
    async fn create_vnet(
        &self,
        zone: &str,
        vnet: &str,
        tag: u32,
        vlan_aware: bool,
        alias: &str,
    ) -> Result<(), PveError> {
        let req = ApiRequest::post("/cluster/sdn/vnets")
            .param("vnet", vnet)
            .param("zone", zone)
            .param("tag", tag)
            .param("alias", alias)
            .opt("vlanaware", vlan_aware.then_some(1));
        self.exec(req).await
    }

    /// `DELETE /cluster/sdn/vnets/{vnet}` (pending until applied).
    async fn delete_vnet(&self, vnet: &str) -> Result<(), PveError> {
        self.exec(ApiRequest::delete(format!("/cluster/sdn/vnets/{vnet}"))).await
    }

    /// `PUT /cluster/sdn`: commits the SDN configuration; every node reloads its network.
    async fn apply_sdn(&self) -> Result<Upid, PveError> {
        self.task(ApiRequest::put("/cluster/sdn")).await
    }

    /// `GET /access/permissions[?path=..]`: path → privilege → propagate.
    async fn permissions(&self, path: Option<&str>) -> Result<Value, PveError> {
        self.data(ApiRequest::get("/access/permissions").opt("path", path)).await
    }
}

impl<P: Pve + ?Sized> PveExt for P {}
