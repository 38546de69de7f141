//! Peer test: `proxmoxer`, a real Python Proxmox client, against `stand sim serve`, and its
//! request log checked against the official API schema.

use std::path::Path;
use std::process::Command;

use crate::common::{assert_log_matches_schema, serve};

fn python_has_proxmoxer() -> bool {
    Command::new("python3").args(["-c", "import proxmoxer, requests"]).status().is_ok_and(|s| s.success())
}

#[test]
fn proxmoxer_walks_the_scenario_against_sim_serve_and_every_request_matches_the_schema() {
    if !python_has_proxmoxer() {
        assert!(
            std::env::var_os("STAND_REQUIRE_PEER").is_none(),
            "STAND_REQUIRE_PEER is set but python3 has no proxmoxer"
        );
        eprintln!("skipped: python3 with proxmoxer is not installed (pip install proxmoxer requests)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let served = serve(&log, &["--root-password", "Root-pass-1"]);
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/proxmoxer_scenario.py"))
        .envs(served.env.iter().cloned())
        .env("ROOT_PASSWORD", "Root-pass-1")
        .env("WORKDIR", dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "proxmoxer scenario failed:\n{text}");
    assert!(text.contains("proxmoxer scenario: OK"));
    drop(served);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().count() > 20, "the request log has the whole scenario");
    assert_log_matches_schema(&log);
}
