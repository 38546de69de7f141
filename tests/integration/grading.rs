//! `stand check`: a class graded through the guest agent, over HTTPS and on `--sim`.

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::{Value, json};
use stand::pve::{Method, Params};
use stand::sim::{Fixture, Identity, Sim, SimOptions};

use crate::common::{assert_log_matches_schema, stand, text, token_env};

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

const STUDENTS: [&str; 12] = [
    "иванов@pve",
    "петрова@pve",
    "sidorov@pve",
    "kozlova@pve",
    "smirnov@pve",
    "popova@pve",
    "volkov@pve",
    "lebedeva@pve",
    "novikov@pve",
    "morozova@pve",
    "orlov@pve",
    "zaitseva@pve",
];

/// Each stand: `web` from a template with the agent, `pc` from one without.
const LAB: &str = r#"
for u in STUDENTS {
    let user = create_user(u);
    place_balanced(user);
    let lan = alias(user, "lan");
    clone(user, #{ template: "debian-12", name: "web", nets: [lan], memory: 512 });
    clone(user, #{ template: "no-agent", name: "pc", nets: [lan], memory: 512 });
}

fn check(stand) {
    let web = stand.vm("web");
    grade("hostname", 1, hostname(web) == "web", "write web into /etc/hostname");
    let nginx = exec(web, "grep -q 'listen 80' /etc/nginx/sites-enabled/default");
    grade("nginx site", 2, nginx.code == 0, "enable the default site");
    let report = exec(web, ["test", "-f", "/root/report.txt"]).code == 0 && read_file(web, "/root/report.txt").contains("done");
    grade("report", 1.5, report, "write done into /root/report.txt");
    grade("pc reachable", 1, agent_ok(stand.vm("pc")), "install qemu-guest-agent on pc");
}
"#;

/// The default cluster plus a template whose guest has no agent.
fn fixture() -> Fixture {
    let mut f = Fixture::default_cluster();
    let mut t = f.templates.iter().find(|t| t.name == "debian-12").unwrap().clone();
    (t.vmid, t.name, t.agent, t.guest) = (104, "no-agent".into(), false, None);
    f.templates.push(t);
    f
}

fn call(sim: &Sim, method: Method, path: &str, params: &[(&str, &str)]) -> Value {
    let params: Params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    sim.handle(Some(&Identity::user("root@pam")), method, path, &params)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .data
}

/// `(node, vmid)` of a student's VM.
fn vm_of(sim: &Sim, user: &str, name: &str) -> (String, u32) {
    let st = sim.state();
    let (id, vm) = st
        .vms
        .iter()
        .find(|(_, v)| {
            v.config.get("description").is_some_and(|d| {
                let words: Vec<&str> = d.split_whitespace().collect();
                words.contains(&format!("user={user}").as_str()) && words.contains(&format!("name={name}").as_str())
            })
        })
        .unwrap_or_else(|| panic!("{user}'s {name}"));
    (vm.node.clone(), *id)
}

/// What student `i` did: every other one set the hostname, every third the nginx site,
/// every fourth the report.
fn work(i: usize) -> (bool, bool, bool) {
    (i.is_multiple_of(2), i.is_multiple_of(3), i.is_multiple_of(4))
}

#[test]
fn a_class_of_twelve_is_graded_exactly_only_agent_calls_reach_the_cluster_and_runs_are_kept() {
    let sim = Sim::new(&fixture(), SimOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    let env = token_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list: Vec<String> = STUDENTS.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(d.join("web.rhai"), format!("const STUDENTS = [{}];\n{LAB}", list.join(", "))).unwrap();
    let o = stand(d, &["up", "web.rhai", "-q"], &env);
    assert!(o.status.success(), "{}", text(&o));

    // The students' work, written into their guests through the agent API.
    for (i, user) in STUDENTS.iter().enumerate() {
        let (node, vmid) = vm_of(&sim, user, "web");
        let path = |p: &str| format!("/nodes/{node}/qemu/{vmid}/agent/{p}");
        let (host, nginx, report) = work(i);
        if host {
            call(&sim, Method::Post, &path("file-write"), &[("file", "/etc/hostname"), ("content", "web\n")]);
        }
        if nginx {
            let conf = "server {\n    listen 80 default_server;\n}\n";
            call(
                &sim,
                Method::Post,
                &path("file-write"),
                &[("file", "/etc/nginx/sites-enabled/default"), ("content", conf)],
            );
        }
        if report {
            call(&sim, Method::Post, &path("file-write"), &[("file", "/root/report.txt"), ("content", "all done\n")]);
        }
    }
    // popova's web server is stopped: her stand cannot be checked.
    let (node, vmid) = vm_of(&sim, "popova@pve", "web");
    call(&sim, Method::Post, &format!("/nodes/{node}/qemu/{vmid}/status/stop"), &[]);
    assert!(!sim.state().vms[&vmid].running);

    let log = d.join("requests.jsonl");
    sim.log_requests_to(&log).unwrap();
    let db = d.join("grades.db");
    let db_arg = db.to_str().unwrap();
    let o = stand(d, &["check", "web.rhai", "--csv", "grades.csv", "--db", db_arg, "--output", "json"], &env);
    assert_eq!(o.status.code(), Some(3), "one stand could not be checked: {}", text(&o));
    let sheet = json_of(&o);
    assert_eq!(
        sheet["criteria"],
        json!([
            { "title": "hostname", "points": 1.0 }, { "title": "nginx site", "points": 2.0 },
            { "title": "report", "points": 1.5 }, { "title": "pc reachable", "points": 1.0 }
        ])
    );
    let rows: BTreeMap<String, Value> = sheet["stands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    assert_eq!(rows.len(), 12);
    for (i, user) in STUDENTS.iter().enumerate() {
        let row = &rows[*user];
        let passed: Vec<bool> =
            row["marks"].as_array().unwrap().iter().map(|m| m["passed"].as_bool().unwrap()).collect();
        assert_eq!(row["max"], json!(5.5), "{user}");
        if *user == "popova@pve" {
            assert_eq!(row["checked"], json!(false));
            let error = row["error"].as_str().unwrap();
            assert!(error.contains(&format!("VM {vmid} is not running")) && error.contains("web.rhai:"), "{error}");
            assert_eq!(passed, [false; 4]);
            assert!(row["marks"][0]["reason"].as_str().unwrap().contains("is not running"));
            continue;
        }
        let (host, nginx, report) = work(i);
        assert_eq!(row["checked"], json!(true), "{user}: {row}");
        assert_eq!(passed, [host, nginx, report, false], "{user}");
        let total = f64::from(u8::from(host)) + 2.0 * f64::from(u8::from(nginx)) + 1.5 * f64::from(u8::from(report));
        assert_eq!(row["total"].as_f64(), Some(total), "{user}");
        let hint = &row["marks"][3]["hint"];
        assert_eq!(hint, "install qemu-guest-agent on pc", "a failed criterion carries its hint");
    }

    // The CSV is what a gradebook imports: a header, then one line per student.
    let mut csv = csv::Reader::from_path(d.join("grades.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, ["user", "total", "max", "hostname", "nginx site", "report", "pc reachable"]);
    let lines: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(lines.len(), 12);
    let ivanov = lines.iter().find(|l| &l[0] == "иванов@pve").unwrap();
    assert_eq!(ivanov.iter().collect::<Vec<_>>(), ["иванов@pve", "4.5", "5.5", "1", "2", "1.5", "0"]);

    // Grading only reads: every write that reached the cluster is a guest agent call.
    let requests: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let writes: Vec<&Value> = requests.iter().filter(|r| r["method"] != "GET").collect();
    assert!(!writes.is_empty());
    for w in &writes {
        let path = w["path"].as_str().unwrap();
        assert!(
            path.contains("/agent/exec") || path.ends_with("/agent/ping"),
            "a write that is not an agent call: {w}"
        );
    }
    assert!(requests.iter().any(|r| r["path"].as_str().unwrap().ends_with("/agent/exec")
        && r["params"]["command"] == json!(["grep", "-q", "listen 80", "/etc/nginx/sites-enabled/default"])));
    assert_log_matches_schema(&log);

    // A second run is kept too; the history shows a student's progress run by run.
    call(
        &sim,
        Method::Post,
        &{
            let (node, vmid) = vm_of(&sim, "petrova@pve".replace("petrova", "петрова").as_str(), "web");
            format!("/nodes/{node}/qemu/{vmid}/agent/file-write")
        },
        &[("file", "/etc/hostname"), ("content", "web\n")],
    );
    let o = stand(d, &["check", "web.rhai", "--db", db_arg, "--only", "петрова@pve"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = stand(d, &["check", "web", "--history", "--db", db_arg, "--only", "петрова@pve", "--output", "json"], &env);
    let runs = json_of(&o)["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!((runs[0]["total"].as_f64(), runs[1]["total"].as_f64()), (Some(0.0), Some(1.0)));
    assert_eq!(runs[1]["passed"], json!(["hostname"]));
    let o = stand(d, &["check", "web", "--history", "--db", db_arg], &env);
    assert!(o.status.success() && text(&o).contains("петрова@pve"), "{}", text(&o));
}

#[test]
fn on_the_builtin_simulator_clones_inherit_their_templates_guest_and_a_script_without_check_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("lab.rhai"),
        "for u in [\"a@pve\", \"b@pve\"] { let user = create_user(u); place_balanced(user);\n\
         clone(user, #{ template: \"debian-12\", name: \"pc\", nets: [alias(user, \"lan\")], memory: 512 }); }\n\
         fn check(stand) {\n  grade(\"debian inside\", 1, read_file(stand.vm(\"pc\"), \"/etc/os-release\").contains(\"Debian\"));\n  \
         grade(\"renamed\", 1, exec(stand.vm(\"pc\"), \"hostname\").out == \"pc\\n\");\n}\n",
    )
    .unwrap();
    let sim_args = ["--sim", "--sim-time-scale", "0"];
    let o = stand(d, &[&["up", "lab.rhai", "-q"][..], &sim_args].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &[&["check", "lab.rhai", "--db", "g.db"][..], &sim_args].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("a@pve") && out.contains("1/2") && out.contains("2 of 2 stands checked"), "{out}");
    std::fs::write(d.join("plain.rhai"), "create_user(\"a@pve\");").unwrap();
    let o = stand(d, &[&["check", "plain.rhai"][..], &sim_args].concat(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no `fn check(stand)"), "{}", text(&o));
    let o = stand(d, &[&["check", "lab.rhai", "--only", "c@pve"][..], &sim_args].concat(), &[]);
    assert!(!o.status.success() && text(&o).contains("has no student 'c@pve'"), "{}", text(&o));
}

#[test]
fn pve9_asks_guest_agent_privileges_and_pve8_asks_vm_monitor() {
    for (version, allowed_role, denied_role) in
        [("9.0.3", "PVEVMAdmin", "PVEVMUser"), ("8.4.1", "PVEVMAdmin", "PVEVMUser")]
    {
        let mut fixture = fixture();
        fixture.version = version.into();
        let mut vm = fixture.templates.iter().find(|t| t.name == "debian-12").unwrap().clone();
        (vm.vmid, vm.name, vm.running) = (500, "srv".into(), true);
        fixture.vms.push(vm);
        let sim = Sim::new(&fixture, SimOptions::default());
        call(&sim, Method::Post, "/access/users", &[("userid", "grader@pve")]);
        let who = Identity::user("grader@pve");
        let exec = |sim: &Sim| {
            let params: Params = [("command".to_string(), "hostname".to_string())].into();
            sim.handle(Some(&who), Method::Post, "/nodes/pve1/qemu/500/agent/exec", &params)
        };
        call(
            &sim,
            Method::Put,
            "/access/acl",
            &[("path", "/vms/500"), ("roles", denied_role), ("users", "grader@pve")],
        );
        let refused = exec(&sim).err().unwrap();
        let needed = if version.starts_with('9') { "VM.GuestAgent.Unrestricted" } else { "VM.Monitor" };
        assert_eq!(refused.status, 403, "{version}");
        assert!(refused.message.contains(needed), "{version}: {}", refused.message);
        call(
            &sim,
            Method::Put,
            "/access/acl",
            &[("path", "/vms/500"), ("roles", allowed_role), ("users", "grader@pve")],
        );
        let pid = exec(&sim).unwrap().data["pid"].as_u64().unwrap();
        let status = sim
            .handle(
                Some(&who),
                Method::Get,
                "/nodes/pve1/qemu/500/agent/exec-status",
                &[("pid".to_string(), pid.to_string())].into(),
            )
            .unwrap()
            .data;
        assert_eq!(status, json!({ "exited": 1, "exitcode": 0, "out-data": "debian\n" }), "{version}");
    }
}

/// A read that fails (a file the student has not written yet) fails the criteria it feeds,
/// with the reason, and every later criterion is still graded: the sheet is out of 7, not
/// of what came before the failure, and the history keeps why.
#[test]
fn a_failed_read_fails_only_its_criterion_with_the_reason_and_the_sheet_lists_every_criterion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("lab.rhai"),
        "for u in [\"a@pve\", \"b@pve\"] { let user = create_user(u); place_balanced(user);\n\
         clone(user, #{ template: \"debian-12\", name: \"pc\", memory: 512 }); }\n\
         fn check(stand) {\n\
           let pc = stand.vm(\"pc\");\n\
           grade(\"host named\", 1, hostname(pc) == \"debian\");\n\
           grade(\"report written\", 2, read_file(pc, \"/root/report.txt\").contains(\"done\"), \"write /root/report.txt\");\n\
           grade(\"debian inside\", 2, read_file(pc, \"/etc/os-release\").contains(\"Debian\"));\n\
           grade(\"later\", 2, true);\n}\n",
    )
    .unwrap();
    let sim_args = ["--sim", "--sim-time-scale", "0"];
    let o = stand(d, &[&["up", "lab.rhai", "-q"][..], &sim_args].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &[&["check", "lab.rhai", "--db", "g.db", "--output", "json"][..], &sim_args].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "the guests answered (the file is missing): checked: {}", text(&o));
    let sheet = json_of(&o);
    let titles: Vec<&str> =
        sheet["criteria"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["host named", "report written", "debian inside", "later"]);
    for row in sheet["stands"].as_array().unwrap() {
        assert_eq!((row["total"].as_f64(), row["max"].as_f64()), (Some(5.0), Some(7.0)), "{row}");
        let marks = row["marks"].as_array().unwrap();
        let passed: Vec<bool> = marks.iter().map(|m| m["passed"].as_bool().unwrap()).collect();
        assert_eq!(passed, [true, false, true, true]);
        let reason = marks[1]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("read_file /root/report.txt on pc: ") && reason.ends_with("(lab.rhai:6)"),
            "{reason}"
        );
        assert!(marks[2].get("reason").is_none(), "a later read that works is graded as usual: {row}");
        assert!(marks[1].get("unreached").is_none() && row["checked"] == true && row.get("error").is_none(), "{row}");
    }
    let o = stand(d, &["check", "lab", "--history", "--db", "g.db", "--output", "json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = json_of(&o);
    let run = &runs["runs"].as_array().unwrap()[0];
    assert_eq!((run["total"].as_f64(), run["max"].as_f64()), (Some(5.0), Some(7.0)));
    assert_eq!(run["failed"], json!(["report written"]));
    let why = run["reasons"]["report written"].as_str().unwrap();
    assert!(why.contains("/root/report.txt") && why.contains("No such file"), "the history keeps why: {run}");
    let o = stand(d, &["check", "lab", "--history", "--db", "g.db"], &[]);
    assert!(text(&o).contains("report written (read_file /root/report.txt on pc:"), "{}", text(&o));

    // A guest that cannot be reached is another matter: the stand is not checked whole.
    let o = stand(d, &[&["power", "off", "lab", "--only", "a@pve"][..], &sim_args].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stand(d, &[&["check", "lab.rhai", "--db", "g.db", "--output", "json"][..], &sim_args].concat(), &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let sheet = json_of(&o);
    let a = sheet["stands"].as_array().unwrap().iter().find(|r| r["user"] == "a@pve").unwrap().clone();
    assert_eq!(
        (a["checked"].as_bool(), a["total"].as_f64(), a["max"].as_f64()),
        (Some(false), Some(0.0), Some(7.0)),
        "{a}"
    );
    assert!(a["error"].as_str().unwrap().contains("is not running (lab.rhai:5)"), "{a}");
    assert_eq!(a["marks"][0]["unreached"], json!(true));
}
