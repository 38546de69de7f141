//! Peer test: `proxmoxer`, a real Python Proxmox client, against `stand sim serve`, and its
//! request log checked against the official API schema.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Served {
    child: Child,
    env: Vec<(String, String)>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stand sim serve` on a free port and reads its three `export` lines.
fn serve(request_log: &Path, password: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stand"))
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--latency",
            "none",
            "--root-password",
            password,
            "--request-log",
        ])
        .arg(request_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("stand runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut env = Vec::new();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let (k, v) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
        env.push((k.to_string(), v.trim_matches('\'').to_string()));
    }
    assert_eq!(env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["PVE_URL", "PVE_TOKEN", "PVE_FINGERPRINT"]);
    Served { child, env }
}

fn python_has_proxmoxer() -> bool {
    Command::new("python3").args(["-c", "import proxmoxer, requests"]).status().is_ok_and(|s| s.success())
}

fn shared_checker() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pve-api/check_requests.py");
    p.exists().then_some(p)
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
    let served = serve(&log, "Root-pass-1");
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
    match shared_checker() {
        Some(checker) => {
            let out = Command::new("python3").arg(checker).arg(&log).output().unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "schema violations:\n{report}");
            assert!(report.contains(", 0 do not match the schema"), "{report}");
        }
        None => assert!(
            std::env::var_os("STAND_REQUIRE_PEER").is_none(),
            "STAND_REQUIRE_PEER is set but ../shared/pve-api is missing"
        ),
    }
}
