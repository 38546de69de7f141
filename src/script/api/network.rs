//! Networks: shared bridges (`ensure_bridge`) and students' private ones (`alias`).

use std::sync::Arc;

use rhai::{Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
const DOC_ENSURE_BRIDGE: &str = r#"/// A shared bridge that must exist on `node`: made when missing; every lab that ensures it is
/// recorded on it, and `down` removes it only when no VM is wired to it and no other lab
/// uses it. A bridge `stand` did not make is never changed.
///
/// ```rhai
/// let common = ensure_bridge("pve1", "vmbr60");
/// ```"#;
const DOC_ALIAS: &str = r#"/// The student's private bridge for the network `name` on their node (`vmbr1000`+, the first
/// free number, the same on every run); only its owner gets `SDN.Use` on it. `"lan.10"`
/// makes the bridge VLAN aware and tags the NICs on it with 10; the untagged alias on the
/// same bridge is a trunk.
///
/// ```rhai
/// let lan = alias(user, "lan");
/// let lan10 = alias(user, "lan.10");
/// ```"#;
const DOC_ALIAS_1: &str = r#"/// The same with the VLAN as a setting: `#{ vlan: 10 }`.
///
/// ```rhai
/// let lan10 = alias(user, "lan", #{ vlan: 10 });
/// ```"#;

/// Registers `ensure_bridge`, `alias`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("ensure_bridge")
        .with_params_info(["node: &str", "name: &str", "String"])
        .with_comments([DOC_ENSURE_BRIDGE])
        .register_into_engine(engine, move |ctx: NativeCallContext, node: &str, name: &str| -> Res<String> {
            a.planner().ensure_bridge(node, name).or_else(|e| plan_err(&ctx, "ensure_bridge", e))
        });
    let a = api.clone();
    FuncRegistration::new("alias")
        .with_params_info(["user: Dynamic", "name: &str", "String"])
        .with_comments([DOC_ALIAS])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, name: &str| -> Res<String> {
            let id = userid(&ctx, "alias", &u)?;
            a.planner().alias(&id, name, None).or_else(|e| plan_err(&ctx, "alias", e))
        });
    let a = api.clone();
    FuncRegistration::new("alias")
        .with_params_info(["user: Dynamic", "name: &str", "opts: Map", "String"])
        .with_comments([DOC_ALIAS_1])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, u: Dynamic, name: &str, opts: Map| -> Res<String> {
                let id = userid(&ctx, "alias", &u)?;
                let vlan = match opts.get("vlan") {
                    None => None,
                    Some(v) => match v.as_int() {
                        Ok(t) if (1..=4094).contains(&t) => Some(t as u16),
                        _ => return fail(&ctx, "alias: `vlan` must be an integer within 1..4094"),
                    },
                };
                if let Some(k) = opts.keys().find(|k| k.as_str() != "vlan") {
                    return fail(&ctx, format!("alias: unknown key `{k}`; valid keys: vlan"));
                }
                a.planner().alias(&id, name, vlan).or_else(|e| plan_err(&ctx, "alias", e))
            },
        );
}
