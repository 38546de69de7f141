//! Running a lab's `fn check(stand)` for one stand. The script's top level runs first, as
//! for `plan` (its imports and constants are what `check` may use; what it records is
//! dropped), then `check` with the stand. The caller runs stands on threads of its own: a
//! run blocks on the guest agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rhai::{AST, Dynamic, Scope};

use super::error::ScriptError;
use super::grading::StandUnderCheck;
use super::runner::{Prepared, RunOptions, ScriptFile, new_engine, prepare, read_script};
use crate::plan::Snapshot;

/// A lab script that defines `fn check(stand)`, compiled once for every stand.
pub struct CheckScript {
    name: String,
    dir: PathBuf,
    text: String,
    ast: AST,
    opts: RunOptions,
}

/// The statements run after the script's own: `check` with the stand.
const DRIVER: &str = "__check_begins(); check(__stand);";

impl CheckScript {
    /// Reads and compiles `path`; an error when it has no `fn check(stand)`.
    pub fn load(path: &Path, opts: &RunOptions) -> Result<CheckScript, ScriptError> {
        let ScriptFile { name, text, dir, opts } = read_script(path, opts)?;
        let engine = new_engine();
        let sources = BTreeMap::from([(name.clone(), text.clone())]);
        let mut ast = engine.compile(&text).map_err(|e| ScriptError::from_parse(&name, &e, &sources))?;
        ast.set_source(name.as_str());
        if !ast.iter_functions().any(|f| f.name == "check" && f.params.len() == 1) {
            return Err(ScriptError::plain(
                &name,
                "the script has no `fn check(stand) { ... }`: add one that grades a stand (see `stand docs grade`)",
            ));
        }
        Ok(CheckScript { name, dir, text, ast, opts })
    }

    /// The lab's name (the file's, or `--lab`).
    pub fn lab(&self) -> &str {
        self.opts.lab.as_deref().unwrap_or("lab")
    }

    /// Runs the script's top level, then `check(stand)`. The grades are in `stand` whatever
    /// happens; an error says where the run stopped.
    pub fn run(&self, snap: Arc<Snapshot>, stand: &StandUnderCheck) -> Result<(), ScriptError> {
        // The guest functions name the script in what they report (`lab3.rhai:12`).
        let stand = &StandUnderCheck { script: self.name.clone(), ..stand.clone() };
        let Prepared { mut engine, sources, .. } = prepare(&self.name, &self.dir, &self.text, snap, &self.opts)?;
        // The top level already printed when the lab was planned; `check` prints, per stand.
        let checking = Arc::new(AtomicBool::new(false));
        let (flag, user) = (checking.clone(), stand.user.clone());
        engine.on_print(move |s| {
            if flag.load(Ordering::Relaxed) {
                crate::errln!("{user}: {s}");
            }
        });
        engine.register_fn("__check_begins", move || checking.store(true, Ordering::Relaxed));
        engine.set_default_tag(Dynamic::from(stand.clone()));
        let driver = engine.compile(DRIVER).map_err(|e| ScriptError::plain(&self.name, e.to_string()))?;
        let ast = self.ast.merge(&driver);
        let mut scope = Scope::new();
        scope.push("__stand", stand.clone());
        engine
            .run_ast_with_scope(&mut scope, &ast)
            .map_err(|e| ScriptError::from_eval(&self.name, &e, &sources.lock().map(|s| s.clone()).unwrap_or_default()))
    }
}

