//! A week of a course after `up`: baseline snapshots, reset, power, snapshots, over HTTPS
//! against the served simulator (its state read directly) and on `--sim`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use stand::sim::Sim;

use crate::common::{served_in_process as served, stand, text, token_env};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn lab3() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai").to_str().unwrap().to_string()
}

/// Each VM of lab3 by name: (config without `lock`, running).
fn vms_of(sim: &Sim) -> BTreeMap<String, (BTreeMap<String, String>, bool)> {
    let st = sim.state();
    st.vms
        .values()
        .filter(|v| v.config.get("tags").is_some_and(|t| t.contains("lab-lab3")))
        .map(|v| {
            let mut config = v.config.clone();
            config.remove("lock");
            (config["name"].clone(), (config, v.running))
        })
        .collect()
}

fn vmid(sim: &Sim, name: &str) -> u32 {
    *sim.state().vms.iter().find(|(_, v)| v.config.get("name").map(String::as_str) == Some(name)).unwrap().0
}

#[test]
fn reset_of_one_student_among_twelve_restores_hers_and_touches_no_other() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let o = stand(dir.path(), &["up", &lab3()], &env);
    assert!(o.status.success(), "{}", text(&o));
    let deployed = vms_of(&sim);
    assert_eq!(deployed.len(), 48);
    for name in deployed.keys() {
        let id = vmid(&sim, name);
        let list: Vec<String> = sim.state().vms[&id].snapshots.keys().cloned().collect();
        assert_eq!(list, ["start"], "up takes the baseline of {name}");
    }

    // Students break things: petrova changes two VMs and stops one; ivanov changes one.
    {
        let mut st = sim.state();
        for (name, memory) in [("gw-petrova", "4096"), ("web-petrova", "3072"), ("gw-ivanov", "2048")] {
            let id = *st.vms.iter().find(|(_, v)| v.config["name"] == name).unwrap().0;
            st.vms.get_mut(&id).unwrap().config.insert("memory".into(), memory.into());
        }
        let id = *st.vms.iter().find(|(_, v)| v.config["name"] == "client-petrova").unwrap().0;
        st.vms.get_mut(&id).unwrap().running = false;
    }
    let broken = vms_of(&sim);

    let o = stand(dir.path(), &["reset", "lab3", "--only", "petrova@pve", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let report = json(&o);
    assert_eq!(report["done"], 4);
    assert_eq!(report["converged"], true);

    let after = vms_of(&sim);
    for (name, (config, running)) in &after {
        if name.ends_with("-petrova") {
            let (was_config, _) = &deployed[name];
            let mut expected = was_config.clone();
            expected.remove("parent");
            let mut got = config.clone();
            got.remove("parent");
            assert_eq!(got, expected, "{name} is back to its baseline");
            let ran_before_reset = broken[name].1;
            assert_eq!(*running, ran_before_reset, "{name} runs again only if it ran");
        } else {
            assert_eq!((config, running), (&broken[name].0, &broken[name].1), "{name} is untouched");
        }
    }
    let st = sim.state();
    let rolled: Vec<String> = st
        .tasks
        .iter()
        .filter(|t| t.kind == "qmrollback")
        .map(|t| st.vms[&t.id.parse::<u32>().unwrap()].config["name"].clone())
        .collect();
    assert_eq!(rolled.len(), 4);
    assert!(rolled.iter().all(|n| n.ends_with("-petrova")), "{rolled:?}");
}

#[test]
fn power_snapshot_and_reset_to_a_named_snapshot_on_sim() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(stand(d, &["up", &lab3(), "--sim", "-q"], &[]).status.success());
    // Power the class off, then one student's gateway on.
    let o = stand(d, &["power", "off", "lab3", "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o)["done"], 48, "{}", text(&o));
    let o = stand(d, &["power", "on", "lab3", "--sim", "--only", "ivanov@pve", "--vm", "gw", "--output", "json"], &[]);
    assert_eq!(json(&o)["done"], 1, "{}", text(&o));
    let o = stand(d, &["power", "off", "lab3", "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o)["done"], 1, "only the one running VM is stopped again");

    // A named snapshot before a task, listed, reset to, deleted.
    let o = stand(d, &["snapshot", "lab3", "before-ospf", "--sim", "--only", "ivanov@pve"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &["snapshot", "lab3", "--list", "--sim", "--only", "ivanov@pve", "--output", "json"], &[]);
    let vms = json(&o)["vms"].as_array().unwrap().clone();
    assert_eq!(vms.len(), 4);
    assert!(vms.iter().all(|v| v["snapshots"] == serde_json::json!(["before-ospf", "start"])), "{vms:?}");
    let o = stand(d, &["reset", "lab3", "--sim", "--to", "before-ospf", "--output", "json"], &[]);
    assert_eq!(o.status.code(), Some(1), "other students have no such snapshot: {}", text(&o));
    assert!(text(&o).contains("without snapshot 'before-ospf'") && text(&o).contains("nothing was reset"));
    let o = stand(d, &["reset", "lab3", "--sim", "--only", "ivanov@pve", "--to", "before-ospf"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &["snapshot", "lab3", "before-ospf", "--delete", "--sim", "--output", "json"], &[]);
    assert_eq!(json(&o)["done"], 4);

    // Typos are named with what exists.
    let o = stand(d, &["power", "on", "lab3", "--sim", "--vm", "gww"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("did you mean 'gw'"), "{}", text(&o));
    let o = stand(d, &["snapshot", "lab3", "Before OSPF", "--sim"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is not allowed"), "{}", text(&o));
}

#[test]
fn course_operations_under_faults_converge_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(stand(d, &["up", &lab3(), "--sim", "-q"], &[]).status.success());
    let faults = ["--sim-faults", "http5xx=0.1,reset=0.1,task_fail=0.1,lock_timeout=0.1", "--sim-seed", "11"];
    for (args, what) in [
        (vec!["snapshot", "lab3", "exam"], "snapshot"),
        (vec!["power", "shutdown", "lab3", "--timeout", "30"], "power"),
        (vec!["reset", "lab3", "--to", "exam", "--yes"], "reset"),
        (vec!["uplinks", "off", "lab3"], "uplinks off"),
        (vec!["uplinks", "on", "lab3"], "uplinks on"),
    ] {
        let faulty = stand(d, &[&args[..], &["--sim", "--output", "json"], &faults[..]].concat(), &[]);
        assert!(matches!(faulty.status.code(), Some(0 | 3)), "{what}: {}", text(&faulty));
        let again = stand(d, &[&args[..], &["--sim", "--output", "json"]].concat(), &[]);
        assert!(again.status.success(), "{what} converges: {}", text(&again));
        assert_eq!(json(&again)["failures"], serde_json::json!([]), "{what}");
    }
}

/// The NICs of every lab3 VM: name → (net key → value), and its marker's `cut=` list.
fn nics_of(sim: &Sim) -> BTreeMap<String, (BTreeMap<String, String>, String)> {
    vms_of(sim)
        .into_iter()
        .map(|(name, (config, _))| {
            let nets =
                config.iter().filter(|(k, _)| k.starts_with("net")).map(|(k, v)| (k.clone(), v.clone())).collect();
            let marker = stand::plan::Marker::parse(&config["description"]).unwrap();
            (name, (nets, marker.get("cut").unwrap_or_default().to_string()))
        })
        .collect()
}

#[test]
fn uplinks_off_and_on_restore_exactly_what_was_cut_also_after_a_sigkill() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let o = stand(dir.path(), &["up", &lab3(), "-q"], &env);
    assert!(o.status.success(), "{}", text(&o));
    // The instructor disconnects smirnov's uplink by hand: not the exam's to restore.
    let cut_by_hand = |sim: &Sim| {
        let mut st = sim.state();
        let vm = st.vms.values_mut().find(|v| v.config["name"] == "gw-smirnov").unwrap();
        let net = vm.config["net1"].clone();
        assert!(net.contains("bridge=vmbr0") && !net.contains("link_down"), "{net}");
        vm.config.insert("net1".into(), format!("{net},link_down=1"));
    };
    cut_by_hand(&sim);
    let before = nics_of(&sim);

    // `off` is killed while gw-petrova's config write is held: a VM is cut and marked in one
    // write, or untouched.
    let petrova = vmid(&sim, "gw-petrova");
    let node = sim.state().vms[&petrova].node.clone();
    let hold = sim.hold(stand::pve::Method::Put, &format!("/nodes/{node}/qemu/{petrova}/config"));
    let mut off = std::process::Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(dir.path())
        .args(["uplinks", "off", "lab3"])
        .env_remove("STAND_CLUSTER")
        .envs(env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cut = |sim: &Sim| nics_of(sim).values().filter(|(_, c)| !c.is_empty()).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while cut(&sim) < 10 {
        assert!(std::time::Instant::now() < deadline, "uplinks off did not cut the ten other gateways");
        assert!(off.try_wait().unwrap().is_none(), "uplinks off ended although one write is held");
        std::thread::yield_now();
    }
    off.kill().unwrap();
    off.wait().unwrap();

    let after_kill = nics_of(&sim);
    for (name, (nets, cut)) in &after_kill {
        let (was, _) = &before[name];
        if name.starts_with("gw-") && name != "gw-petrova" && name != "gw-smirnov" {
            assert_eq!(cut, "net1", "{name}: the marker names what was cut");
            assert!(nets["net1"].contains("link_down=1"), "{name}: {nets:?}");
            assert_eq!(nets["net0"], was["net0"], "{name}: private NICs stay connected");
        } else {
            assert_eq!((nets, cut.as_str()), (was, ""), "{name} is untouched");
        }
    }

    // A re-run of `up` during the exam keeps the cut NICs cut (it only brings smirnov's NIC,
    // which the exam did not cut, back to what the script says).
    let o = stand(dir.path(), &["up", &lab3(), "-q"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let mut after_up = nics_of(&sim);
    assert!(!after_up["gw-smirnov"].0["net1"].contains("link_down"));
    after_up.insert("gw-smirnov".into(), after_kill["gw-smirnov"].clone());
    assert_eq!(after_up, after_kill, "up reconnects nothing `uplinks off` cut");
    cut_by_hand(&sim);

    // A student breaks her stand during the exam; her reset brings it back, still cut.
    let o = stand(dir.path(), &["reset", "lab3", "--only", "ivanov@pve", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(nics_of(&sim)["gw-ivanov"], after_kill["gw-ivanov"], "the reset keeps the exam's cut");
    assert!(vms_of(&sim)["gw-ivanov"].1, "and the gateway runs again");

    // `on` reconnects exactly the ten, not smirnov's NIC, and clears the markers.
    let o = stand(dir.path(), &["uplinks", "on", "lab3", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["done"], 10);
    assert_eq!(nics_of(&sim), before, "every NIC is as it was before the exam");
    let o = stand(dir.path(), &["uplinks", "on", "lab3"], &env);
    assert!(text(&o).contains("nothing to reconnect"), "{}", text(&o));
    hold.release();
}

#[test]
fn power_and_snapshot_over_https() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    assert!(stand(dir.path(), &["up", &lab3(), "-q", "--only", "ivanov@pve", "petrova@pve"], &env).status.success());
    let o = stand(dir.path(), &["power", "shutdown", "lab3", "--only", "ivanov@pve", "--output", "json"], &env);
    assert_eq!(json(&o)["done"], 4, "{}", text(&o));
    let running: BTreeMap<String, bool> = vms_of(&sim).into_iter().map(|(n, (_, r))| (n, r)).collect();
    assert!(running.iter().all(|(n, r)| *r != n.ends_with("-ivanov")), "only ivanov's VMs are down: {running:?}");
    let o = stand(dir.path(), &["snapshot", "lab3", "exam", "--vm", "gw", "--output", "json"], &env);
    assert_eq!(json(&o)["done"], 2, "{}", text(&o));
    let st = sim.state();
    for v in st.vms.values().filter(|v| v.config.get("tags").is_some_and(|t| t.contains("lab-lab3"))) {
        let names: Vec<&String> = v.snapshots.keys().collect();
        let expected: Vec<&str> =
            if v.config["name"].starts_with("gw-") { vec!["exam", "start"] } else { vec!["start"] };
        assert_eq!(names, expected, "{}", v.config["name"]);
    }
}

/// `user → password` from a credentials sheet.
fn passwords(sheet: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(sheet).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').collect::<Vec<_>>().get(..2).map(|f| (f[0].into(), f[1].into())))
        .collect()
}

/// Whether `user` can log in (`POST /access/ticket`) over HTTPS.
fn logs_in(rt: &tokio::runtime::Runtime, server: &stand::sim::RunningServer, user: &str, password: &str) -> bool {
    use stand::pve::{ClientOptions, Credentials, PveClient, PveExt, Secret, TlsMode};
    let creds = Credentials::Password { user: user.into(), password: Secret::new(password) };
    let tls = TlsMode::Pinned(server.fingerprint.clone());
    let pve = PveClient::new(&server.url, creds, &tls, ClientOptions::default()).unwrap();
    rt.block_on(pve.version()).is_ok()
}

#[test]
fn expiry_sets_the_accounts_shows_in_status_and_down_expired_removes_only_past_labs() {
    let (sim, rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = token_env(&server);
    let script = |lab: &str, students: &str, expires: &str| {
        let settings = if expires.is_empty() { String::new() } else { format!("expires: \"{expires}\"") };
        let body = format!(
            "lab(#{{ {settings} }});\nfor u in [{students}] {{ let user = create_user(u); place_balanced(user); \
             clone(user, #{{ template: \"debian-12\", name: \"pc\", nets: [alias(user, \"lan\")], memory: 512 }}); }}\n"
        );
        std::fs::write(d.join(format!("{lab}.rhai")), body).unwrap();
    };
    let expire_of = |user: &str| sim.state().users[user].expire;
    let day = |d: &str| stand::plan::expiry::account_expire(stand::plan::expiry::parse(d).unwrap());

    script("exam", "\"иванов@pve\", \"petrova@pve\"", "2099-06-30");
    assert!(stand(d, &["up", "exam.rhai", "-q"], &env).status.success());
    assert_eq!((expire_of("иванов@pve"), expire_of("petrova@pve")), (day("2099-06-30"), day("2099-06-30")));
    // petrova also takes a course that ends earlier: her account lasts until the later day.
    script("keep", "\"petrova@pve\"", "2099-01-31");
    assert!(stand(d, &["up", "keep.rhai", "-q"], &env).status.success());
    assert_eq!(expire_of("petrova@pve"), day("2099-06-30"));
    let o = stand(d, &["status", "--output", "json"], &env);
    assert_eq!(
        json(&o)["labs"],
        serde_json::json!([{ "lab": "exam", "expires": "2099-06-30", "expired": false }, { "lab": "keep", "expires": "2099-01-31", "expired": false }])
    );
    let ivanov = passwords(&d.join("exam-credentials.csv"))["иванов@pve"].clone();
    assert!(logs_in(&rt, &server, "иванов@pve", &ivanov));
    assert!(stand(d, &["down", "--yes", "--expired"], &env).status.success());
    assert_eq!(sim.state().users.len(), 3, "nothing is past its day: root and the two students stay");
    // Without the exam, petrova's account ends with the lab she keeps.
    assert!(stand(d, &["down", "--yes", "exam"], &env).status.success());
    assert_eq!(expire_of("petrova@pve"), day("2099-01-31"));
    script("exam", "\"иванов@pve\", \"petrova@pve\"", "2099-06-30");
    let o = stand(d, &["up", "exam.rhai", "-q"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let ivanov = passwords(&d.join("exam-credentials.csv"))["иванов@pve"].clone();

    // The exam is moved into the past: accounts expire, the plan says so, `down --expired`
    // removes that lab and nothing of the other.
    script("exam", "\"иванов@pve\", \"petrova@pve\"", "2020-01-31");
    let o = stand(d, &["up", "exam.rhai"], &env);
    assert!(o.status.success() && text(&o).contains("last day (2020-01-31) is past"), "{}", text(&o));
    assert_eq!(expire_of("иванов@pve"), day("2020-01-31"));
    assert_eq!(expire_of("petrova@pve"), day("2099-01-31"), "keep's day is now the later one");
    assert!(!logs_in(&rt, &server, "иванов@pve", &ivanov), "PVE refuses an expired account");
    let o = stand(d, &["status"], &env);
    assert!(text(&o).contains("2020-01-31 (past)"), "{}", text(&o));
    let keep_before = vms_of_lab(&sim, "keep");
    let o = stand(d, &["down", "--yes", "--expired", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let expired = json(&o)["expired"].as_array().unwrap().clone();
    assert_eq!(expired.len(), 1, "one document, one report per expired lab: {expired:?}");
    assert_eq!((expired[0]["lab"].as_str(), expired[0]["removed"]["vms"].as_u64()), (Some("exam"), Some(2)));
    assert!(vms_of_lab(&sim, "exam").is_empty());
    assert_eq!(vms_of_lab(&sim, "keep"), keep_before, "keep is untouched");
    assert!(!sim.state().users.contains_key("иванов@pve") && sim.state().users.contains_key("petrova@pve"));
    let o = stand(d, &["down", "--yes", "--expired"], &env);
    assert!(text(&o).contains("no lab is past its last day"), "{}", text(&o));
}

fn vms_of_lab(sim: &Sim, lab: &str) -> Vec<String> {
    let st = sim.state();
    st.vms
        .values()
        .filter(|v| v.config.get("tags").is_some_and(|t| t.split(';').any(|t| t == format!("lab-{lab}"))))
        .map(|v| v.config["name"].clone())
        .collect()
}

#[test]
fn the_script_resets_powers_snapshots_and_cuts_uplinks_as_steps_of_its_graph() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = token_env(&server);
    assert!(stand(d, &["up", &lab3(), "-q"], &env).status.success());
    let gw = vmid(&sim, "gw-ivanov");
    sim.state().vms.get_mut(&gw).unwrap().config.insert("memory".into(), "4096".into());
    let script = "lab(#{ name: \"lab3\" });\nreset(\"ivanov@pve\");\npower(\"petrova@pve\", \"off\");\n\
                  snapshot(\"petrova@pve\", \"before-exam\");\nuplinks(\"sidorov@pve\", \"off\");\n";
    std::fs::write(d.join("week2.rhai"), script).unwrap();

    let o = stand(d, &["plan", "week2.rhai"], &env);
    let plan = text(&o);
    for line in [
        "~ reset  3000 gw-ivanov: back to start, start",
        "~ power  3004 gw-petrova: stop",
        "+ snap   3007 admin-petrova: before-exam",
        "~ uplink 3008 gw-sidorov: cut net1",
    ] {
        assert!(plan.contains(line), "plan lists `{line}`:\n{plan}");
    }
    let o = stand(d, &["up", "week2.rhai", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["report"]["course_actions"], 4 + 4 + 1);
    assert_eq!(json(&o)["report"]["snapshots_taken"], 4);
    let vms = vms_of(&sim);
    assert_eq!(vms["gw-ivanov"].0["memory"], "1024", "reset to the baseline");
    assert!(vms.iter().filter(|(n, _)| n.ends_with("-petrova")).all(|(_, (_, running))| !running));
    let web = vmid(&sim, "web-petrova");
    assert!(sim.state().vms[&web].snapshots.contains_key("before-exam"));
    assert_eq!(nics_of(&sim)["gw-sidorov"].1, "net1");

    let o = stand(d, &["run", "week2.rhai"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &["plan", "week2.rhai"], &env);
    assert!(!text(&o).contains("~ power"), "petrova's VMs are off already: {}", text(&o));
    let bad = "lab(#{ name: \"lab3\" });\npower(\"nobody@pve\", \"off\");\n";
    std::fs::write(d.join("bad.rhai"), bad).unwrap();
    let o = stand(d, &["plan", "bad.rhai"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("'nobody@pve' has no stand in lab lab3") && text(&o).contains("bad.rhai:2"),
        "{}",
        text(&o)
    );
}

/// `stand` run in a pseudo-terminal by `tests/pty/answer.py`, which types `answer` when the
/// command asks `question`; what it wrote, and its exit code. `None` (after saying SKIPPED)
/// without python3, which CI always has.
pub fn at_a_terminal(dir: &Path, question: &str, answer: &str, args: &[&str]) -> Option<(i32, String)> {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(std::env::var_os("STAND_REQUIRE_PEER").is_none(), "python3 is needed for the pty test");
        eprintln!("SKIPPED: python3 is not installed");
        return None;
    }
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pty/answer.py"))
        .args([question, answer, env!("CARGO_BIN_EXE_stand")])
        .args(args)
        .current_dir(dir)
        .env("STAND_SIM_STATE", dir.join("sim.json"))
        .env("COLUMNS", "80")
        .env_remove("PVE_URL")
        .env_remove("PVE_TOKEN")
        .output()
        .unwrap();
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string()))
}

/// Removing asks first: on a terminal the person answers (no: nothing goes), `--yes` does
/// not ask, and where nobody can be asked (a pipe, a script) the command refuses and changes
/// nothing, for `down`, `down --expired` and `up --prune` alike.
#[test]
fn removing_asks_on_a_terminal_and_refuses_in_a_pipe_without_yes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let lab1 = lab1.to_str().unwrap();
    assert!(stand(d, &["up", lab1, "--sim", "-q"], &[]).status.success());
    // The lab's VMs with their state, as `status` reads them.
    let vms = || -> Vec<(u64, String)> {
        let o = stand(d, &["status", "--sim", "--output", "json"], &[]);
        let stands = json(&o)["stands"].as_array().cloned().unwrap_or_default();
        stands
            .iter()
            .flat_map(|s| s["vms"].as_array().unwrap().clone())
            .map(|v| (v["vmid"].as_u64().unwrap(), v["status"].as_str().unwrap().to_string()))
            .collect()
    };
    let before = vms();
    assert_eq!(before.len(), 12);

    let o = stand(d, &["down", "lab1", "--sim"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(
            "not removing without asking: remove 12 VMs (12 running), 12 pools, 12 users, 1 group of lab lab1. Run it on a terminal to answer, or add --yes"
        ),
        "{}",
        text(&o)
    );
    assert!(vms() == before, "nothing changed");

    let Some((code, out)) = at_a_terminal(d, "[y/N]", "n", &["down", "lab1", "--sim"]) else { return };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("remove 12 VMs (12 running), 12 pools, 12 users, 1 group of lab lab1? [y/N]"), "{out}");
    assert!(out.contains("nothing was removed"), "{out}");
    assert!(vms() == before, "nothing changed");

    // --prune: refused before anything changes, even what `up` would add.
    std::fs::write(d.join("few.txt"), "ivanov@pve\npetrova@pve\nnovikov@pve\n").unwrap();
    let o = stand(d, &["up", lab1, "--sim", "--users", "few.txt", "--prune"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("remove 9 VMs (9 running), 9 pools, 9 users that lab lab1 no longer has"),
        "{}",
        text(&o)
    );
    assert!(vms() == before, "nothing changed, not even what up adds");
    let (code, out) = at_a_terminal(d, "[y/N]", "y", &["up", lab1, "--sim", "--users", "few.txt", "--prune"]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pruned 9 VMs"), "{out}");

    let (code, out) = at_a_terminal(d, "[y/N]", "да", &["down", "lab1", "--sim"]).unwrap();
    assert_eq!(code, 0, "{out}");
    let o = stand(d, &["status", "--sim"], &[]);
    assert!(text(&o).contains("no labs deployed by stand"), "{}", text(&o));
}

/// An `up` whose snapshots partly failed leaves VMs without their baseline; the next `plan`
/// lists exactly those, and the next `up` takes them, never again those that have it.
#[test]
fn a_broken_up_leaves_no_vm_without_its_baseline_once_up_runs_again() {
    let (sim, _rt, server) = served();
    let env = token_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = r#"for s in ["ivanov@pve", "petrova@pve"] {
        let u = create_user(s); place_balanced(u); let lan = alias(u, "lan");
        for n in ["a", "b", "c"] { clone(u, #{ template: "debian-12", name: n, nets: [lan] }); }
    }"#;
    std::fs::write(d.join("lab.rhai"), lab).unwrap();
    let with_start = |sim: &Sim| -> BTreeMap<String, Option<u64>> {
        let st = sim.state();
        st.vms
            .values()
            .filter(|v| v.config.get("tags").is_some_and(|t| t.contains("lab-lab")))
            .map(|v| (v.config["name"].clone(), v.snapshots.get("start").map(|s| s.snaptime)))
            .collect()
    };
    // A run where tasks fail (snapshots among them), then one that finishes the lab.
    sim.set_faults("task_fail=0.3".parse().unwrap());
    let _ = stand(d, &["up", "lab.rhai", "-q"], &env);
    sim.set_faults(stand::sim::FaultSpec::default());
    let o = stand(d, &["up", "lab.rhai", "-q"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(with_start(&sim).values().all(Option::is_some), "every VM has its baseline: {:?}", with_start(&sim));

    // Remove some baselines, as a broken run leaves VMs without them.
    let before = with_start(&sim);
    assert_eq!(before.len(), 6, "{before:?}");
    {
        let mut st = sim.state();
        for v in st.vms.values_mut().filter(|v| v.config.get("name").is_some_and(|n| n.ends_with("-petrova"))) {
            v.snapshots.clear();
            v.config.remove("parent");
        }
    }
    let missing: Vec<String> = with_start(&sim).into_iter().filter(|(_, t)| t.is_none()).map(|(n, _)| n).collect();
    assert_eq!(missing.len(), 3, "{missing:?}");

    let o = stand(d, &["plan", "lab.rhai"], &env);
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    for name in &missing {
        assert!(
            shown.lines().any(|l| l.contains(name.as_str()) && l.contains("missing snapshot 'start' taken")),
            "{shown}"
        );
    }
    assert_eq!(shown.matches("missing snapshot").count(), 3, "only those: {shown}");
    let o = stand(d, &["up", "lab.rhai"], &env);
    assert!(o.status.success() && text(&o).contains("3 snapshots"), "{}", text(&o));
    let after = with_start(&sim);
    for (name, taken) in &after {
        assert!(taken.is_some(), "{name} has its baseline");
        if !missing.contains(name) {
            assert_eq!(taken, &before[name], "{name}'s baseline was not taken again");
        }
    }
    let o = stand(d, &["up", "lab.rhai"], &env);
    assert!(text(&o).contains("nothing to do"), "{}", text(&o));
}
