//! A `--sim` run with faults is replayed by its seed: the banner prints it, and the same
//! seed with the same faults gives the same outcome.

use std::path::Path;

use super::common::stand;

const FAULTS: &str = "reset=0.05,task_fail=0.05,http5xx=0.05,lock_timeout=0.05";

/// `up` of lab3 on a fresh simulated cluster: what failed, what was made, what runs.
fn outcome(seed: &str) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    let o = stand(
        dir.path(),
        &["up", lab3.to_str().unwrap(), "--sim", "--sim-faults", FAULTS, "--sim-seed", seed, "--output", "json"],
        &[],
    );
    let mut report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let report = report["report"].take();
    let failures: Vec<String> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["object"], f["cause"]["kind"]))
        .collect();
    let status = stand(dir.path(), &["status", "lab3", "--sim", "--output", "json"], &[]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let running: Vec<String> = status["stands"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["vms"].as_array().unwrap())
        .filter(|v| v["status"] == "running")
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let made = serde_json::json!({
        "failures": failures,
        "created": report["vms_created"],
        "started": report["vms_started"],
        "running": running,
    });
    (made, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn the_same_seed_and_faults_give_the_same_outcome_twice() {
    let (first, _) = outcome("7");
    let (second, _) = outcome("7");
    assert!(!first["failures"].as_array().unwrap().is_empty(), "the faults made something fail: {first}");
    assert_eq!(first, second, "replayed with --sim-seed 7");
}

#[test]
fn the_banner_prints_the_seed_to_replay_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = stand(dir.path(), &["status", "--sim"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    let seed = err.split("--sim-seed ").nth(1).and_then(|s| s.split_whitespace().next()).expect(&err);
    assert!(seed.parse::<u64>().is_ok(), "{err}");
    let o = stand(dir.path(), &["status", "--sim", "--sim-seed", "42"], &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--sim-seed 42"));
}