impl CheckScript {
    /// The criteria `check` grades for `stand` when every guest read answers: how a stand
    /// whose check stopped early still gets every criterion on the sheet.
    pub fn criteria(&self, snap: Arc<Snapshot>, stand: &StandUnderCheck) -> Vec<super::grading::Grade> {
        let dry = stand.with_agent(Arc::new(super::grading::DryAgent));
        let _ = self.run(snap, &dry);
        dry.grades()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::script::grading::{ExecOutput, GuestAgent, GuestError, GuestVm, Interface};

    struct Fake;

    impl GuestAgent for Fake {
        fn exec(&self, vm: &GuestVm, argv: &[String], _: Duration) -> Result<ExecOutput, GuestError> {
            match argv.join(" ").as_str() {
                "hostname" => Ok(ExecOutput { code: 0, out: format!("{}\n", vm.name), err: String::new() }),
                _ => Err(GuestError::Unreachable(format!("VM {} is not running", vm.vmid))),
            }
        }
        fn read_file(&self, _: &GuestVm, path: &str) -> Result<String, GuestError> {
            Ok(format!("content of {path}"))
        }
        fn hostname(&self, vm: &GuestVm) -> Result<String, GuestError> {
            Ok(vm.name.clone())
        }
        fn interfaces(&self, _: &GuestVm) -> Result<Vec<Interface>, GuestError> {
            Ok(vec![Interface {
                name: "ens18".into(),
                mac: "bc:24:11:00:00:01".into(),
                ips: vec!["10.0.0.1/24".into()],
            }])
        }
        fn ping(&self, _: &GuestVm) -> Result<(), GuestError> {
            Ok(())
        }
    }

    fn stand() -> StandUnderCheck {
        let vm = |name: &str, vmid| GuestVm { name: name.into(), vmid, node: "pve1".into() };
        StandUnderCheck {
            user: "ivanov@pve".into(),
            node: "pve1".into(),
            vms: vec![vm("gw", 3000), vm("web", 3001)],
            agent: Arc::new(Fake),
            exec_timeout: Duration::from_secs(30),
            grades: Arc::default(),
            failed: Arc::default(),
            script: String::new(),
        }
    }

    fn lab(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        std::fs::write(dir.path().join("helpers.rhai"), "fn first(stand) { grade(\"helper\", 1, true); }").unwrap();
        let path = dir.path().join("lab.rhai");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn check_sees_the_scripts_imports_and_records_grades_through_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let path = lab(
            &dir,
            "import \"helpers\" as h;\nprint(\"top level\");\nfn check(stand) {\n  h::first(stand);\n  \
             let r = exec(stand.vm(\"gw\"), \"hostname\");\n  grade(\"hostname\", 2, r.out == \"gw\\n\", \"set it\");\n  \
             grade(\"address\", 1.5, interfaces(stand.vm(\"gw\"))[0].ips.contains(\"10.0.0.1/24\"));\n  \
             grade(\"web named\", 1, hostname(stand.vm(\"web\")) == \"www\", \"name it www\");\n}\n",
        );
        let script = CheckScript::load(&path, &RunOptions::default()).unwrap();
        assert_eq!(script.lab(), "lab");
        let s = stand();
        script.run(Arc::new(Snapshot::default()), &s).unwrap();
        let got: Vec<(String, f64, bool)> = s.grades().into_iter().map(|g| (g.title, g.points, g.passed)).collect();
        assert_eq!(
            got,
            [
                ("helper".to_string(), 1.0, true),
                ("hostname".into(), 2.0, true),
                ("address".into(), 1.5, true),
                ("web named".into(), 1.0, false)
            ]
        );
    }

    #[test]
    fn a_failed_read_fails_the_criteria_graded_next_with_its_reason_and_the_check_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = lab(
            &dir,
            "fn check(stand) {\n  grade(\"gw up\", 1, agent_ok(stand.vm(\"gw\")));\n  \
             let r = exec(stand.vm(\"web\"), \"nginx -t\");\n  grade(\"nginx config\", 1, r.code == -1);\n  \
             grade(\"nginx runs\", 1, r.err != \"\");\n  grade(\"gw named\", 1, hostname(stand.vm(\"gw\")) == \"gw\");\n}\n",
        );
        let script = CheckScript::load(&path, &RunOptions::default()).unwrap();
        let s = stand();
        script.run(Arc::new(Snapshot::default()), &s).unwrap();
        let got: Vec<(String, bool, Option<String>)> =
            s.grades().into_iter().map(|g| (g.title, g.passed, g.reason)).collect();
        let failed = Some("exec on web: VM 3001 is not running (lab.rhai:3)".to_string());
        assert_eq!(
            got,
            [
                ("gw up".to_string(), true, None),
                // Whatever the script compared, a criterion fed by a failed read is not met.
                ("nginx config".into(), false, failed.clone()),
                ("nginx runs".into(), false, failed),
                ("gw named".into(), true, None),
            ]
        );
    }

    #[test]
    fn a_script_error_says_where_it_stopped_and_the_dry_run_lists_every_criterion() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = lab(
            &dir,
            "fn check(stand) {\n  grade(\"first\", 1, true);\n  stand.vm(\"db\");\n  grade(\"second\", 2, true);\n}\n",
        );
        let script = CheckScript::load(&unknown, &RunOptions::default()).unwrap();
        let s = stand();
        let err = script.run(Arc::new(Snapshot::default()), &s).unwrap_err().to_string();
        assert!(err.contains("has no VM 'db'; it has: gw, web") && err.contains("lab.rhai:3"), "{err}");
        assert_eq!(s.grades().len(), 1, "what was graded before is kept");
        let listed = |src: &str| {
            let path = lab(&dir, src);
            let script = CheckScript::load(&path, &RunOptions::default()).unwrap();
            let titles: Vec<String> =
                script.criteria(Arc::new(Snapshot::default()), &stand()).into_iter().map(|g| g.title).collect();
            titles
        };
        assert_eq!(
            listed(
                "fn check(stand) { grade(\"a\", 1, read_file(stand.vm(\"gw\"), \"/x\") == \"y\"); grade(\"b\", 1, agent_ok(stand.vm(\"web\"))); }"
            ),
            ["a", "b"]
        );
    }

    #[test]
    fn a_script_without_check_is_refused_and_grading_functions_need_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = lab(&dir, "fn chek(stand) {}");
        let err = CheckScript::load(&path, &RunOptions::default()).err().unwrap().to_string();
        assert!(err.contains("the script has no `fn check(stand)"), "{err}");
        let top = lab(&dir, "grade(\"x\", 1, true);");
        let err = crate::script::run_file(&top, Arc::new(Snapshot::default()), &RunOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("grade: works only inside `fn check(stand)`"), "{err}");
    }
}
