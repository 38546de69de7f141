//! The reference of the lab functions, generated from the engine's own metadata (each
//! function's parameters and doc comment, as registered): `stand docs`, the REPL's `:help`
//! and its completion all read it, so none of them can drift from the code.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::api::{self, ApiContext};
use super::runner::new_engine;
use crate::plan::{Planner, Snapshot};

/// One function (one overload) of the lab scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnDoc {
    /// Its name.
    pub name: String,
    /// `clone(user, spec) -> map`.
    pub signature: String,
    /// Its documentation, Markdown (the doc comment without `///`).
    pub doc: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FnMeta {
    name: String,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    return_type: Option<String>,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct Param {
    #[serde(default)]
    name: Option<String>,
}

impl FnMeta {
    /// `alias(user, name) -> string`: parameter names, and the result as scripts know it.
    fn signature(&self) -> String {
        let params: Vec<&str> = self.params.iter().map(|p| p.name.as_deref().unwrap_or("_")).collect();
        let result = match self.return_type.as_deref() {
            None | Some("()") => String::new(),
            Some("Map") => " -> map".into(),
            Some("Array") => " -> array".into(),
            Some("String") => " -> string".into(),
            Some("Dynamic") => " -> value".into(),
            Some(other) => format!(" -> {other}"),
        };
        format!("{}({}){result}", self.name, params.join(", "))
    }
}

/// Every function a lab script can call, in the order they were registered (the lab
/// vocabulary first, then the queries), plus those `extend` registers (the REPL's `get`).
pub fn functions(extend: Option<&(dyn Fn(&mut rhai::Engine) + Send + Sync)>) -> Vec<FnDoc> {
    let Ok(planner) = Planner::new(Arc::new(Snapshot::default()), "docs") else { return Vec::new() };
    let ctx = Arc::new(ApiContext {
        planner: Mutex::new(planner),
        snap: Arc::new(Snapshot::default()),
        dir: Path::new(".").to_path_buf(),
        users_file: None,
        group: None,
        args: Vec::new(),
    });
    let mut engine = new_engine();
    api::register(&mut engine, ctx);
    if let Some(f) = extend {
        f(&mut engine);
    }
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let meta: Metadata = serde_json::from_str(&json).unwrap_or(Metadata { functions: Vec::new() });
    let order = |name: &str| api::ORDER.iter().position(|n| *n == name).unwrap_or(usize::MAX);
    // Property getters and `to_string` of the `Stand` and `Vm` types are in the docs of `vm`.
    let mut out: Vec<FnDoc> = meta
        .functions
        .into_iter()
        .filter(|f| !f.name.starts_with("get$") && f.name != "to_string")
        .map(|f| FnDoc {
            doc: f
                .doc_comments
                .clone()
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| l.trim_start().strip_prefix("///").map(|r| r.strip_prefix(' ').unwrap_or(r)).unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n"),
            signature: f.signature(),
            name: f.name,
        })
        .collect();
    out.sort_by_key(|f| (order(&f.name), f.signature.len()));
    out
}

/// The reference as Markdown: every function, or only those named `name`.
pub fn markdown(docs: &[FnDoc], name: Option<&str>) -> Option<String> {
    let chosen: Vec<&FnDoc> = docs.iter().filter(|d| name.is_none_or(|n| d.name == n)).collect();
    if chosen.is_empty() {
        return None;
    }
    let mut out = String::new();
    if name.is_none() {
        out.push_str("# The functions of lab scripts\n\n");
    }
    let mut last = "";
    for d in chosen {
        if d.name != last {
            out.push_str(&format!("## {}\n\n", d.name));
            last = &d.name;
        }
        out.push_str(&format!("`{}`\n\n{}\n\n", d.signature, d.doc));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_documented_with_an_example() {
        let docs = functions(None);
        for name in api::ORDER {
            let d = docs.iter().find(|d| d.name == *name).unwrap_or_else(|| panic!("{name} is registered"));
            assert!(d.doc.contains("```rhai"), "{name} has an example:\n{}", d.doc);
        }
        assert!(docs.iter().all(|d| !d.doc.is_empty()), "no function without a doc comment");
        let clone = markdown(&docs, Some("clone")).unwrap();
        for key in api::CLONE_KEYS {
            assert!(clone.contains(&format!("`{key}`")), "`stand docs clone` documents `{key}`");
        }
        assert!(markdown(&docs, Some("no_such_function")).is_none());
    }
}
