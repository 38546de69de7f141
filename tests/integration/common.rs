//! Helpers shared by the tests that run the `stand` binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A running `stand sim serve`, stopped on drop.
pub struct Served {
    child: Child,
    /// `PVE_URL`, `PVE_TOKEN`, `PVE_FINGERPRINT` as it printed them.
    pub env: Vec<(String, String)>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stand sim serve` on a free port with `extra` arguments and reads its three
/// `export` lines.
pub fn serve(request_log: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stand"))
        .args(["sim", "serve", "--listen", "127.0.0.1:0", "--latency", "none"])
        .args(extra)
        .arg("--request-log")
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

/// `../shared/pve-api/check_requests.py`, when present.
pub fn shared_checker() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pve-api/check_requests.py");
    p.exists().then_some(p)
}

/// Checks a request log against the official schema; skips (unless CI requires it) when
/// the checker is absent.
pub fn assert_log_matches_schema(log: &Path) {
    match shared_checker() {
        Some(checker) => {
            let out = Command::new("python3").arg(checker).arg(log).output().unwrap();
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

/// Runs `stand` in `dir` with `args`, keeping the simulator's state in `dir`, without any
/// cluster settings of the machine.
pub fn stand(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(dir)
        .args(args)
        .env("STAND_SIM_STATE", dir.join("sim.json"))
        .env_remove("PVE_URL")
        .env_remove("PVE_TOKEN")
        .env_remove("STAND_CLUSTER")
        .envs(env.iter().cloned())
        .output()
        .unwrap()
}

/// Everything a command printed.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Which of a command's outputs the reader closes before the command writes anything.
#[derive(Clone, Copy, Debug)]
pub enum Closed {
    /// `stand ... | head -0`.
    Stdout,
    /// `stand ... 2>&1 >/dev/null | head -0`.
    Stderr,
    /// Both.
    Both,
}

/// Runs `stand` in `dir` (as [`stand`] does) with `closed` outputs closed from the start;
/// fails the test if it has not ended after 120 s (a hang). Returns the exit code.
pub fn stand_with_closed(dir: &Path, args: &[&str], closed: Closed) -> Option<i32> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stand"));
    cmd.current_dir(dir)
        .args(args)
        .env("STAND_SIM_STATE", dir.join("sim.json"))
        .env_remove("PVE_URL")
        .env_remove("PVE_TOKEN")
        .env_remove("STAND_CLUSTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (out, err) = (child.stdout.take(), child.stderr.take());
    // Closing the read end makes every write of the child fail with EPIPE.
    let keep_out = match closed {
        Closed::Stdout | Closed::Both => {
            drop(out);
            None
        }
        Closed::Stderr => out,
    };
    let keep_err = match closed {
        Closed::Stderr | Closed::Both => {
            drop(err);
            None
        }
        Closed::Stdout => err,
    };
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            if let Some(mut r) = r {
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            }
        })
    };
    let a = drain(keep_out.map(|o| Box::new(o) as Box<dyn std::io::Read + Send>));
    let b = drain(keep_err.map(|e| Box::new(e) as Box<dyn std::io::Read + Send>));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let _ = tx.send(());
        status
    });
    if rx.recv_timeout(std::time::Duration::from_secs(120)).is_err() {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("`stand {}` with {closed:?} closed hung for 120 s", args.join(" "));
    }
    let status = waiter.join().unwrap();
    let _ = (a.join(), b.join());
    status.code()
}

/// The simulator of the default fixture, served over HTTPS from this process (its state can
/// be read and changed by the test), with the runtime that serves it.
pub fn served_in_process() -> (stand::sim::Sim, tokio::runtime::Runtime, stand::sim::RunningServer) {
    let sim = stand::sim::Sim::new(&stand::sim::Fixture::default_cluster(), stand::sim::SimOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    (sim, rt, server)
}

/// `PVE_URL`, `PVE_TOKEN` and `PVE_FINGERPRINT` of a served simulator.
pub fn token_env(server: &stand::sim::RunningServer) -> Vec<(String, String)> {
    vec![
        ("PVE_URL".into(), server.url.clone()),
        ("PVE_TOKEN".into(), server.token.clone()),
        ("PVE_FINGERPRINT".into(), server.fingerprint.clone()),
    ]
}

/// Held by the tests that serve `stand serve` in process, one at a time: tracing's callsite
/// interest is global, and a login logged on another test's thread (without a subscriber)
/// while the log-capturing test registers its own could leave that test's callsite silent.
pub static SERVE_IN_PROCESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
