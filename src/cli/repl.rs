//! `stand repl`: the script engine against the live cluster (or `--sim`), one input at a
//! time, with the plan recorded so far a `:plan` away and an `:apply` away.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, Map};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Editor, Helper};

use super::target::Cluster;
use super::up::{snapshot, timing};
use super::{exit, render};
use crate::apply::apply;
use crate::plan::{Diff, Snapshot};
use crate::pve::{ApiRequest, Pve};
use crate::script::{CLONE_KEYS, Extension, FnDoc, Session, functions, markdown};

const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list; `:help clone` explains one function"),
    (":plan", "what the session recorded so far, against the cluster"),
    (":apply", "apply what the session recorded"),
    (":refresh", "read the cluster again (drops the recorded plan, keeps variables)"),
    (":load", ":load FILE evaluates a script in the session"),
    (":quit", "leave (also Ctrl-D)"),
];

/// `get("/path")`: a read-only look at any API path, as `pvesh get` gives it.
fn raw_get(pve: Arc<dyn Pve>) -> Extension {
    Arc::new(move |engine: &mut rhai::Engine| {
        let pve = pve.clone();
        let doc = "/// A read-only call of any API path; its `data` as maps and arrays.\n///\n/// ```rhai\n/// get(\"/nodes/pve1/network\").map(|i| i.iface)\n/// ```";
        let registration =
            rhai::FuncRegistration::new("get").with_params_info(["path: &str", "Dynamic"]).with_comments([doc]);
        registration.register_into_engine(engine, move |path: &str| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
            if !path.starts_with('/') {
                return Err(format!("get: '{path}' is not an API path; write it like \"/nodes/pve1/qemu\"").into());
            }
            let pve = pve.clone();
            let path = path.to_string();
            let body = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move { pve.call(ApiRequest::get(path)).await })
            })
            .map_err(|e| format!("get: {e}"))?;
            let data = body.get("data").cloned().unwrap_or(serde_json::Value::Null);
            rhai::serde::to_dynamic(data)
        });
    })
}

/// The value of an input as a person reads it: arrays of maps as tables.
pub fn show(value: &Dynamic) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if let Some(arr) = value.read_lock::<rhai::Array>()
        && !arr.is_empty()
        && arr.iter().all(|v| v.is_map())
    {
        let maps: Vec<Map> = arr.iter().filter_map(|v| v.clone().try_cast::<Map>()).collect();
        let mut keys: Vec<String> = Vec::new();
        for m in &maps {
            for k in m.keys() {
                if !keys.iter().any(|x| x == k.as_str()) {
                    keys.push(k.to_string());
                }
            }
        }
        let mut t = render::table(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        for m in &maps {
            t.add_row(
                keys.iter().map(|k| m.get(k.as_str()).map(Dynamic::to_string).unwrap_or_default()).collect::<Vec<_>>(),
            );
        }
        return Some(t.to_string());
    }
    Some(if value.is_string() { format!("{value:?}") } else { value.to_string() })
}

/// Whether `text` is a whole input, as the Rhai parser sees it: an input that ends before
/// a block, call or string is closed waits for more lines; any other error is the
/// input's to report when it runs.
fn complete(text: &str) -> bool {
    use rhai::{LexError, ParseErrorType};
    match rhai::Engine::new_raw().compile(text) {
        Ok(_) => true,
        Err(e) => {
            !matches!(
                e.err_type(),
                ParseErrorType::UnexpectedEOF
                    | ParseErrorType::MissingToken(..)
                    | ParseErrorType::BadInput(LexError::UnterminatedString)
            ) || e.position().line().is_some_and(|l| l < text.trim_end().lines().count())
        }
    }
}

/// Tab completion: functions, commands, clone keys, and names from the cluster.
struct ReplHelper {
    words: Vec<String>,
}

impl ReplHelper {
    fn new(snap: &Snapshot, docs: &[FnDoc]) -> Self {
        let mut words: Vec<String> = docs.iter().map(|d| d.name.clone()).collect();
        words.extend(COMMANDS.iter().map(|(c, _)| c.to_string()));
        words.extend(CLONE_KEYS.iter().map(|k| k.to_string()));
        words.extend(snap.nodes.iter().map(|n| n.name.clone()));
        words.extend(snap.vms.iter().filter(|v| v.template).map(|v| v.name.clone()));
        words.extend(snap.bridges.values().flatten().map(|b| b.iface.clone()));
        words.extend(snap.storages.iter().map(|s| s.id.clone()));
        words.sort();
        words.dedup();
        ReplHelper { words }
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == ':'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..pos];
        let pairs = self
            .words
            .iter()
            .filter(|w| !word.is_empty() && w.starts_with(word))
            .map(|w| Pair { display: w.clone(), replacement: w.clone() })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if complete(ctx.input()) { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}

impl Helper for ReplHelper {}

fn history_path() -> PathBuf {
    super::sim_cmd::default_state_path().with_file_name("repl_history")
}

/// The functions' reference, from the engine's metadata (with the REPL's `get`).
static DOCS: std::sync::OnceLock<Vec<FnDoc>> = std::sync::OnceLock::new();

fn docs() -> &'static [FnDoc] {
    DOCS.get_or_init(|| functions(None))
}

fn help(topic: Option<&str>) -> String {
    match topic {
        Some(name) => markdown(docs(), Some(name)).unwrap_or_else(|| format!("no function {name}; `:help` lists them")),
        None => {
            let mut s = String::from("functions (`:help NAME` for one, `stand docs` for all):\n");
            for d in docs() {
                let first = d.doc.split(['.', '\n']).next().unwrap_or_default();
                s.push_str(&format!("  {}\n      {first}\n", d.signature));
            }
            s.push_str("commands:\n");
            for (c, doc) in COMMANDS {
                s.push_str(&format!("  {c:<9} {doc}\n"));
            }
            s
        }
    }
}

