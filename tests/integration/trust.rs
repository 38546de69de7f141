//! What a newcomer and two third-party clients found, each pinned by a test: shared bridges,
//! passwords a token cannot set, Cyrillic names, memory of stopped VMs, output that fits and
//! scripts, exit codes, logs, JSON shapes, doctor.

use std::path::{Path, PathBuf};
use std::process::Output;

use stand::sim::Sim;

use crate::common::{served_in_process as served, stand, text, token_env};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A lab that ensures the shared bridge vmbr60 on pve1 and wires one VM per student to it.
fn shared_lab(dir: &Path, name: &str, student: &str) -> String {
    let body = format!(
        "let u = create_user(\"{student}\");\nplace(u, \"pve1\");\nlet common = ensure_bridge(\"pve1\", \"vmbr60\");\n\
         clone(u, #{{ template: \"debian-12\", name: \"pc\", nets: [common, alias(u, \"lan\")] }});\n"
    );
    write(dir, name, &body).to_str().unwrap().to_string()
}

fn bridges_of(sim: &Sim, node: &str) -> Vec<String> {
    sim.state().net[node].active.keys().cloned().collect()
}

// Point 1: `up a; up b; down a` removed vmbr60 under b's VM.
#[test]
fn down_keeps_a_shared_bridge_another_lab_still_uses() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let a = shared_lab(dir.path(), "laba.rhai", "anna@pve");
    let b = shared_lab(dir.path(), "labb.rhai", "boris@pve");
    for lab in [&a, &b] {
        let o = stand(dir.path(), &["up", lab], &env);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(bridges_of(&sim, "pve1").contains(&"vmbr60".to_string()));

    let o = stand(dir.path(), &["down", "--yes", "laba"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("keeping bridge pve1/vmbr60"), "says why it stays: {}", text(&o));
    assert!(bridges_of(&sim, "pve1").contains(&"vmbr60".to_string()), "b still has it");
    let b_vm = sim.state().vms.values().find(|v| v.config.get("name").is_some_and(|n| n == "pc-boris")).cloned();
    assert!(b_vm.unwrap().config["net0"].contains("bridge=vmbr60"), "b's VM is still wired to it");

    // Doctor finds every NIC on a bridge of its node.
    let o = stand(dir.path(), &["doctor", "--output", "json"], &env);
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    let row = checks.iter().find(|c| c["name"] == "bridges").unwrap();
    assert_eq!(row["verdict"], "ok", "{row}");

    // The last lab that uses it takes it away.
    let o = stand(dir.path(), &["down", "--yes", "labb"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!bridges_of(&sim, "pve1").contains(&"vmbr60".to_string()), "nobody uses it any more");
}

// Point 1: a VM of nobody's lab wired to a lab's private bridge keeps that bridge; doctor
// names a VM wired to a bridge that is gone.
#[test]
fn down_keeps_a_bridge_any_vm_is_wired_to_and_doctor_names_missing_bridges() {
    let (sim, rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let a = shared_lab(dir.path(), "laba.rhai", "anna@pve");
    assert!(stand(dir.path(), &["up", &a], &env).status.success());
    let private = sim.state().net["pve1"]
        .active
        .iter()
        .find(|(_, i)| i.comments.as_deref().is_some_and(|c| c.contains("alias=lan")))
        .map(|(n, _)| n.clone())
        .unwrap();
    // A colleague's VM, made by hand, plugged into anna's private bridge.
    let pve = sim.session("root@pam");
    rt.block_on(async {
        use stand::pve::PveExt;
        let upid = pve
            .clone_vm(
                "pve1",
                103,
                &stand::pve::CloneParams { newid: 700, name: Some("colleague".into()), ..Default::default() },
            )
            .await
            .unwrap();
        pve.wait_task(&upid, Default::default()).await.unwrap();
        let mut p = stand::pve::Params::new();
        p.insert("net0".into(), format!("virtio,bridge={private}"));
        pve.set_vm_config("pve1", 700, p).await.unwrap();
    });
    let o = stand(dir.path(), &["down", "--yes", "laba"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("VM 700 still wired to it"), "{}", text(&o));
    assert!(bridges_of(&sim, "pve1").contains(&private), "the colleague's VM keeps its bridge");

    // A VM wired to a bridge that does not exist: doctor says so.
    rt.block_on(async {
        use stand::pve::PveExt;
        let mut p = stand::pve::Params::new();
        p.insert("net1".into(), "virtio,bridge=vmbr77".into());
        pve.set_vm_config("pve1", 700, p).await.unwrap();
    });
    let o = stand(dir.path(), &["doctor", "--output", "json"], &env);
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    let row = checks.iter().find(|c| c["name"] == "bridges").unwrap();
    assert_eq!(row["verdict"], "warn", "not stand's VM: a warning: {row}");
    assert!(row["detail"].as_str().unwrap().contains("VM 700 (colleague) on pve1: net1 on vmbr77"), "{row}");
}

// Point 2: with an API token, `--reset-passwords` wrote passwords PVE never took.
#[test]
fn a_token_cannot_reset_passwords_and_the_credentials_file_stays_true() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let lab = write(
        dir.path(),
        "pw.rhai",
        "for s in [\"anna@pve\", \"boris@pve\"] { clone(create_user(s), #{ template: \"debian-12\", name: \"pc\" }); }\n",
    );
    let lab = lab.to_str().unwrap();
    assert!(stand(dir.path(), &["up", lab], &env).status.success());
    let creds = dir.path().join("pw-credentials.csv");
    let before = std::fs::read_to_string(&creds).unwrap();

    let o = stand(dir.path(), &["up", lab, "--reset-passwords"], &env);
    assert_eq!(o.status.code(), Some(2), "refused up front: {}", text(&o));
    assert!(text(&o).contains("PVE_USER and PVE_PASSWORD"), "names the fix: {}", text(&o));
    assert_eq!(std::fs::read_to_string(&creds).unwrap(), before, "the file holds only passwords that work");

    // Doctor says the same for this lab, whose students exist.
    let o = stand(dir.path(), &["doctor", lab, "--output", "json"], &env);
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    let row = checks.iter().find(|c| c["name"] == "password reset").unwrap();
    assert_eq!(row["verdict"], "warn", "{row}");

    // A ticket login can: the new passwords are in the file and they log in.
    assert!(sim.set_password("root@pam", "Root-pass-1"));
    let ticket = vec![
        ("PVE_URL".to_string(), server.url.clone()),
        ("PVE_USER".to_string(), "root@pam".to_string()),
        ("PVE_PASSWORD".to_string(), "Root-pass-1".to_string()),
        ("PVE_FINGERPRINT".to_string(), server.fingerprint.clone()),
    ];
    let o = stand(dir.path(), &["up", lab, "--reset-passwords"], &ticket);
    assert!(o.status.success(), "{}", text(&o));
    let after = std::fs::read_to_string(&creds).unwrap();
    assert_ne!(after, before);
    for row in after.lines().skip(1) {
        let mut f = row.split(',');
        let (user, password) = (f.next().unwrap(), f.next().unwrap());
        assert!(sim.state().verify_password(user, password, 0), "{user}'s password in the file works");
    }
}

// Point 4: `дмитрий@pve` became pool `cyr1-` and VMs `r1`; two Cyrillic names collided.
#[test]
fn cyrillic_students_get_transliterated_unique_stable_names() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "students.txt", "дмитрий@pve\nдарья@pve\nщукина@pve\n");
    let lab = write(
        dir.path(),
        "cyr1.rhai",
        "for s in users(\"students.txt\") { clone(create_user(s), #{ template: \"debian-12\", name: \"pc\", start: false }); }\n",
    );
    let lab = lab.to_str().unwrap();
    let o = stand(dir.path(), &["up", lab, "--sim", "--output", "json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let status = json(&stand(dir.path(), &["status", "cyr1", "--sim", "--output", "json"], &[]));
    let mut names: Vec<String> = status["stands"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["vms"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["pc-daria", "pc-dmitrii", "pc-shchukina"], "ICAO transliteration, one VM each");
    let plan = json(&stand(dir.path(), &["plan", lab, "--sim", "--output", "json"], &[]));
    let pools: Vec<&str> =
        plan["plan"]["users"].as_array().unwrap().iter().map(|u| u["pool"].as_str().unwrap()).collect();
    assert_eq!(pools, ["cyr1-dmitrii", "cyr1-daria", "cyr1-shchukina"]);
    assert!(plan["changes"].as_array().unwrap().iter().all(|c| c["kind"] == "keep"), "stable across runs");

    // Two students whose names read the same in Latin letters: a plan-time error naming both.
    write(dir.path(), "students.txt", "дмитрий@pve\ndmitrii@pve\n");
    let o = stand(dir.path(), &["plan", lab, "--sim"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("'дмитрий@pve' and 'dmitrii@pve'"), "{}", text(&o));
}

// Point 5: deploy-stand's example 2 for 30 students (240 GiB, never started) was refused.
#[test]
fn stopped_vms_never_block_a_plan_and_running_ones_say_how_many_stands_fit() {
    let dir = tempfile::tempdir().unwrap();
    let config = "machines:\n  - device_type: ecorouter\n    name: router\n    template_node: pve1\n    template_vmid: 100\n    networks:\n      - bridge: vmbr0\n      - bridge: lan\n  - device_type: linux\n    name: host1\n    template_node: pve1\n    template_vmid: 101\n    networks:\n      - bridge: lan\n  - device_type: linux\n    name: host2\n    template_node: pve1\n    template_vmid: 101\n    networks:\n      - bridge: lan\n";
    write(dir.path(), "deployment_config.yml", config);
    let users: String =
        std::iter::once("users:\n".to_string()).chain((1..=30).map(|i| format!("  - s{i}@pve\n"))).collect();
    write(dir.path(), "users_list.yml", &users);
    let o = stand(
        dir.path(),
        &["plan", "--legacy", "deployment_config.yml", "--users", "users_list.yml", "--sim", "--output", "json"],
        &[],
    );
    assert!(o.status.success(), "240 GiB of stopped VMs on 192 GiB of RAM plan fine: {}", text(&o));
    let plan = json(&o);
    assert_eq!(plan["plan"]["vms"].as_array().unwrap().len(), 90);
    assert!(plan["plan"]["vms"].as_array().unwrap().iter().all(|v| v["start"] == false), "deploy-stand never starts");

    // The same stands started: refused, with how many fit and which knob to turn.
    let lab = write(
        dir.path(),
        "big.rhai",
        "for i in 1..=30 { let u = create_user(`s${i}@pve`);\n  clone(u, #{ template: 100, name: \"r\" }); clone(u, #{ template: 101, name: \"a\" }); clone(u, #{ template: 101, name: \"b\" }); }\n",
    );
    let lab = lab.to_str().unwrap();
    let o = stand(dir.path(), &["plan", lab, "--sim"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("24 of the lab's 30 stands fit"), "{msg}");
    assert!(msg.contains("overcommit"), "names the knob: {msg}");
    assert!(msg.contains("big.rhai:2"), "points at the clone that does not fit: {msg}");
    // Overcommit lets it through, with a warning for nodes above 90 %.
    let o = stand(dir.path(), &["plan", lab, "--sim", "--overcommit", "1.3"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("warning: pve1: the guests running after this plan take"), "{}", text(&o));
}

fn widest(s: &str) -> usize {
    let plain = console::strip_ansi_codes(s);
    plain.lines().map(console::measure_text_width).max().unwrap_or(0)
}

// Point 6: tables and help fit the terminal, or COLUMNS when output is not one.
#[test]
fn tables_and_help_fit_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    let lab3 = lab3.to_str().unwrap();
    assert!(stand(dir.path(), &["up", lab3, "--sim", "-q"], &[]).status.success());
    let narrow = [("COLUMNS".to_string(), "80".to_string())];
    for args in [
        vec!["status", "lab3", "--sim"],
        vec!["status", "--sim"],
        vec!["plan", lab3, "--sim", "-v"],
        vec!["doctor", lab3, "--sim"],
        vec!["down", "lab3", "--sim", "--dry-run"],
        vec!["up", "--help"],
    ] {
        let o = stand(dir.path(), &args, &narrow);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(widest(&out) <= 80, "`stand {}` fits 80 columns:\n{out}", args.join(" "));
        let o = stand(dir.path(), &args, &[]);
        assert!(widest(&String::from_utf8_lossy(&o.stdout)) <= 100, "default 100: {}", args.join(" "));
    }
    // Every command's help at 80 columns: paragraphs wrap whole (no line broken after a
    // word or two), and each example is a command line of its own, indented, never split.
    let commands = [
        "up",
        "plan",
        "run",
        "down",
        "reset",
        "power",
        "uplinks",
        "snapshot",
        "check",
        "serve",
        "doctor",
        "graph",
        "repl",
        "docs",
        "status",
        "templates",
        "cluster add",
        "sim serve",
        "sim guest write",
    ];
    for command in commands {
        let args: Vec<&str> = command.split(' ').chain(["--help"]).collect();
        let help = String::from_utf8_lossy(&stand(dir.path(), &args, &narrow).stdout).to_string();
        assert!(widest(&help) <= 80, "`stand {command} --help` fits 80 columns:\n{help}");
        let about = help.split("Usage:").next().unwrap();
        let mut in_examples = false;
        let lines: Vec<&str> = about.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("Example") {
                in_examples = true;
                continue;
            }
            if in_examples && !line.is_empty() {
                assert!(line.starts_with("  "), "`stand {command} --help`: an example split over lines:\n{about}");
            }
            let next = lines.get(i + 1).copied().unwrap_or_default();
            if !in_examples && !line.is_empty() && !next.is_empty() && !next.starts_with(' ') {
                assert!(line.chars().count() > 60, "`stand {command} --help`: a line broken early:\n{about}");
            }
        }
    }
    let help = String::from_utf8_lossy(&stand(dir.path(), &["up", "--help"], &narrow).stdout).to_string();
    assert!(help.contains("Cluster options:") && help.contains("Output options:"), "{help}");
    // A long error wraps at a terminal, and stays one line to grep in a pipe.
    let o = stand(dir.path(), &["down", "lab3", "--sim", "--only", "petrov"], &narrow);
    let piped = String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.starts_with("error:")).count();
    assert!(piped == 1 && widest(&String::from_utf8_lossy(&o.stderr)) > 80, "{}", text(&o));
    if let Some((code, out)) =
        crate::course::at_a_terminal(dir.path(), "", "", &["down", "lab3", "--sim", "--only", "petrov"])
    {
        assert_eq!(code, 1, "{out}");
        assert!(widest(&out) <= 80 && out.contains("error: lab lab3 has no student 'petrov'"), "{out}");
    }
    let own = help.find("--dry-run").unwrap();
    assert!(own < help.find("Cluster options:").unwrap(), "the command's own options come first:\n{help}");
}

// Point 7: `stand run` prints to stdout, logs stay on stderr; JSON is the final value.
#[test]
fn run_prints_and_returns_its_value_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let report = write(
        dir.path(),
        "report.rhai",
        "for n in nodes() { print(`node ${n.name}`); }\n#{ nodes: nodes().len(), first: nodes()[0].name }\n",
    );
    let report = report.to_str().unwrap();
    let o = stand(dir.path(), &["run", report, "--sim"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("node pve1\nnode pve2\nnode pve3\n"), "print() on stdout: {out}");
    assert!(out.contains("\"nodes\": 3"), "the final value on stdout: {out}");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("node pve1"), "not on stderr");
    let o = stand(dir.path(), &["run", report, "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o), serde_json::json!({ "nodes": 3, "first": "pve1" }), "{}", text(&o));
}

// Point 8: naming a lab or student that does not exist: exit 1, what exists, a suggestion.
#[test]
fn unknown_labs_and_students_list_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    assert!(stand(dir.path(), &["up", lab1, "--sim", "-q"], &[]).status.success());
    for args in [vec!["down", "--yes", "lab11", "--sim"], vec!["status", "lab11", "--sim"]] {
        let o = stand(dir.path(), &args, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("lab 'lab11' does not exist (did you mean 'lab1'?); labs: lab1"), "{}", text(&o));
    }
    for args in [
        vec!["down", "--yes", "lab1", "--sim", "--only", "ivanvo@pve"],
        vec!["up", lab1, "--sim", "--only", "ivanvo@pve"],
    ] {
        let o = stand(dir.path(), &args, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("(did you mean 'ivanov@pve'?)"), "{}", text(&o));
        assert!(text(&o).contains("petrova@pve"), "lists the students: {}", text(&o));
    }
    // A snapshot name with a typo, and a lab that is not there for the class page.
    let o = stand(dir.path(), &["reset", "lab1", "--sim", "--to", "strat", "--yes"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("snapshot 'strat' does not exist (did you mean 'start'?); snapshots: start"),
        "{}",
        text(&o)
    );
    let o = stand(dir.path(), &["serve", "--sim", "--lab", "lab11", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--lab: lab 'lab11' does not exist (did you mean 'lab1'?); labs: lab1"), "{}", text(&o));
}

// Point 10: all bad input exits 2.
#[test]
fn bad_settings_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", "nodes: [ { name: pve1, memory_gib: lots } ]\n");
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    let o = stand(dir.path(), &["plan", lab1, "--sim=bad.yaml"], &[]);
    assert_eq!(o.status.code(), Some(2), "a bad fixture: {}", text(&o));
    assert!(text(&o).contains("bad.yaml"), "{}", text(&o));
    let o = stand(dir.path(), &["plan", lab1, "--sim", "--sim-faults", "http5xx=lots"], &[]);
    assert_eq!(o.status.code(), Some(2), "a bad fault spec: {}", text(&o));
    let home = tempfile::tempdir().unwrap();
    write(dir.path(), "token", "secret\n");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(dir.path())
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .args(["cluster", "add", "lab", "--url", "https://127.0.0.1:9", "--token-id", "stand@pve!x"])
        .args(["--token-file", "token", "--fingerprint", "not-a-fingerprint"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a bad fingerprint: {}", text(&o));
    let o = stand(
        dir.path(),
        &["plan", lab1],
        &[("PVE_URL".into(), "ftp://x".into()), ("PVE_TOKEN".into(), "a@pve!t=s".into())],
    );
    assert_eq!(o.status.code(), Some(2), "a bad PVE_URL: {}", text(&o));
}

/// A fixture named with `--sim=FILE` is always read: a bad one is exit 2 even over a saved
/// cluster, and a saved cluster is continued only when it was made from that same fixture
/// (however the file is laid out); otherwise the command refuses and says what to do.
#[test]
fn a_named_fixture_is_read_and_never_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    assert!(stand(dir.path(), &["up", lab1, "--sim", "-q"], &[]).status.success());
    let saved = std::fs::read(dir.path().join("sim.json")).unwrap();

    write(dir.path(), "bad.yaml", "nodes: [ { name: solo1, memory_gib: lots } ]\n");
    let o = stand(dir.path(), &["status", "--sim=bad.yaml"], &[]);
    assert_eq!(o.status.code(), Some(2), "a bad fixture over a saved cluster: {}", text(&o));
    assert!(text(&o).contains("fixture bad.yaml: nodes[0].memory_gib: invalid type"), "{}", text(&o));

    let solo = |memory: u32, note: &str| {
        format!(
            "{note}\nnodes: [ {{ name: solo1, memory_gib: {memory} }} ]\nstorages: [ {{ id: local, type: dir }} ]\n\
             bridges: [ {{ iface: vmbr0 }} ]\ntemplates: [ {{ vmid: 100, name: debian-12, node: solo1, storage: local }} ]\n"
        )
    };
    write(dir.path(), "solo.yaml", &solo(32, "# one node"));
    let o = stand(dir.path(), &["status", "--sim=solo.yaml"], &[]);
    assert_eq!(o.status.code(), Some(2), "another fixture than the saved cluster's: {}", text(&o));
    assert!(
        text(&o).contains("was not made from solo.yaml: run `stand sim reset` to start again from solo.yaml"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(dir.path().join("sim.json")).unwrap(), saved, "the saved cluster is untouched");
    let o = stand(dir.path(), &["status", "--sim"], &[]);
    assert!(o.status.success() && text(&o).contains("lab1"), "plain --sim continues it: {}", text(&o));

    assert!(stand(dir.path(), &["sim", "reset"], &[]).status.success());
    let o = stand(dir.path(), &["up", lab1, "--sim=solo.yaml", "-q"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // The same cluster written differently is the same fixture: the saved one goes on.
    write(dir.path(), "solo.yaml", &solo(32, "# reformatted, same cluster"));
    let o = stand(dir.path(), &["status", "--sim=solo.yaml"], &[]);
    assert!(o.status.success() && text(&o).contains("lab1") && text(&o).contains("solo1"), "{}", text(&o));
    // A changed fixture is another cluster.
    write(dir.path(), "solo.yaml", &solo(64, "# more memory"));
    let o = stand(dir.path(), &["status", "--sim=solo.yaml"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

// Point 11: -v logs every write, -vv every request, no secret, no ANSI in a pipe; a line per
// finished stand when stderr is not a terminal.
#[test]
fn logs_show_api_calls_without_secrets_or_colour() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    let o = stand(dir.path(), &["up", lab1, "--sim", "-v"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("POST /access/users 200"), "writes are logged: {err}");
    assert!(err.contains("POST /nodes/pve1/qemu/103/clone 200"), "{err}");
    assert!(!err.contains("GET /cluster/resources"), "reads only with -vv: {err}");
    assert!(!err.contains('\x1b'), "no colour codes into a pipe");
    assert!(err.contains("✓ ivanov@pve: 1 VM on"), "a line per finished stand: {err}");
    let creds = std::fs::read_to_string(dir.path().join("lab1-credentials.csv")).unwrap();
    for password in creds.lines().skip(1).filter_map(|l| l.split(',').nth(1)) {
        assert!(!err.contains(password), "no password in the log");
    }
    let o = stand(dir.path(), &["status", "--sim", "-vv"], &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("GET /cluster/resources 200"), "{}", text(&o));
}

// Point 12: status JSON has VMs and bridges as objects.
#[test]
fn status_json_has_objects_for_vms_and_bridges() {
    let dir = tempfile::tempdir().unwrap();
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    assert!(stand(dir.path(), &["up", lab3.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    let v = json(&stand(dir.path(), &["status", "lab3", "--sim", "--output", "json"], &[]));
    let stand0 = &v["stands"][0];
    for key in ["lab", "user", "nodes", "vms", "bridges", "running", "locked"] {
        assert!(stand0.get(key).is_some(), "stands[].{key}: {stand0}");
    }
    let vm = &stand0["vms"][0];
    for key in ["vmid", "name", "node", "status", "uptime_s"] {
        assert!(vm.get(key).is_some(), "vms[].{key}: {vm}");
    }
    assert!(vm["vmid"].is_u64() && vm["uptime_s"].is_u64());
    let bridge = &stand0["bridges"][0];
    for key in ["alias", "node", "iface"] {
        assert!(bridge[key].is_string(), "bridges[].{key}: {bridge}");
    }
    assert!(v["nodes"][0]["name"].is_string());
}

// Point 13: doctor showed "TLS ok" for a refused connection; a lab that does not fit says
// what to change.
#[test]
fn doctor_shows_no_tls_ok_without_a_connection_and_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let env = vec![
        ("PVE_URL".to_string(), format!("https://127.0.0.1:{port}")),
        ("PVE_TOKEN".to_string(), "a@pve!t=00000000-0000-0000-0000-000000000000".to_string()),
        ("PVE_FINGERPRINT".to_string(), ["AB"; 32].join(":")),
    ];
    let o = stand(dir.path(), &["doctor", "--output", "json"], &env);
    assert_eq!(o.status.code(), Some(1));
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    assert!(!checks.iter().any(|c| c["name"] == "TLS" && c["verdict"] == "ok"), "{checks:#?}");
    assert!(checks.iter().any(|c| c["name"] == "reachable" && c["verdict"] == "fail"), "{checks:#?}");

    let lab = write(
        dir.path(),
        "big.rhai",
        "for i in 1..=40 { clone(create_user(`s${i}@pve`), #{ template: 100, name: \"r\", memory: 8192 }); }\n",
    );
    let o = stand(dir.path(), &["doctor", lab.to_str().unwrap(), "--sim", "--output", "json"], &[]);
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    let row = checks.iter().find(|c| c["name"] == "lab").unwrap();
    assert_eq!(row["verdict"], "fail");
    assert!(row["fix"].as_str().unwrap().contains("overcommit"), "{row}");
}

// Point 17: the saved simulator keeps its clock between commands.
#[test]
fn uptime_grows_between_sim_commands() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    assert!(stand(dir.path(), &["up", lab1.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    // An hour passes: the saved cluster started an hour earlier on the wall clock.
    let path = dir.path().join("sim.json");
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    state["epoch"] = serde_json::json!(state["epoch"].as_u64().unwrap() - 3600);
    std::fs::write(&path, state.to_string()).unwrap();
    let v = json(&stand(dir.path(), &["status", "lab1", "--sim", "--output", "json"], &[]));
    let uptime = v["stands"][0]["vms"][0]["uptime_s"].as_u64().unwrap();
    assert!(uptime >= 3600, "uptime {uptime} s after an hour");
}

fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().unwrap_or_else(|| panic!("an object: {v}")).keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

// Point 12: every command's JSON has the keys the README documents.
#[test]
fn every_commands_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--sim", "--output", "json"]);
        json(&stand(dir.path(), &all, &[]))
    };
    let plan = run(&["plan", lab1]);
    assert_eq!(keys(&plan), ["actions", "changes", "clone_queues", "lab", "plan", "prune", "simulated"]);
    assert_eq!(keys(&plan["clone_queues"]), ["local", "now_s", "shared", "synced_s"]);
    let templates = run(&["templates"]);
    assert_eq!(keys(&templates), ["copies", "originals", "simulated"]);
    let sync = run(&["templates", "sync", "debian-12", "--dry-run"]);
    assert_eq!(keys(&sync), ["actions", "dry_run", "kept", "operation", "present", "simulated"]);
    let sync = run(&["templates", "sync", "debian-12"]);
    assert_eq!(
        keys(&sync),
        ["converged", "copied", "failures", "kept", "operation", "present", "removed", "simulated"]
    );
    assert_eq!(
        keys(&run(&["templates"])["copies"][0]),
        ["complete", "fresh", "linked", "name", "node", "of", "storages", "vmid"]
    );
    assert!(
        plan["actions"].as_array().unwrap().iter().all(|a| a.get("password").is_none()),
        "no password in the graph"
    );
    assert_eq!(keys(&plan["plan"]), ["bridges", "group", "lab", "users", "vms", "warnings"]);
    assert_eq!(keys(&plan["changes"][0]), ["detail", "id", "kind", "object"]);
    let dry = run(&["up", lab1, "--dry-run"]);
    assert_eq!(keys(&dry), ["changes", "dry_run", "lab", "simulated"]);
    let up = run(&["up", lab1]);
    assert_eq!(
        keys(&up),
        ["converged", "credentials", "credentials_file", "lab", "pruned", "report", "simulated", "value", "warnings"]
    );
    assert_eq!(keys(&up["credentials"][0]), ["node", "user", "vms"], "no password unless --show-passwords");
    for k in ["vms_created", "vms_started", "users_created", "failures", "seconds"] {
        assert!(up["report"].get(k).is_some(), "report.{k}");
    }
    let status = run(&["status"]);
    assert_eq!(keys(&status), ["labs", "nodes", "simulated", "stands"]);
    let doctor = run(&["doctor"]);
    assert_eq!(keys(&doctor), ["checks", "ok", "simulated"]);
    assert_eq!(keys(&doctor["checks"][0]), ["detail", "fix", "name", "verdict"]);
    let would = run(&["down", "lab1", "--dry-run"]);
    assert_eq!(keys(&would), ["actions", "dry_run", "lab", "simulated", "would_remove"]);
    assert_eq!(
        keys(&would["would_remove"]),
        ["bridges", "groups", "kept_bridges", "kept_vnets", "pools", "users", "vms", "vnets"]
    );
    assert_eq!(keys(&would["would_remove"]["vms"][0]), ["name", "node", "running", "vmid"]);
    assert_eq!(keys(&would["would_remove"]["users"][0]), ["other_labs", "userid"]);
    let down = run(&["down", "--yes", "lab1"]);
    assert_eq!(keys(&down), ["converged", "kept_bridges", "kept_vnets", "lab", "removed", "simulated"]);
    assert_eq!(
        keys(&down["removed"]),
        ["bridges", "failures", "groups", "interrupted", "pools", "users", "users_kept", "vms", "vnets"]
    );
}

/// A student is named on the command line as the instructor knows them: `щукина@pve`,
/// `щукина` or `shchukina` (her pool and VMs' name); a typo gets the closest student.
#[test]
fn only_finds_a_cyrillic_student_by_name_and_by_its_latin_spelling() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cyr.rhai",
        r#"for s in ["щукина@pve", "smirnov@pve"] { let u = create_user(s); place_balanced(u);
            clone(u, #{ template: "debian-12", name: "pc" }); }"#,
    );
    assert!(stand(dir.path(), &["up", "cyr.rhai", "--sim", "-q"], &[]).status.success());
    for who in ["щукина@pve", "щукина", "shchukina", "Shchukina"] {
        let o = stand(dir.path(), &["snapshot", "cyr", "--list", "--sim", "--only", who, "--output", "json"], &[]);
        assert!(o.status.success(), "{who}: {}", text(&o));
        let names: Vec<String> =
            json(&o)["vms"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["pc-shchukina"], "{who}");
    }
    let o = stand(dir.path(), &["power", "off", "cyr", "--sim", "--only", "shchukna"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("lab cyr has no student 'shchukna' (did you mean 'щукина@pve'?)"), "{}", text(&o));
    let o = stand(dir.path(), &["plan", "cyr.rhai", "--sim", "--only", "shchukina"], &[]);
    assert!(o.status.success() && !text(&o).contains("smirnov"), "{}", text(&o));
}
