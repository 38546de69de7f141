//! A closed stdout or stderr never stops, corrupts or hangs a run: the work finishes and the
//! exit code is the work's (`stand up lab.rhai | head -1`, `stand up -v lab 2>&1 >/dev/null | head -2`).

use std::path::{Path, PathBuf};

use crate::common::{Closed, stand, stand_with_closed, text};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

fn vms_of(dir: &Path, lab: &str) -> usize {
    let o = stand(dir, &["status", "--sim", "--output", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    v["stands"].as_array().unwrap().iter().filter(|s| s["lab"] == lab).map(|s| s["vms"].as_array().unwrap().len()).sum()
}

#[test]
fn up_and_down_finish_their_work_with_outputs_closed() {
    let lab = script("lab1.rhai");
    let lab = lab.to_str().unwrap();
    for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
        let dir = tempfile::tempdir().unwrap();
        let code = stand_with_closed(dir.path(), &["up", "-vv", lab, "--sim"], closed);
        assert_eq!(code, Some(0), "up with {closed:?} closed");
        let deployed = vms_of(dir.path(), "lab1");
        assert!(deployed > 0, "up with {closed:?} closed deployed the lab");
        assert!(dir.path().join("lab1-credentials.csv").exists(), "and wrote the credentials");
        let code = stand_with_closed(dir.path(), &["down", "--yes", "-v", "lab1", "--sim"], closed);
        assert_eq!(code, Some(0), "down with {closed:?} closed");
        assert_eq!(vms_of(dir.path(), "lab1"), 0, "down with {closed:?} closed removed the lab");
    }
}

#[test]
fn every_command_survives_closed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let lab = script("lab1.rhai");
    let lab = lab.to_str().unwrap();
    assert!(stand(dir.path(), &["up", lab, "--sim", "-q"], &[]).status.success());
    let report = dir.path().join("report.rhai");
    std::fs::write(&report, "for n in nodes() { print(n.name); }\nnodes().len()\n").unwrap();
    let report = report.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", lab, "--sim", "-v"],
        vec!["plan", lab, "--sim", "--output", "json"],
        vec!["up", lab, "--sim"],
        vec!["status", "--sim"],
        vec!["status", "lab1", "--sim", "--output", "json"],
        vec!["doctor", lab, "--sim"],
        vec!["graph", lab, "--sim"],
        vec!["run", report, "--sim"],
        vec!["down", "lab1", "--sim", "--dry-run"],
        vec!["snapshot", "lab1", "--list", "--sim"],
        vec!["snapshot", "lab1", "extra", "--sim"],
        vec!["reset", "lab1", "--sim", "--yes"],
        vec!["power", "reboot", "lab1", "--sim"],
        vec!["uplinks", "off", "lab1", "--sim"],
        vec!["completions", "bash"],
        vec!["--help"],
        vec!["repl", "--sim"],
    ];
    for args in &commands {
        for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
            let code = stand_with_closed(dir.path(), args, closed);
            assert_eq!(code, Some(0), "`stand {}` with {closed:?} closed", args.join(" "));
        }
    }
    assert!(vms_of(dir.path(), "lab1") > 0, "nothing was lost along the way");
}
