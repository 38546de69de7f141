//! The endpoint handlers, one file per API area, and what tasks do when they end.

mod access;
mod agent;
mod cluster;
mod network;
mod pools;
mod qemu;
mod sdn;
mod tasks;

use super::context::Ctx;
use super::core::Reply;
use super::state::{Effect, SimState, Task};
use crate::pve::{ApiFailure, Method};

/// Calls the handler of `method template`.
pub(super) fn dispatch(ctx: &mut Ctx<'_>, method: Method, template: &str) -> Result<Reply, ApiFailure> {
    use Method::*;
    match (method, template) {
        (Get, "/version") => cluster::version(ctx),
        (Get, "/nodes") => cluster::nodes(ctx),
        (Get, "/nodes/{node}/status") => cluster::node_status(ctx),
        (Get, "/cluster/status") => cluster::status(ctx),
        (Get, "/cluster/resources") => cluster::resources(ctx),
        (Get, "/cluster/nextid") => cluster::nextid(ctx),
        (Get, "/storage") => cluster::storage_config(ctx),
        (Get, "/nodes/{node}/storage") => cluster::node_storage(ctx),

        (Get, "/nodes/{node}/qemu") => qemu::list(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}") => qemu::index(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/config") => qemu::config(ctx),
        (Put, "/nodes/{node}/qemu/{vmid}/config") => qemu::update_config(ctx, false),
        (Post, "/nodes/{node}/qemu/{vmid}/config") => qemu::update_config(ctx, true),
        (Post, "/nodes/{node}/qemu/{vmid}/clone") => qemu::clone(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/template") => qemu::template(ctx),
        (Put, "/nodes/{node}/qemu/{vmid}/resize") => qemu::resize(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/status") => qemu::status_index(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/status/current") => qemu::status(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/migrate") => qemu::migrate(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/status/start") => qemu::power(ctx, "start"),
        (Post, "/nodes/{node}/qemu/{vmid}/status/stop") => qemu::power(ctx, "stop"),
        (Post, "/nodes/{node}/qemu/{vmid}/status/shutdown") => qemu::power(ctx, "shutdown"),
        (Post, "/nodes/{node}/qemu/{vmid}/status/reboot") => qemu::power(ctx, "reboot"),
        (Delete, "/nodes/{node}/qemu/{vmid}") => qemu::destroy(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/snapshot") => qemu::snapshots(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/snapshot") => qemu::snapshot(ctx),
        (Delete, "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}") => qemu::delete_snapshot(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback") => qemu::rollback(ctx),

        (Post, "/nodes/{node}/qemu/{vmid}/agent/ping") => agent::ping(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/agent/get-host-name") => agent::hostname(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces") => agent::interfaces(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/agent/exec") => agent::exec(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/agent/exec-status") => agent::exec_status(ctx),
        (Get, "/nodes/{node}/qemu/{vmid}/agent/file-read") => agent::file_read(ctx),
        (Post, "/nodes/{node}/qemu/{vmid}/agent/file-write") => agent::file_write(ctx),

        (Get, "/nodes/{node}/network") => network::list(ctx),
        (Post, "/nodes/{node}/network") => network::create(ctx),
        (Put, "/nodes/{node}/network") => network::reload(ctx),
        (Delete, "/nodes/{node}/network") => network::revert(ctx),
        (Get, "/nodes/{node}/network/{iface}") => network::get(ctx),
        (Put, "/nodes/{node}/network/{iface}") => network::update(ctx),
        (Delete, "/nodes/{node}/network/{iface}") => network::delete(ctx),

        (Get, "/cluster/sdn") => sdn::index(ctx),
        (Put, "/cluster/sdn") => sdn::apply(ctx),
        (Get, "/cluster/sdn/zones") => sdn::zones(ctx),
        (Post, "/cluster/sdn/zones") => sdn::create_zone(ctx),
        (Get, "/cluster/sdn/zones/{zone}") => sdn::zone(ctx),
        (Delete, "/cluster/sdn/zones/{zone}") => sdn::delete_zone(ctx),
        (Get, "/cluster/sdn/vnets") => sdn::vnets(ctx),
        (Post, "/cluster/sdn/vnets") => sdn::create_vnet(ctx),
        (Get, "/cluster/sdn/vnets/{vnet}") => sdn::vnet(ctx),
        (Delete, "/cluster/sdn/vnets/{vnet}") => sdn::delete_vnet(ctx),
        (Get, "/cluster/sdn/vnets/{vnet}/subnets") => sdn::subnets(ctx),
        (Post, "/cluster/sdn/vnets/{vnet}/subnets") => sdn::create_subnet(ctx),
        (Get, "/cluster/sdn/vnets/{vnet}/subnets/{subnet}") => sdn::subnet(ctx),
        (Put, "/cluster/sdn/vnets/{vnet}/subnets/{subnet}") => sdn::update_subnet(ctx),
        (Delete, "/cluster/sdn/vnets/{vnet}/subnets/{subnet}") => sdn::delete_subnet(ctx),

        (Get, "/nodes/{node}/tasks") => tasks::list(ctx),
        (Get, "/nodes/{node}/tasks/{upid}") => tasks::index(ctx),
        (Get, "/nodes/{node}/tasks/{upid}/status") => tasks::status(ctx),
        (Get, "/nodes/{node}/tasks/{upid}/log") => tasks::log(ctx),

        (Post, "/access/ticket") => access::ticket(ctx),
        (Get, "/access/ticket") => Ok(serde_json::Value::Null.into()),
        (Get, "/access/permissions") => access::permissions(ctx),
        (Get, "/access/users") => access::users(ctx),
        (Get, "/access/domains") => access::domains(),
        (Post, "/access/users") => access::create_user(ctx),
        (Get, "/access/users/{userid}") => access::user(ctx),
        (Put, "/access/users/{userid}") => access::update_user(ctx),
        (Delete, "/access/users/{userid}") => access::delete_user(ctx),
        (Get, "/access/users/{userid}/token/{tokenid}") => access::token(ctx),
        (Post, "/access/users/{userid}/token/{tokenid}") => access::create_token(ctx),
        (Delete, "/access/users/{userid}/token/{tokenid}") => access::delete_token(ctx),
        (Put, "/access/password") => access::password(ctx),
        (Get, "/access/acl") => access::acl(ctx),
        (Put, "/access/acl") => access::update_acl(ctx),
        (Get, "/access/roles") => access::roles(ctx),
        (Get, "/access/groups") => access::groups(ctx),
        (Post, "/access/groups") => access::create_group(ctx),
        (Put, "/access/groups/{groupid}") => access::update_group(ctx),
        (Delete, "/access/groups/{groupid}") => access::delete_group(ctx),

        (Get, "/pools") => pools::list(ctx),
        (Post, "/pools") => pools::create(ctx),
        (Put, "/pools") => pools::update(ctx, None),
        (Delete, "/pools") => pools::delete(ctx, None),
        (Get, "/pools/{poolid}") => pools::get(ctx),
        (Put, "/pools/{poolid}") => {
            let id = ctx.var("poolid").to_string();
            pools::update(ctx, Some(id))
        }
        (Delete, "/pools/{poolid}") => {
            let id = ctx.var("poolid").to_string();
            pools::delete(ctx, Some(id))
        }
        _ => Err(ApiFailure::new(501, format!("Method '{method} {template}' not implemented"))),
    }
}

/// Applies what a task does when it ends.
pub(super) fn finish_task(st: &mut SimState, task: &Task) {
    let ok = task.exit == "OK";
    match &task.effect {
        Effect::None => {}
        Effect::Clone { newid, pool } => qemu::finish_clone(st, *newid, pool.as_deref(), ok),
        Effect::Destroy { vmid } => {
            if ok {
                qemu::remove_vm(st, *vmid);
            } else if let Some(vm) = st.vms.get_mut(vmid) {
                vm.config.remove("lock");
            }
        }
        Effect::Power { vmid, running } => {
            if ok && let Some(vm) = st.vms.get_mut(vmid) {
                vm.running = *running;
                vm.started_ms = task.end_ms;
                // A stop or restart ends every process in the guest.
                if let Some(g) = vm.guest.as_mut() {
                    g.processes.clear();
                }
            }
        }
        Effect::NetworkReload { node } => {
            if ok
                && let Some(net) = st.net.get_mut(node)
                && let Some(p) = net.pending.take()
            {
                net.active = p;
            }
        }
        Effect::Migrate { vmid, target, storages } => {
            if let Some(vm) = st.vms.get_mut(vmid) {
                vm.config.remove("lock");
                if ok {
                    vm.node = target.clone();
                    for (key, disk) in vm.disks() {
                        let Some((sid, rest)) = disk.split_once(':') else { continue };
                        if let Some(to) = storages.get(sid) {
                            vm.config.insert(key, format!("{to}:{rest}"));
                        }
                    }
                }
            }
        }
        Effect::Resize { vmid, disk, value } => {
            if ok && let Some(vm) = st.vms.get_mut(vmid) {
                vm.config.insert(disk.clone(), value.clone());
            }
        }
        Effect::Unlock { vmid } => {
            if let Some(vm) = st.vms.get_mut(vmid) {
                vm.config.remove("lock");
            }
        }
        Effect::SdnApply { applied } => {
            if ok {
                st.sdn.applied = (**applied).clone();
            }
        }
        Effect::Snapshot { vmid, name } => qemu::finish_snapshot(st, *vmid, name, ok),
        Effect::Rollback { vmid, start } => {
            if let Some(vm) = st.vms.get_mut(vmid) {
                vm.config.remove("lock");
                if ok && *start {
                    vm.running = true;
                    vm.started_ms = task.end_ms;
                }
            }
        }
    }
}
