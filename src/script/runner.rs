//! Runs a lab script against a snapshot and returns its plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::Engine;

use super::api::{self, ApiContext};
use super::error::ScriptError;
use super::stdlib::Resolver;
use crate::plan::{Plan, Planner, Snapshot, dns_safe};

/// How a script is run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--users FILE`: the student list, overriding the script's.
    pub users_file: Option<PathBuf>,
    /// `--only USER..`: keep only these students in the plan.
    pub only: Vec<String>,
    /// Give existing students new passwords.
    pub reset_passwords: bool,
    /// Extra arguments (`stand run SCRIPT ARGS..`), as `args()`.
    pub args: Vec<String>,
    /// Lab name (default: the script's file name).
    pub lab: Option<String>,
}

/// What a script produced.
#[derive(Debug)]
pub struct ScriptOutcome {
    /// The plan.
    pub plan: Plan,
}

/// The sandbox: limits a runaway script hits with a clear error.
pub fn new_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(20_000_000);
    engine.set_max_call_levels(48);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(1 << 20);
    engine.set_max_array_size(200_000);
    engine.set_max_map_size(50_000);
    engine.set_max_modules(64);
    engine.on_print(|s| eprintln!("{s}"));
    engine.on_debug(|s, src, pos| eprintln!("{}:{pos}: {s}", src.unwrap_or("script")));
    engine
}

/// Runs the script file `path`.
pub fn run_file(path: &Path, snap: Arc<Snapshot>, opts: &RunOptions) -> Result<ScriptOutcome, ScriptError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ScriptError::plain(&name, format!("cannot read the script: {e}")))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("lab");
    let opts = RunOptions { lab: opts.lab.clone().or_else(|| Some(dns_safe(stem))), ..opts.clone() };
    run_source(&name, &dir, &text, snap, &opts)
}

/// Runs script text named `name` whose files resolve in `dir`.
pub fn run_source(
    name: &str,
    dir: &Path,
    text: &str,
    snap: Arc<Snapshot>,
    opts: &RunOptions,
) -> Result<ScriptOutcome, ScriptError> {
    let lab = opts.lab.clone().unwrap_or_else(|| "lab".into());
    let mut planner = Planner::new(snap.clone(), &lab).map_err(|e| ScriptError::plain(name, e.to_string()))?;
    planner.reset_passwords(opts.reset_passwords);
    let sources = Arc::new(Mutex::new(BTreeMap::from([(name.to_string(), text.to_string())])));
    let ctx = Arc::new(ApiContext {
        planner: Mutex::new(planner),
        snap,
        dir: dir.to_path_buf(),
        users_file: opts.users_file.clone(),
        args: opts.args.clone(),
    });
    let mut engine = new_engine();
    engine.set_module_resolver(Resolver { dir: dir.to_path_buf(), sources: sources.clone() });
    api::register(&mut engine, ctx.clone());
    let snapshot_sources = || sources.lock().map(|s| s.clone()).unwrap_or_default();
    let mut ast = engine.compile(text).map_err(|e| ScriptError::from_parse(name, &e, &snapshot_sources()))?;
    ast.set_source(name);
    engine.run_ast(&ast).map_err(|e| ScriptError::from_eval(name, &e, &snapshot_sources()))?;
    let mut plan =
        ctx.planner.lock().map_err(|_| ScriptError::plain(name, "internal error: planner lock poisoned"))?.plan();
    if !opts.only.is_empty() {
        for o in &opts.only {
            if !plan.users.iter().any(|u| u.userid == *o) {
                return Err(ScriptError::plain(name, format!("--only {o}: the lab has no such student")));
            }
        }
        plan.users.retain(|u| opts.only.contains(&u.userid));
        plan.vms.retain(|v| opts.only.contains(&v.user));
        plan.bridges.retain(|b| b.owner.as_ref().is_none_or(|o| opts.only.contains(o)));
    }
    Ok(ScriptOutcome { plan })
}