/// What one input did: keep going or stop.
enum Step {
    Ok,
    /// The input failed (its error is printed): a piped session exits non-zero.
    Failed,
    Quit,
}

fn handle(cluster: &Cluster, session: &mut Session, input: &str) -> Step {
    let input = input.trim();
    if input.is_empty() {
        return Step::Ok;
    }
    let mut failed = false;
    let mut fail = |msg: String| {
        crate::errln!("{msg}");
        failed = true;
    };
    let rt = tokio::runtime::Handle::current();
    let (cmd, arg) = input.split_once(char::is_whitespace).map(|(c, a)| (c, Some(a.trim()))).unwrap_or((input, None));
    match cmd {
        ":quit" | ":q" | ":exit" => return Step::Quit,
        ":help" | ":h" => crate::outln!("{}", help(arg)),
        ":plan" => {
            let plan = session.plan();
            let snap = session.snapshot();
            let diff = Diff::compute(&plan, &snap);
            crate::out!("{}", render::diff_lines(&diff, false));
            crate::outln!("{}", render::diff_counts(&diff));
            crate::out!("{}", render::course_lines(&plan, &snap));
        }
        ":apply" => {
            let plan = session.plan();
            if plan.is_noop() {
                crate::outln!("nothing recorded to apply");
            } else {
                let report = rt.block_on(apply(cluster.pve.clone(), &plan, session.snapshot(), &timing(cluster)));
                crate::outln!("{}", render::apply_counts(&report));
                crate::out!("{}", render::failures(&report.failures));
                if !report.ok() {
                    fail(format!("{} failed; `:apply` again continues", report.failures.len()));
                }
                if !report.credentials.is_empty() {
                    let path = crate::apply::credentials::default_path(plan.lab_name());
                    match crate::apply::credentials::save(&path, &report.credentials) {
                        Ok(_) => crate::outln!(
                            "credentials of {}: {} (mode 0600)",
                            render::count(report.credentials.len(), "student"),
                            path.display()
                        ),
                        Err(e) => fail(format!("error: {e:#}")),
                    }
                }
                // What was applied is now the cluster: plan further from there.
                match rt.block_on(snapshot(cluster)).map_err(anyhow::Error::from).and_then(|s| Ok(session.refresh(s)?))
                {
                    Ok(()) => {}
                    Err(e) => fail(format!("error: {e:#}")),
                }
            }
        }
        ":refresh" => match rt.block_on(snapshot(cluster)) {
            Ok(snap) => match session.refresh(snap) {
                Ok(()) => crate::outln!("read the cluster again; the recorded plan starts over"),
                Err(e) => fail(e.to_string()),
            },
            Err(e) => fail(format!("error: {e}")),
        },
        ":load" => match arg {
            Some(file) => match session.load(Path::new(file)) {
                Ok(v) => print_value(&v),
                Err(e) => fail(e.to_string()),
            },
            None => fail(":load needs a file".into()),
        },
        c if c.starts_with(':') => fail(format!("unknown command {c}; `:help` lists them")),
        _ => match session.eval(input) {
            Ok(v) => print_value(&v),
            Err(e) => fail(e.to_string()),
        },
    }
    if failed { Step::Failed } else { Step::Ok }
}

fn print_value(v: &Dynamic) {
    if let Some(text) = show(v) {
        crate::outln!("{text}");
    }
}

/// `stand repl [--load FILE] [--lab NAME]`.
pub async fn repl(cluster: &Cluster, load: Option<&Path>, lab: &str) -> anyhow::Result<u8> {
    let snap = snapshot(cluster).await?;
    let get = raw_get(cluster.pve.clone());
    let _ = DOCS.set(functions(Some(&*get)));
    let mut session = Session::new(snap.clone(), lab, Path::new("."), get)?;
    tokio::task::block_in_place(|| {
        if let Some(file) = load {
            match session.load(file) {
                Ok(v) => print_value(&v),
                Err(e) => crate::errln!("{e}"),
            }
        }
        if !std::io::stdin().is_terminal() {
            // A pipe: statements, grouped until they are complete; any failed input makes
            // the exit code 1, as a script would.
            let mut pending = String::new();
            let mut failed = false;
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                pending.push_str(&line);
                pending.push('\n');
                if complete(&pending) {
                    match handle(cluster, &mut session, &pending) {
                        Step::Quit => break,
                        Step::Failed => failed = true,
                        Step::Ok => {}
                    }
                    pending.clear();
                }
            }
            if !pending.trim().is_empty() && matches!(handle(cluster, &mut session, &pending), Step::Failed) {
                failed = true;
            }
            return Ok(if failed { exit::FAILED } else { exit::OK });
        }
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .auto_add_history(false)
            .build();
        let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ReplHelper::new(&snap, docs())));
        let history = history_path();
        let _ = editor.load_history(&history);
        crate::outln!("stand repl — {}; `:help` for the functions, Tab completes, Ctrl-D leaves", cluster.banner());
        loop {
            match editor.readline("stand> ") {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Step::Quit = handle(cluster, &mut session, &line) {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(&history);
        Ok(exit::OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_complete_when_their_brackets_close() {
        assert!(complete("let x = 1;"));
        assert!(!complete("for n in nodes() {"));
        assert!(complete("for n in nodes() {\n print(n);\n}"));
        assert!(complete("let s = \"{ not a block\";"));
        assert!(!complete("let s = \"an open"), "an open string");
        assert!(!complete("if x > 1 {\n  print(x);\n} else {"), "an open else");
        assert!(complete("let x = ;"), "a plain syntax error is complete: it runs and is reported");
        assert!(complete("nodes().len()"));
    }
}
