//! The `stand` binary as a user runs it: on `--sim`, and over HTTPS against `stand sim serve`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{assert_log_matches_schema, serve, stand, text};

fn lab3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn up_status_down_on_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab3();
    let lab = lab.to_str().unwrap();

    let up = stand(dir.path(), &["up", lab, "--sim", "-vv"], &[]);
    assert!(up.status.success(), "{}", text(&up));
    let out = text(&up);
    assert!(out.contains("SIMULATED"), "the output says it is simulated: {out}");
    assert!(out.contains("48 VMs cloned"), "{out}");
    let creds = dir.path().join("lab3-credentials.csv");
    let rows = std::fs::read_to_string(&creds).unwrap();
    for password in rows.lines().skip(1).filter_map(|l| l.split(',').nth(1)) {
        assert!(!out.contains(password), "no password on the screen or in the -vv log: {out}");
    }
    assert_eq!(rows.lines().count(), 13, "a header and 12 students:\n{rows}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let again = stand(dir.path(), &["up", lab, "--sim", "--output", "json"], &[]);
    let v = json(&again);
    assert_eq!(v["converged"], true);
    assert_eq!(v["report"]["vms_created"], 0, "the state was kept between commands");
    assert_eq!(std::fs::read_to_string(&creds).unwrap(), rows, "passwords of earlier runs are kept");

    // A student who lost their password gets a new one; the others keep theirs.
    let reset = stand(dir.path(), &["up", lab, "--sim", "--only", "ivanov@pve", "--reset-passwords"], &[]);
    assert!(reset.status.success(), "{}", text(&reset));
    let after = std::fs::read_to_string(&creds).unwrap();
    let row = |text: &str, user: &str| text.lines().find(|l| l.starts_with(user)).unwrap().to_string();
    assert_ne!(row(&after, "ivanov@pve"), row(&rows, "ivanov@pve"), "a new password for ivanov");
    assert_eq!(row(&after, "petrova@pve"), row(&rows, "petrova@pve"), "the others keep theirs");

    let status = json(&stand(dir.path(), &["status", "lab3", "--sim", "--output", "json"], &[]));
    let stands = status["stands"].as_array().unwrap();
    assert_eq!(stands.len(), 12);
    assert!(stands.iter().all(|s| s["running"] == 4));
    assert!(stands.iter().all(|s| s["bridges"].as_array().unwrap().len() == 2), "each stand's dmz and lan: {stands:?}");

    // Fewer students, with --prune: the others' stands go.
    std::fs::write(dir.path().join("few.txt"), "ivanov@pve\nkozlova@pve\n").unwrap();
    let pruned = json(&stand(
        dir.path(),
        &["up", "--yes", lab, "--users", "few.txt", "--prune", "--sim", "--output", "json"],
        &[],
    ));
    assert_eq!(pruned["converged"], true);
    assert_eq!(pruned["pruned"]["vms"], 40);
    assert_eq!(pruned["pruned"]["users"], 10);
    let out = stand(dir.path(), &["up", "--yes", lab, "--only", "ivanov@pve", "--prune", "--sim"], &[]);
    assert_eq!(out.status.code(), Some(2), "--prune with --only is refused: {}", text(&out));

    let dry = stand(dir.path(), &["down", "lab3", "--sim", "--dry-run"], &[]);
    assert!(text(&dry).contains("dry run: nothing removed"));
    let down = json(&stand(dir.path(), &["down", "--yes", lab, "--sim", "--output", "json"], &[]));
    assert_eq!(down["removed"]["vms"], 8);
    assert_eq!(down["removed"]["users"], 2);
    let status = json(&stand(dir.path(), &["status", "--sim", "--output", "json"], &[]));
    assert!(status["stands"].as_array().unwrap().is_empty());
}

#[test]
fn deploy_stand_files_run_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deployment_config.yml"),
        "machines:\n  - device_type: ecorouter\n    name: router\n    template_node: pve1\n    template_vmid: 100\n    networks:\n      - bridge: vmbr0\n      - bridge: lan\n  - device_type: linux\n    name: host1\n    template_node: pve1\n    template_vmid: 101\n    networks:\n      - bridge: lan\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("users_list.yml"), "users:\n  - student1@pve\n  - student2@pve\n").unwrap();
    let args = [
        "up",
        "--legacy",
        "deployment_config.yml",
        "--users",
        "users_list.yml",
        "--lab",
        "lab2",
        "--sim",
        "--output",
        "json",
    ];
    let v = json(&stand(dir.path(), &args, &[]));
    assert_eq!(v["converged"], true);
    assert_eq!(v["report"]["vms_created"], 4);
    assert_eq!(v["report"]["bridges_created"], 2);
    assert!(dir.path().join("lab2-credentials.csv").exists());
    let out = stand(dir.path(), &["up", "--legacy", "deployment_config.yml", "--sim"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("add --users users_list.yml"), "{}", text(&out));
}

