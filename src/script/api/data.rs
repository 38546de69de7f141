//! Files next to the script and the command line: `yaml`, `json`, `args`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, FuncRegistration, NativeCallContext};

use super::{ApiContext, Res, fail, to_dyn};

fn read_data(ctx: &NativeCallContext, api: &ApiContext, path: &str, yaml: bool) -> Res<Dynamic> {
    let p = api.path(path);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) => return fail(ctx, format!("cannot read {}: {e}", p.display())),
    };
    let value: Result<serde_json::Value, String> = if yaml {
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}:{}:{}: {e}", p.display(), e.line(), e.column()))
    };
    match value {
        Ok(v) => to_dyn(ctx, &v),
        Err(e) => fail(ctx, e),
    }
}
const DOC_YAML: &str = r#"/// A YAML file next to the script, as maps and arrays.
///
/// ```rhai
/// let cfg = yaml("deployment_config.yml");
/// ```"#;
const DOC_JSON: &str = r#"/// A JSON file next to the script, as maps and arrays.
///
/// ```rhai
/// let groups = json("groups.json");
/// ```"#;
const DOC_ARGS: &str = r#"/// The arguments after the script in `stand run SCRIPT ARGS..`.
///
/// ```rhai
/// let node = args()[0];
/// ```"#;

/// Registers `yaml`, `json`, `args`.
pub(super) fn register(engine: &mut Engine, api: &Arc<ApiContext>) {
    let a = api.clone();
    FuncRegistration::new("yaml")
        .with_params_info(["path: &str", "Dynamic"])
        .with_comments([DOC_YAML])
        .register_into_engine(engine, move |ctx: NativeCallContext, path: &str| read_data(&ctx, &a, path, true));
    let a = api.clone();
    FuncRegistration::new("json")
        .with_params_info(["path: &str", "Dynamic"])
        .with_comments([DOC_JSON])
        .register_into_engine(engine, move |ctx: NativeCallContext, path: &str| read_data(&ctx, &a, path, false));
    let a = api.clone();
    FuncRegistration::new("args")
        .with_params_info(["Array"])
        .with_comments([DOC_ARGS])
        .register_into_engine(engine, move || -> Array { a.args.iter().cloned().map(Dynamic::from).collect() });
}
