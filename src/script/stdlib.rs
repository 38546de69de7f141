//! The built-in stdlib (the `stdlib/` folder, embedded) and module resolution: next to the
//! importing script first, then the stdlib.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// The stdlib modules: (name, source).
pub const STDLIB: &[(&str, &str)] = &[
    ("single", include_str!("../../stdlib/single.rhai")),
    ("router_lan", include_str!("../../stdlib/router_lan.rhai")),
    ("dmz", include_str!("../../stdlib/dmz.rhai")),
    ("demo_exam", include_str!("../../stdlib/demo_exam.rhai")),
    ("legacy", include_str!("../../stdlib/legacy.rhai")),
];

/// Resolves `import "x"` to `<dir>/x.rhai`, else the stdlib module `x`; records sources for
/// error messages.
pub struct Resolver {
    pub(super) dir: PathBuf,
    pub(super) sources: Arc<Mutex<BTreeMap<String, String>>>,
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = self.dir.join(format!("{path}.rhai"));
        let (name, text) = if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Box::new(EvalAltResult::ErrorRuntime(format!("cannot read module {}: {e}", file.display()).into(), pos))
            })?;
            (file.display().to_string(), text)
        } else if let Some((n, t)) = STDLIB.iter().find(|(n, _)| *n == path) {
            (format!("<stdlib>/{n}.rhai"), t.to_string())
        } else {
            let known: Vec<&str> = STDLIB.iter().map(|(n, _)| *n).collect();
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                format!(
                    "{path} (no {} and no stdlib module of that name; stdlib: {})",
                    file.display(),
                    known.join(", ")
                ),
                pos,
            )));
        };
        if let Ok(mut s) = self.sources.lock() {
            s.insert(name.clone(), text.clone());
        }
        let mut ast = engine.compile(&text).map_err(|e| {
            let se = super::error::ScriptError::from_parse(
                &name,
                &e,
                &self.sources.lock().map(|s| s.clone()).unwrap_or_default(),
            );
            Box::new(EvalAltResult::ErrorInModule(
                name.clone(),
                Box::new(EvalAltResult::ErrorRuntime(se.message.into(), e.position())),
                pos,
            ))
        })?;
        ast.set_source(name.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos)))?;
        Ok(Shared::new(module))
    }
}
