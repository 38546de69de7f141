//! Where a student's stand runs: `place_balanced`, `place`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, Map, NativeCallContext};

use super::{ApiContext, Res, fail, plan_err, userid};
const DOC_PLACE_BALANCED: &str = r#"/// The node of the student's stand: the online node with the most memory left after what is
/// planned (a deployed stand stays where it is).
///
/// ```rhai
/// let node = place_balanced(user);
/// ```"#;
const DOC_PLACE_BALANCED_1: &str = r#"/// The same among some nodes only: `#{ nodes: ["pve1", "pve2"] }`.
///
/// ```rhai
/// place_balanced(user, #{ nodes: ["pve2", "pve3"] });
/// ```"#;
const DOC_PLACE: &str = r#"/// Pins the student's stand to `node`.
///
/// ```rhai
/// place(user, "pve2");
/// ```"#;

/// Registers `place_balanced`, `place`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("place_balanced")
        .with_params_info(["user: Dynamic", "String"])
        .with_comments([DOC_PLACE_BALANCED])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic| -> Res<String> {
            let id = userid(&ctx, "place_balanced", &u)?;
            a.planner().place_balanced(&id, None).or_else(|e| plan_err(&ctx, "place_balanced", e))
        });
    let a = api.clone();
    FuncRegistration::new("place_balanced")
        .with_params_info(["user: Dynamic", "opts: Map", "String"])
        .with_comments([DOC_PLACE_BALANCED_1])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, opts: Map| -> Res<String> {
            let id = userid(&ctx, "place_balanced", &u)?;
            let nodes: Option<Vec<String>> = match opts.get("nodes") {
                None => None,
                Some(v) => match v.clone().try_cast::<Array>() {
                    Some(arr) => Some(arr.iter().map(|x| x.to_string()).collect()),
                    None => return fail(&ctx, "place_balanced: `nodes` must be an array of node names"),
                },
            };
            if let Some(k) = opts.keys().find(|k| k.as_str() != "nodes") {
                return fail(&ctx, format!("place_balanced: unknown key `{k}`; valid keys: nodes"));
            }
            a.planner().place_balanced(&id, nodes.as_deref()).or_else(|e| plan_err(&ctx, "place_balanced", e))
        });
    let a = api.clone();
    FuncRegistration::new("place")
        .with_params_info(["user: Dynamic", "node: &str", "String"])
        .with_comments([DOC_PLACE])
        .register_into_engine(engine, move |ctx: NativeCallContext, u: Dynamic, node: &str| -> Res<String> {
            let id = userid(&ctx, "place", &u)?;
            a.planner().place(&id, node).or_else(|e| plan_err(&ctx, "place", e))
        });
}
