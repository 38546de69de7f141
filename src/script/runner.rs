//! Runs a lab script against a snapshot and returns its plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::Engine;

use super::api::{self, ApiContext};
use super::error::ScriptError;
use super::stdlib::Resolver;
use crate::plan::{Plan, Planner, Snapshot, dns_safe, generate_password};

/// How a script is run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--users FILE`: the student list, overriding the script's.
    pub users_file: Option<PathBuf>,
    /// `--group`: only the students of this group of the roster.
    pub group: Option<String>,
    /// Give existing students new passwords.
    pub reset_passwords: bool,
    /// Extra arguments (`stand run SCRIPT ARGS..`), as `args()`.
    pub args: Vec<String>,
    /// Lab name (default: the script's file name).
    pub lab: Option<String>,
    /// `--overcommit`: the memory ratio, over the lab's setting.
    pub overcommit: Option<f64>,
    /// Send `print()` to stdout (`stand run`), not stderr (where a lab's diagnostics go:
    /// stdout carries plans, reports and graphs).
    pub print_to_stdout: bool,
}

/// What a script produced.
#[derive(Debug)]
pub struct ScriptOutcome {
    /// The plan.
    pub plan: Plan,
    /// The script's final value (`()` when it ends with a statement), as JSON.
    pub value: serde_json::Value,
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
    engine.on_print(|s| crate::errln!("{s}"));
    engine.on_debug(|s, src, pos| crate::errln!("{}:{pos}: {s}", src.unwrap_or("script")));
    engine
}

/// A script file as read: its name in messages, its text, the folder its modules resolve
/// in, and the options with the lab's name (`--lab`, else the file's).
pub(super) struct ScriptFile {
    pub name: String,
    pub text: String,
    pub dir: PathBuf,
    pub opts: RunOptions,
}

/// Reads the script file `path`.
pub(super) fn read_script(path: &Path, opts: &RunOptions) -> Result<ScriptFile, ScriptError> {
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
    Ok(ScriptFile { name, text, dir, opts })
}

/// Runs the script file `path`.
pub fn run_file(path: &Path, snap: Arc<Snapshot>, opts: &RunOptions) -> Result<ScriptOutcome, ScriptError> {
    let file = read_script(path, opts)?;
    run_source(&file.name, &file.dir, &file.text, snap, &file.opts)
}

/// An engine with the lab functions over a fresh planner of `snap`, modules resolving in
/// `dir` (each module's source kept in `sources`, for error messages).
pub(super) struct Prepared {
    pub engine: Engine,
    pub ctx: Arc<ApiContext>,
    pub sources: Arc<Mutex<BTreeMap<String, String>>>,
}

/// Sets up the engine a script named `name` runs in.
pub(super) fn prepare(
    name: &str,
    dir: &Path,
    text: &str,
    snap: Arc<Snapshot>,
    opts: &RunOptions,
) -> Result<Prepared, ScriptError> {
    let lab = opts.lab.clone().unwrap_or_else(|| "lab".into());
    let mut planner = Planner::new(snap.clone(), &lab).map_err(|e| ScriptError::plain(name, e.to_string()))?;
    planner.reset_passwords(opts.reset_passwords);
    planner.set_overcommit(opts.overcommit);
    let sources = Arc::new(Mutex::new(BTreeMap::from([(name.to_string(), text.to_string())])));
    let ctx = Arc::new(ApiContext {
        planner: Mutex::new(planner),
        snap,
        dir: dir.to_path_buf(),
        users_file: opts.users_file.clone(),
        group: opts.group.clone(),
        args: opts.args.clone(),
    });
    let mut engine = new_engine();
    engine.set_module_resolver(Resolver { dir: dir.to_path_buf(), sources: sources.clone() });
    api::register(&mut engine, ctx.clone());
    Ok(Prepared { engine, ctx, sources })
}

/// Runs script text named `name` whose files resolve in `dir`.
pub fn run_source(
    name: &str,
    dir: &Path,
    text: &str,
    snap: Arc<Snapshot>,
    opts: &RunOptions,
) -> Result<ScriptOutcome, ScriptError> {
    let Prepared { mut engine, ctx, sources } = prepare(name, dir, text, snap, opts)?;
    if opts.print_to_stdout {
        engine.on_print(|s| crate::outln!("{s}"));
    }
    let snapshot_sources = || sources.lock().map(|s| s.clone()).unwrap_or_default();
    let mut ast = engine.compile(text).map_err(|e| ScriptError::from_parse(name, &e, &snapshot_sources()))?;
    ast.set_source(name);
    let value: rhai::Dynamic =
        engine.eval_ast(&ast).map_err(|e| ScriptError::from_eval(name, &e, &snapshot_sources()))?;
    let value = if value.is_unit() {
        serde_json::Value::Null
    } else {
        rhai::serde::from_dynamic(&value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()))
    };
    let mut plan = ctx
        .planner
        .lock()
        .map_err(|_| ScriptError::plain(name, "internal error: planner lock poisoned"))?
        .finish()
        .map_err(|(e, span)| match span {
            Some(span) => ScriptError::at_span(name, &span, e.to_string(), &snapshot_sources()),
            None => ScriptError::plain(name, e.to_string()),
        })?;
    // The planner asks for passwords; here, at the edge, the OS's CSPRNG makes them.
    plan.fill_passwords(generate_password);
    Ok(ScriptOutcome { plan, value })
}
