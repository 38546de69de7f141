//! The bad input corpus (`tests/bad_input/*.rhai`, each starting with `// expect: <text>`):
//! every case is refused by `stand up` with exit code 2, an error that names the file and
//! says what is wrong, and a cluster left exactly as it was.

use std::path::Path;
use std::process::Command;

/// What a user would compare: the objects of the simulated cluster.
fn objects(state: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    serde_json::json!({ "vms": v["vms"], "users": v["users"], "pools": v["pools"], "acl": v["acl"], "net": v["net"] })
}

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let stand = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stand"))
            .current_dir(&corpus)
            .args(args)
            .arg("--sim")
            .env("STAND_SIM_STATE", &state)
            .output()
            .unwrap()
    };
    // A cluster with a lab on it already, which bad input must not disturb.
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let creds = dir.path().join("lab1.csv");
    let out = stand(&["up", lab1.to_str().unwrap(), "--credentials", creds.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = objects(&state);

    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "the corpus has its cases");
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(case).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{name}: first line is `// expect: ...`"));
        let out = stand(&["up", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: exit code 2 for bad input\n{err}");
        assert!(err.contains(expect), "{name}: expected `{expect}` in\n{err}");
        assert!(err.contains(name), "{name}: the error names the file\n{err}");
        assert!(!corpus.join(format!("{}-credentials.csv", name.trim_end_matches(".rhai").replace('_', "-"))).exists());
        assert_eq!(objects(&state), before, "{name}: the cluster is as it was");
    }
}
