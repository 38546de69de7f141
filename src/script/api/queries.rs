//! What the cluster holds, from the snapshot the plan starts from.

use std::sync::Arc;

use rhai::{Dynamic, Engine, FuncRegistration, NativeCallContext};

use super::{ApiContext, Res, fail, to_dyn};
const DOC_NODES: &str = r#"/// The cluster's nodes: `#{ name, online, maxmem, mem, maxcpu }`.
///
/// ```rhai
/// for n in nodes() { print(`${n.name}: ${n.mem / 1073741824} GiB used`); }
/// ```"#;
const DOC_VMS: &str = r#"/// The guests (not templates): `#{ vmid, node, name, status, maxmem, tags, pool, lock,
/// uptime, owner }`; `owner` names the lab and student of `stand`'s VMs.
///
/// ```rhai
/// vms().filter(|v| v.status == "running").len()
/// ```"#;
const DOC_TEMPLATES: &str = r#"/// The templates: `#{ vmid, node, name, ... }` as `vms()`.
///
/// ```rhai
/// templates().map(|t| t.name)
/// ```"#;
const DOC_STORAGES: &str = r#"/// The storages: `#{ id, kind, shared, content, nodes }`.
///
/// ```rhai
/// storages().filter(|s| s.shared)
/// ```"#;
const DOC_BRIDGES: &str = r#"/// The bridges of a node: `#{ iface, active, vlan_aware, comments, owner }`.
///
/// ```rhai
/// bridges("pve1").map(|b| b.iface)
/// ```"#;
const DOC_POOLS: &str = r#"/// The pools: `#{ poolid, comment, owner }`.
///
/// ```rhai
/// pools().len()
/// ```"#;
const DOC_CLUSTER_USERS: &str = r#"/// The cluster's users: `#{ userid, comment, groups, owner }`.
///
/// ```rhai
/// cluster_users().filter(|u| u.userid.ends_with("@pve"))
/// ```"#;

/// Registers `nodes`, `vms`, `templates`, `storages`, `bridges`, `pools`, `cluster_users`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("nodes")
        .with_params_info(["Array"])
        .with_comments([DOC_NODES])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.nodes));
    let a = api.clone();
    FuncRegistration::new("vms").with_params_info(["Array"]).with_comments([DOC_VMS]).register_into_engine(
        engine,
        move |ctx: NativeCallContext| {
            let list: Vec<_> = a.snap.vms.iter().filter(|v| !v.template).collect();
            to_dyn(&ctx, &list)
        },
    );
    let a = api.clone();
    FuncRegistration::new("templates").with_params_info(["Array"]).with_comments([DOC_TEMPLATES]).register_into_engine(
        engine,
        move |ctx: NativeCallContext| {
            let list: Vec<_> = a.snap.vms.iter().filter(|v| v.template).collect();
            to_dyn(&ctx, &list)
        },
    );
    let a = api.clone();
    FuncRegistration::new("storages")
        .with_params_info(["Array"])
        .with_comments([DOC_STORAGES])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.storages));
    let a = api.clone();
    FuncRegistration::new("bridges")
        .with_params_info(["node: &str", "Array"])
        .with_comments([DOC_BRIDGES])
        .register_into_engine(engine, move |ctx: NativeCallContext, node: &str| -> Res<Dynamic> {
            match a.snap.bridges.get(node) {
                Some(b) => to_dyn(&ctx, b),
                None => fail(&ctx, format!("bridges: no node '{node}'")),
            }
        });
    let a = api.clone();
    FuncRegistration::new("pools")
        .with_params_info(["Array"])
        .with_comments([DOC_POOLS])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.pools));
    let a = api.clone();
    FuncRegistration::new("cluster_users")
        .with_params_info(["Array"])
        .with_comments([DOC_CLUSTER_USERS])
        .register_into_engine(engine, move |ctx: NativeCallContext| to_dyn(&ctx, &a.snap.users));
}
