//! An interactive session: the engine and functions of scripts, with variables and the
//! recorded plan kept from one input to the next (what `stand repl` drives).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{AST, Dynamic, Engine, Scope};

use super::api::{self, ApiContext};
use super::error::ScriptError;
use super::runner::new_engine;
use super::stdlib::Resolver;
use crate::plan::{Plan, Planner, Snapshot};

/// Variables, functions and the plan kept between inputs.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined so far (`fn f() { .. }` in an earlier input).
    functions: AST,
    ctx: Arc<ApiContext>,
    sources: Arc<Mutex<BTreeMap<String, String>>>,
    lab: String,
    dir: PathBuf,
    inputs: usize,
    extend: Extension,
}

/// Functions a caller adds to the session's engine (kept across [`Session::refresh`]).
pub type Extension = Arc<dyn Fn(&mut Engine) + Send + Sync>;

impl Session {
    /// A session planning lab `lab` against `snap`; files resolve in `dir`. `extend` adds
    /// functions of the caller (e.g. raw API reads).
    pub fn new(snap: Arc<Snapshot>, lab: &str, dir: &Path, extend: Extension) -> Result<Session, ScriptError> {
        let sources = Arc::new(Mutex::new(BTreeMap::new()));
        let (engine, ctx) = Self::engine(snap, lab, dir, &sources, &extend)?;
        Ok(Session {
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            ctx,
            sources,
            lab: lab.to_string(),
            dir: dir.to_path_buf(),
            inputs: 0,
            extend,
        })
    }

    fn engine(
        snap: Arc<Snapshot>,
        lab: &str,
        dir: &Path,
        sources: &Arc<Mutex<BTreeMap<String, String>>>,
        extend: &Extension,
    ) -> Result<(Engine, Arc<ApiContext>), ScriptError> {
        let planner = Planner::new(snap.clone(), lab).map_err(|e| ScriptError::plain("repl", e.to_string()))?;
        let ctx = Arc::new(ApiContext {
            planner: Mutex::new(planner),
            snap,
            dir: dir.to_path_buf(),
            users_file: None,
            group: None,
            args: Vec::new(),
        });
        let mut engine = new_engine();
        engine.set_module_resolver(Resolver { dir: dir.to_path_buf(), sources: sources.clone() });
        api::register(&mut engine, ctx.clone());
        extend(&mut engine);
        Ok((engine, ctx))
    }

    /// Evaluates one input (statements or an expression) and returns its value.
    pub fn eval(&mut self, text: &str) -> Result<Dynamic, ScriptError> {
        self.inputs += 1;
        let name = format!("<input {}>", self.inputs);
        self.eval_named(&name, text)
    }

    /// Evaluates a file in the session (`:load`).
    pub fn load(&mut self, path: &Path) -> Result<Dynamic, ScriptError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError::plain(&name, format!("cannot read: {e}")))?;
        self.eval_named(&name, &text)
    }

    fn eval_named(&mut self, name: &str, text: &str) -> Result<Dynamic, ScriptError> {
        if let Ok(mut s) = self.sources.lock() {
            s.insert(name.to_string(), text.to_string());
        }
        let sources = || self.sources.lock().map(|s| s.clone()).unwrap_or_default();
        let mut ast = self
            .engine
            .compile_with_scope(&self.scope, text)
            .map_err(|e| ScriptError::from_parse(name, &e, &sources()))?;
        ast.set_source(name);
        let ast = self.functions.merge(&ast);
        let value = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &ast)
            .map_err(|e| ScriptError::from_eval(name, &e, &sources()))?;
        self.functions = ast.clone_functions_only();
        Ok(value)
    }

    /// What the session recorded so far.
    pub fn plan(&self) -> Plan {
        let mut plan = self.ctx.planner.lock().map(|p| p.plan()).unwrap_or_default();
        plan.fill_passwords(crate::plan::generate_password);
        plan
    }

    /// The snapshot the session plans against.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.ctx.snap.clone()
    }

    /// Starts over against a fresh snapshot: variables and functions stay, the recorded
    /// plan is dropped.
    pub fn refresh(&mut self, snap: Arc<Snapshot>) -> Result<(), ScriptError> {
        let (engine, ctx) = Self::engine(snap, &self.lab, &self.dir, &self.sources, &self.extend)?;
        self.engine = engine;
        self.ctx = ctx;
        Ok(())
    }
}
