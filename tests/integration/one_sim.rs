//! The `--sim` cluster is one cluster for every command: commands that change it take turns,
//! `stand serve --sim` shares the one it runs with the other commands, and a student's work
//! is simulated with `stand sim guest write`; `status` shows a class in 80 columns.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{stand, text};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Each VM of the `--sim` cluster's stands with its state, as `status` reads it.
fn states(d: &Path) -> Vec<(String, String)> {
    let o = stand(d, &["status", "--sim", "--output", "json"], &[]);
    let stands = json(&o)["stands"].as_array().cloned().unwrap_or_default();
    stands
        .iter()
        .flat_map(|s| s["vms"].as_array().unwrap().clone())
        .map(|v| (v["name"].as_str().unwrap().to_string(), v["status"].as_str().unwrap().to_string()))
        .collect()
}

/// `stand serve --sim` while other commands work on the same simulated cluster: what they do
/// goes to the cluster it runs (not to a copy of their own), and is still there after it
/// stops. Before, the last of them to save won.
#[test]
fn commands_and_the_class_page_on_sim_share_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    assert!(stand(d, &["up", lab1.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(d)
        .args(["serve", "--sim", "--listen", "127.0.0.1:0", "-q"])
        .env("STAND_SIM_STATE", d.join("sim.json"))
        .env("HOME", d)
        .env("XDG_STATE_HOME", d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = BufReader::new(serve.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(d.join("sim.serve.json").exists(), "serve leaves its address beside the state");

    let o = stand(d, &["power", "off", "lab1", "--sim", "--only", "ivanov"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("served by stand serve --sim"), "the banner says where it went: {}", text(&o));
    assert!(states(d).contains(&("vm-ivanov".into(), "stopped".into())), "status sees it through serve");
    let o = stand(d, &["sim", "reset", "--sim-state", d.join("sim.json").to_str().unwrap()], &[]);
    assert!(!o.status.success() && text(&o).contains("is running the simulated cluster"), "{}", text(&o));

    let _ = Command::new("kill").arg(serve.id().to_string()).status();
    assert!(serve.wait().unwrap().success(), "SIGTERM stops serve cleanly");
    assert!(!d.join("sim.serve.json").exists(), "its address goes with it");
    let after = states(d);
    assert!(after.contains(&("vm-ivanov".into(), "stopped".into())), "the power-off outlived serve: {after:?}");
    assert_eq!(after.iter().filter(|(_, s)| s == "running").count(), 11);
}

/// Two commands that change the `--sim` cluster at once take turns: both labs are there
/// afterwards (before, the second to save lost the first one's).
#[test]
fn two_commands_changing_the_sim_cluster_at_once_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = |name: &str, who: &str| {
        std::fs::write(
            d.join(format!("{name}.rhai")),
            format!("let u = create_user(\"{who}@pve\"); place_balanced(u); clone(u, #{{ template: \"debian-12\", name: \"pc\" }});"),
        )
        .unwrap();
    };
    lab("one", "anna");
    lab("two", "boris");
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_stand"))
            .current_dir(d)
            .args(["up", &format!("{name}.rhai"), "--sim", "--sim-time-scale", "0.2", "-q"])
            .env("STAND_SIM_STATE", d.join("sim.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (run("one"), run("two"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let waited = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(waited.contains("waiting for another stand command"), "one waited for the other: {waited}");
    let vms: Vec<String> = states(d).into_iter().map(|(n, _)| n).collect();
    assert_eq!(vms.len(), 2, "both labs are on the cluster: {vms:?}");
}

/// The grading tour on `--sim` alone: a student's work written into the guest with `stand sim
/// guest write` (names as the instructor knows them), then graded.
#[test]
fn a_students_work_is_simulated_on_sim_and_graded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("web.rhai"),
        "for u in [\"щукина@pve\", \"smirnov@pve\"] { let user = create_user(u); place_balanced(user);\n\
         clone(user, #{ template: \"debian-12\", name: \"web\", memory: 512 }); }\n\
         fn check(stand) { grade(\"named web\", 1, hostname(stand.vm(\"web\")) == \"web\", \"set the hostname\"); }\n",
    )
    .unwrap();
    let sim = ["--sim", "--sim-time-scale", "0"];
    assert!(stand(d, &[&["up", "web.rhai", "-q"][..], &sim].concat(), &[]).status.success());
    let o = stand(
        d,
        &["sim", "guest", "write", "web", "shchukina", "web", "/etc/hostname", "web", "--sim-time-scale", "0"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("wrote 4 bytes to /etc/hostname in web-shchukina (щукина@pve, lab web)"), "{}", text(&o));
    let o = stand(d, &["sim", "guest", "write", "web", "smirnov", "webb", "/etc/hostname", "web"], &[]);
    assert!(!o.status.success() && text(&o).contains("has no VM 'webb' (did you mean 'web'?)"), "{}", text(&o));
    let o = stand(d, &[&["check", "web.rhai", "--db", "g.db", "--output", "json"][..], &sim].concat(), &[]);
    let sheet = json(&o);
    let totals: Vec<(String, f64)> = sheet["stands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap().to_string(), r["total"].as_f64().unwrap()))
        .collect();
    assert_eq!(totals, [("smirnov@pve".to_string(), 0.0), ("щукина@pve".to_string(), 1.0)]);
}

/// `status LAB` at 80 columns: one line per VM, the networks each VM is on, the uplinks an
/// exam cut, and `--only` for some students.
#[test]
fn status_of_a_lab_is_one_line_per_vm_in_80_columns_and_shows_an_exam() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    assert!(stand(d, &["up", lab3.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    assert!(stand(d, &["uplinks", "off", "lab3", "--sim", "--only", "kuznetsova"], &[]).status.success());
    let o = stand(
        d,
        &["status", "lab3", "--sim", "--only", "kuznetsova", "ivanov", "-q"],
        &[("COLUMNS".into(), "80".into())],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.starts_with("lab lab3: 2 stands, 8 of 8 VMs running; uplinks cut (✗) on 1 stand (exam)\n"), "{out}");
    let stands_table = out.split('└').next().unwrap();
    let rows: Vec<&str> = stands_table.lines().filter(|l| l.starts_with('│') && !l.contains("student")).collect();
    assert_eq!(rows.len(), 8, "one line per VM:\n{out}");
    for l in out.lines() {
        assert!(console::measure_text_width(l) <= 80, "wider than 80 columns: {l}");
    }
    assert!(rows[0].contains("ivanov@pve") && rows[0].contains("3000 gw-ivanov") && rows[0].contains("vmbr0,dmz,lan"));
    let gw = rows.iter().find(|r| r.contains("gw-kuznetsova")).unwrap();
    assert!(gw.contains("vmbr0✗,dmz,lan"), "{gw}");
    assert!(out.contains("kuznetsova@pve: dmz: pve1/vmbr"), "{out}");
    let o = stand(d, &["status", "lab3", "--sim", "--output", "json", "--only", "kuznetsova"], &[]);
    let v = json(&o);
    let vms = v["stands"][0]["vms"].as_array().unwrap();
    let gw = vms.iter().find(|v| v["name"] == "gw-kuznetsova").unwrap();
    assert_eq!(gw["cut"], serde_json::json!(["net1"]), "{gw}");
    assert_eq!(
        gw["nets"][2],
        serde_json::json!({ "nic": "net2", "bridge": gw["nets"][2]["bridge"], "alias": "dmz", "link_down": false })
    );
}

/// Ctrl-C during `up` on `--sim`: the steps under way finish, the rest do not start, `up`
/// says so and that running it again continues (exit 130), what was done is saved, and the
/// next `up` finishes the lab.
#[test]
fn ctrl_c_during_up_keeps_what_was_done_and_the_next_up_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    let mut up = Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(d)
        .args(["up", lab3.to_str().unwrap(), "--sim", "--sim-time-scale", "0.1"])
        .env("STAND_SIM_STATE", d.join("sim.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // When the first stand is done (a line per stand, into a pipe), Ctrl-C.
    let mut err = BufReader::new(up.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "up ended before a stand was done: {seen}");
        seen.push_str(&line);
        if line.starts_with('✓') {
            break;
        }
    }
    assert!(Command::new("kill").args(["-INT", &up.id().to_string()]).status().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = up.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted: the steps under way finish"), "{rest}");
    assert!(
        rest.contains("steps did not start; what was done is kept, and `stand up` again continues from here"),
        "{rest}"
    );
    assert!(!rest.contains('✗'), "interrupted stands are not failures: {rest}");
    let done = states(d);
    assert!(!done.is_empty() && done.len() < 48, "part of the lab was made and saved: {}", done.len());

    let o = stand(d, &["up", lab3.to_str().unwrap(), "--sim", "-q"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(states(d).len(), 48, "the next up finished it");
    let o = stand(d, &["up", lab3.to_str().unwrap(), "--sim"], &[]);
    assert!(text(&o).contains("nothing to do"), "{}", text(&o));
}
