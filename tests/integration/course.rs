//! A week of a course after `up`: baseline snapshots, reset, power, snapshots, over HTTPS
//! against the served simulator (its state read directly) and on `--sim`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

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
    ] {
        let faulty = stand(d, &[&args[..], &["--sim", "--output", "json"], &faults[..]].concat(), &[]);
        assert!(matches!(faulty.status.code(), Some(0 | 3)), "{what}: {}", text(&faulty));
        let again = stand(d, &[&args[..], &["--sim", "--output", "json"]].concat(), &[]);
        assert!(again.status.success(), "{what} converges: {}", text(&again));
        assert_eq!(json(&again)["failures"], serde_json::json!([]), "{what}");
    }
}
