//! The stand primitives and snapshot queries as Rhai functions (design section 2), one
//! module per noun. Each function is registered with its parameters and a doc comment with
//! an example: `stand docs`, the REPL's `:help` and its completion read them back.

mod clone;
mod course;
mod data;
mod grading;
mod lab;
mod network;
mod placement;
mod queries;
mod users;

pub use clone::CLONE_KEYS;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use crate::plan::{PlanError, Planner, Snapshot};

/// What the functions share: the planner, the snapshot, the script's folder.
pub struct ApiContext {
    pub(super) planner: Mutex<Planner>,
    pub(super) snap: Arc<Snapshot>,
    pub(super) dir: PathBuf,
    pub(super) users_file: Option<PathBuf>,
    pub(super) group: Option<String>,
    pub(super) args: Vec<String>,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(ctx: &NativeCallContext, msg: impl Into<String>) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), ctx.call_position())))
}

impl ApiContext {
    fn planner(&self) -> MutexGuard<'_, Planner> {
        self.planner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { self.dir.join(p) }
    }
}

fn plan_err<T>(ctx: &NativeCallContext, f: &str, e: PlanError) -> Res<T> {
    fail(ctx, format!("{f}: {e}"))
}

/// A user argument: a userid string or a User map.
fn userid(ctx: &NativeCallContext, f: &str, d: &Dynamic) -> Res<String> {
    if let Some(s) = d.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(s.to_string());
    }
    if let Some(m) = d.read_lock::<Map>()
        && let Some(u) = m.get("userid")
    {
        return Ok(u.to_string());
    }
    fail(
        ctx,
        format!("{f}: the first argument must be a user (from create_user) or a userid string, got {}", d.type_name()),
    )
}

fn to_dyn<T: serde::Serialize>(ctx: &NativeCallContext, v: &T) -> Res<Dynamic> {
    rhai::serde::to_dynamic(v).or_else(|e| fail(ctx, format!("internal error: {e}")))
}

/// The lab functions, in the order of the reference.
pub(super) const ORDER: &[&str] = &[
    "lab",
    "users",
    "create_user",
    "place_balanced",
    "place",
    "ensure_bridge",
    "alias",
    "clone",
    "reset",
    "power",
    "snapshot",
    "uplinks",
    "grade",
    "vm",
    "exec",
    "read_file",
    "hostname",
    "interfaces",
    "agent_ok",
    "nodes",
    "vms",
    "templates",
    "storages",
    "bridges",
    "pools",
    "cluster_users",
    "yaml",
    "json",
    "args",
];

/// Registers every function on `engine`, each with its parameters and documentation (the
/// source of `stand docs`, `:help` and completion).
pub fn register(engine: &mut Engine, api: Arc<ApiContext>) {
    lab::register(engine, &api);
    users::register(engine, &api);
    placement::register(engine, &api);
    network::register(engine, &api);
    clone::register(engine, &api);
    course::register(engine, &api);
    queries::register(engine, &api);
    data::register(engine, &api);
    grading::register(engine);
}
