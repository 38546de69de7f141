//! Removals are an action graph: `stand plan --prune` and `stand down --dry-run` print the
//! very actions `up --prune` and `down` then run, as the cluster sees them through its API.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{served_in_process as served, stand, text, token_env};

/// The API request each removal action makes: `(method, path)`.
fn requests_of(actions: &serde_json::Value) -> BTreeSet<(String, String)> {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_string();
    actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a["action"].as_str().unwrap() {
            "destroy_vm" => ("DELETE".into(), format!("/nodes/{}/qemu/{}", s(a, "node"), a["vmid"])),
            "delete_bridge" => ("DELETE".into(), format!("/nodes/{}/network/{}", s(a, "node"), s(a, "iface"))),
            "reload_network" => ("PUT".into(), format!("/nodes/{}/network", s(a, "node"))),
            "delete_pool" => ("DELETE".into(), format!("/pools/{}", s(a, "poolid"))),
            "delete_user" => ("DELETE".into(), format!("/access/users/{}", s(a, "userid"))),
            "release_user" => ("PUT".into(), format!("/access/users/{}", s(a, "userid"))),
            "delete_group" => ("DELETE".into(), format!("/access/groups/{}", s(a, "groupid"))),
            other => panic!("unknown action {other}"),
        })
        .collect()
}

/// The writes the cluster received, minus task polling and stops before deletes.
fn writes_in(log: &Path) -> BTreeSet<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap().ends_with("/status/stop"))
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().trim_start_matches("/api2/json").to_string(),
            )
        })
        .collect()
}

fn lab(students: &[&str], shared: bool) -> String {
    let list = students.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    let nets = if shared { "[ensure_bridge(\"pve1\", \"vmbr61\"), alias(u, \"lan\")]" } else { "[alias(u, \"lan\")]" };
    format!(
        "for s in [{list}] {{ let u = create_user(s); place(u, \"pve1\");\n  clone(u, #{{ template: \"debian-12\", name: \"pc\", nets: {nets} }}); }}\n"
    )
}