#[test]
fn bad_input_and_missing_clusters_have_their_own_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("typo.rhai"), "let u = create_user(\"a@pve\");\nclone(u, #{ templat: 103 });\n")
        .unwrap();
    let out = stand(dir.path(), &["up", "typo.rhai", "--sim"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let msg = text(&out);
    assert!(msg.contains("typo.rhai:2"), "names the file and line: {msg}");
    assert!(msg.contains("templat"), "names the field: {msg}");
    assert!(!dir.path().join("typo-credentials.csv").exists(), "nothing was made");

    let out = stand(dir.path(), &["status"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("set PVE_URL and PVE_TOKEN"), "{}", text(&out));

    let out = stand(dir.path(), &["up", "missing.rhai", "--sim"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("missing.rhai"), "{}", text(&out));
}

#[test]
fn the_https_client_runs_up_and_down_against_sim_serve_and_every_request_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let served = serve(&log, &[]);
    let lab = lab3();
    let lab = lab.to_str().unwrap();

    let up = stand(dir.path(), &["up", lab, "--output", "json"], &served.env);
    let v = json(&up);
    assert_eq!(v["simulated"], false, "a real client, over HTTPS");
    assert_eq!(v["converged"], true, "{}", text(&up));
    assert_eq!(v["report"]["vms_created"], 48);
    assert_eq!(v["credentials"][0]["password"], serde_json::Value::Null, "passwords only when asked");

    let status = json(&stand(dir.path(), &["status", "lab3", "--output", "json"], &served.env));
    assert_eq!(status["stands"].as_array().unwrap().len(), 12);

    let down = json(&stand(dir.path(), &["down", "--yes", "lab3", "--output", "json"], &served.env));
    assert_eq!(down["converged"], true);
    assert_eq!(down["removed"]["vms"], 48);

    // A wrong pin is refused before any request is made.
    let mut wrong = served.env.clone();
    wrong[2].1 = "AA:".repeat(31) + "AA";
    let out = stand(dir.path(), &["status"], &wrong);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    drop(served);
    let logged = std::fs::read_to_string(&log).unwrap();
    let creds = std::fs::read_to_string(dir.path().join("lab3-credentials.csv")).unwrap();
    for password in creds.lines().skip(1).filter_map(|l| l.split(',').nth(1)) {
        assert!(!logged.contains(password), "no password in the server's request log");
    }
    assert_log_matches_schema(&log);
}

#[test]
fn a_partly_failed_up_says_what_failed_and_exits_3_and_the_next_up_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab3();
    let lab = lab.to_str().unwrap();
    // Every task fails: users and pools are made, clones and network reloads are not.
    let out = stand(dir.path(), &["up", lab, "--sim", "--sim-faults", "task_fail=1"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("clone failed") && msg.contains("→ "),
        "each failure with PVE's message and what to do:\n{msg}"
    );
    assert!(msg.contains("`stand up` again continues"), "{msg}");
    let out = stand(dir.path(), &["up", lab, "--sim"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("48 VMs cloned"), "{}", text(&out));
}

#[test]
fn docs_are_generated_from_the_engine_and_clone_documents_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let all = stand(dir.path(), &["docs"], &[]);
    assert!(all.status.success());
    let all = String::from_utf8_lossy(&all.stdout).to_string();
    for f in
        ["lab", "users", "create_user", "place_balanced", "place", "ensure_bridge", "alias", "clone", "nodes", "yaml"]
    {
        assert!(all.contains(&format!("## {f}\n")), "`stand docs` documents {f}");
    }
    let clone = stand(dir.path(), &["docs", "clone"], &[]);
    let clone = String::from_utf8_lossy(&clone.stdout).to_string();
    for key in ["template", "name", "device", "nets", "full", "storage", "memory", "cores", "start", "tags"] {
        assert!(clone.contains(&format!("`{key}`")), "`stand docs clone` documents `{key}`:\n{clone}");
    }
    assert!(clone.contains("```rhai"), "with an example");
    let typo = stand(dir.path(), &["docs", "clnoe"], &[]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(text(&typo).contains("did you mean 'clone'?"), "{}", text(&typo));
}
