//! `stand repl` through a pipe and through a pseudo-terminal.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn repl_piped(dir: &Path, input: &str) -> (String, String) {
    let (code, out, err) = repl_piped_code(dir, input);
    assert_eq!(code, Some(0), "a session whose inputs all worked exits 0:\n{err}");
    (out, err)
}

/// The exit code, stdout and stderr of a piped session.
fn repl_piped_code(dir: &Path, input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(dir)
        .args(["repl", "--sim"])
        .env("STAND_SIM_STATE", dir.join("sim.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_piped_session_explores_plans_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"templates()
let u = create_user("r1@pve");
place(u, "pve2")
for t in templates() {
    print(`template ${t.vmid}`);
}
let vm = clone(u, #{ template: "debian-12", name: "pc", nets: [alias(u, "lan")] });
vm.node
:plan
:apply
get("/nodes/pve2/qemu").len()
:help alias
clone(u, #{ tempalte: 1 })
:nonsense
"#;
    let (code, out, err) = repl_piped_code(dir.path(), input);
    assert_eq!(code, Some(1), "two inputs failed, so the piped session exits 1 (as a script would):\n{err}");
    assert!(out.contains("│ vmid") || out.contains("vmid "), "templates() prints as a table:\n{out}");
    assert!(out.contains("debian-12"));
    assert!(err.contains("template 103"), "a multi-line block ran:\n{err}");
    assert!(out.contains("\"pve2\""), "variables persist between inputs:\n{out}");
    assert!(out.contains("+ vm     1000 pc-r1"), ":plan shows what was recorded:\n{out}");
    assert!(out.contains("1 VM cloned"), ":apply applied it:\n{out}");
    let creds = std::fs::read_to_string(dir.path().join("repl-credentials.csv")).expect("credentials went to the file");
    let password = creds.lines().nth(1).and_then(|l| l.split(',').nth(1)).unwrap();
    assert!(password.len() >= 12 && !out.contains(password) && !err.contains(password), "no password on screen");
    assert!(out.lines().any(|l| l.trim() == "1"), "get() reads the API: one VM on pve2 besides nothing else:\n{out}");
    assert!(out.contains("alias(user, name"), ":help explains a function:\n{out}");
    assert!(err.contains("unknown key `tempalte`") && err.contains("<input"), "errors point at the input:\n{err}");
    assert!(err.contains("unknown command :nonsense"));
}

#[test]
fn a_terminal_session_completes_names_prints_tables_and_takes_blocks() {
    let has_python = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_python {
        assert!(std::env::var_os("STAND_REQUIRE_PEER").is_none(), "python3 is needed for the pty test");
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/repl/pty_session.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_stand"))
        .env("STAND_SIM_STATE", dir.path().join("sim.json"))
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("pty session: OK"), "{text}");
    assert!(dir.path().join("stand/repl_history").exists(), "the history is kept");
}

#[test]
fn a_piped_session_exits_0_when_every_input_works_and_1_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = repl_piped(dir.path(), "let n = nodes();\nn.len()\n");
    assert!(out.contains('3'), "{out}");
    let (code, _, err) = repl_piped_code(dir.path(), "nodes().len()\nno_such_function()\nnodes().len()\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no_such_function"), "the failed input is named: {err}");
}