#[test]
fn plan_prune_lists_exactly_what_up_prune_removes() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let script = dir.path().join("prn.rhai");
    std::fs::write(&script, lab(&["anna@pve", "boris@pve", "vera@pve"], true)).unwrap();
    let script = script.to_str().unwrap();
    let o = stand(dir.path(), &["up", script], &env);
    assert!(o.status.success(), "{}", text(&o));

    // Two students leave and the shared bridge is no longer wanted.
    std::fs::write(dir.path().join("prn.rhai"), lab(&["anna@pve"], false)).unwrap();
    let o = stand(dir.path(), &["plan", script, "--prune", "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let planned: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let expected = requests_of(&planned["prune"]);
    assert!(
        expected.contains(&("DELETE".into(), "/nodes/pve1/network/vmbr61".into())),
        "the shared bridge: {expected:?}"
    );
    assert!(expected.contains(&("DELETE".into(), "/access/users/boris@pve".into())), "{expected:?}");
    // The diff's deletions are the objects prune removes: one answer to "what of the lab is no
    // longer in the script".
    let deleted: BTreeSet<(String, String)> = planned["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "delete")
        .map(|c| {
            let id = c["id"].as_str().unwrap();
            let path = match c["object"].as_str().unwrap() {
                "vm" => format!("/nodes/pve1/qemu/{}", id.split(' ').next().unwrap()),
                "bridge" => format!("/nodes/{}", id.replacen('/', "/network/", 1)),
                "pool" => format!("/pools/{id}"),
                "user" => format!("/access/users/{id}"),
                other => panic!("unexpected deletion of a {other}"),
            };
            ("DELETE".to_string(), path)
        })
        .collect();
    let removed: BTreeSet<(String, String)> = expected.iter().filter(|(m, _)| m == "DELETE").cloned().collect();
    assert_eq!(deleted, removed, "the diff lists what prune removes");
    let text_plan = stand(dir.path(), &["plan", script, "--prune"], &env);
    let shown = String::from_utf8_lossy(&text_plan.stdout).to_string();
    assert!(shown.contains("- bridge pve1/vmbr61") && shown.contains("- user   vera@pve"), "{shown}");

    let log = dir.path().join("requests.jsonl");
    sim.log_requests_to(&log).unwrap();
    let o = stand(dir.path(), &["up", "--yes", script, "--prune"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let done = writes_in(&log);
    // anna's VM loses its net0 on vmbr61: that update is `up`'s, not a removal.
    let removals: BTreeSet<_> = done.into_iter().filter(|(m, p)| !(m == "PUT" && p.contains("/qemu/"))).collect();
    assert!(expected.len() >= 9, "VMs, bridges, reload, pools, users: {expected:?}");
    assert_eq!(removals, expected, "up --prune did exactly what plan --prune listed");
}

#[test]
fn down_dry_run_prints_the_actions_down_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    assert!(stand(dir.path(), &["up", lab1.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    let o = stand(dir.path(), &["down", "lab1", "--sim", "--dry-run", "--output", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let actions = v["actions"].as_array().unwrap();
    let kinds: BTreeSet<&str> = actions.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["delete_group", "delete_pool", "delete_user", "destroy_vm"]));
    // A pool waits for its VM: its step lists the VM's step.
    let pool = actions.iter().find(|a| a["action"] == "delete_pool").unwrap();
    let vm_ids: Vec<u64> =
        actions.iter().filter(|a| a["action"] == "destroy_vm").map(|a| a["id"].as_u64().unwrap()).collect();
    assert!(pool["after"].as_array().unwrap().iter().all(|d| vm_ids.contains(&d.as_u64().unwrap())), "{pool}");
    assert_eq!(pool["after"].as_array().unwrap().len(), 1, "{pool}");
    let o = stand(dir.path(), &["down", "--yes", "lab1", "--sim", "--output", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["removed"]["vms"], actions.iter().filter(|a| a["action"] == "destroy_vm").count());
    assert_eq!(v["converged"], true);
}

/// The write each deploy action makes: `(method, path)`.
fn deploy_requests(actions: &serde_json::Value) -> Vec<(String, String)> {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_string();
    let mut out: Vec<(String, String)> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let vm = &a["vm"];
            match a["action"].as_str().unwrap() {
                "create_group" => ("POST".into(), "/access/groups".into()),
                "create_user" => ("POST".into(), "/access/users".into()),
                "create_pool" => ("POST".into(), "/pools".into()),
                "set_acl" | "grant_bridge" => ("PUT".into(), "/access/acl".into()),
                "create_bridge" => ("POST".into(), format!("/nodes/{}/network", s(a, "node"))),
                "reload_network" => ("PUT".into(), format!("/nodes/{}/network", s(a, "node"))),
                "clone_vm" => {
                    ("POST".into(), format!("/nodes/{}/qemu/{}/clone", s(vm, "template_node"), vm["template"]))
                }
                "configure_vm" => ("PUT".into(), format!("/nodes/{}/qemu/{}/config", s(vm, "node"), vm["vmid"])),
                "start_vm" => ("POST".into(), format!("/nodes/{}/qemu/{}/status/start", s(vm, "node"), vm["vmid"])),
                "snapshot_vm" => ("POST".into(), format!("/nodes/{}/qemu/{}/snapshot", s(vm, "node"), vm["vmid"])),
                other => panic!("unexpected action {other}"),
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn plan_lists_exactly_the_writes_up_makes() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let lab3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai");
    let lab3 = lab3.to_str().unwrap();
    let o = stand(dir.path(), &["plan", lab3, "--output", "json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let planned: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let expected = deploy_requests(&planned["actions"]);
    assert_eq!(expected.iter().filter(|(_, p)| p.ends_with("/clone")).count(), 48);

    let log = dir.path().join("requests.jsonl");
    sim.log_requests_to(&log).unwrap();
    let o = stand(dir.path(), &["up", lab3], &env);
    assert!(o.status.success(), "{}", text(&o));
    let mut made: Vec<(String, String)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["method"] != "GET")
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().trim_start_matches("/api2/json").to_string(),
            )
        })
        .collect();
    made.sort();
    assert_eq!(made, expected, "up made exactly the writes plan listed, one per action");
    let again = stand(dir.path(), &["plan", lab3, "--output", "json"], &env);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["actions"], serde_json::json!([]), "a deployed lab plans no action");
}
