use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stand::apply::{ApplyOptions, run};
use stand::plan::Snapshot;
use stand::plan::templates::{self, Catalog, SyncRequest};
use stand::pve::{Pve, WaitPolicy};
use stand::sim::{FaultSpec, Fixture, Sim, SimOptions};

use super::common::{served_in_process, stand, text, token_env};

fn lab3() -> String {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab3.rhai")).display().to_string()
}

/// Every copy on the cluster: VMID → (node, original, template flag, disk).
fn copies(sim: &Sim) -> BTreeMap<u32, (String, u32, bool, String)> {
    let st = sim.state();
    st.vms
        .iter()
        .filter_map(|(id, vm)| {
            let desc = vm.config.get("description")?;
            let of = desc.split("template-of=").nth(1)?.split_whitespace().next()?.parse().ok()?;
            let disk = vm.config.get("scsi0").or_else(|| vm.config.get("virtio0")).cloned().unwrap_or_default();
            Some((*id, (vm.node.clone(), of, vm.config.contains_key("template"), disk)))
        })
        .collect()
}

#[test]
fn a_sync_puts_each_template_on_every_node_lab3_clones_from_them_and_prune_removes_only_unused_copies() {
    let (sim, _rt, server) = served_in_process();
    let env = token_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let originals: Vec<u32> = vec![100, 101, 102, 103];

    let out = stand(dir.path(), &["templates", "sync"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("12 copies made, 0 removed"), "{}", text(&out));
    let made = copies(&sim);
    assert_eq!(made.len(), 12);
    for of in &originals {
        let nodes: Vec<&str> = made.values().filter(|c| c.1 == *of).map(|c| c.0.as_str()).collect();
        assert_eq!(nodes, ["pve1", "pve2", "pve3"], "copies of {of}");
    }
    for (id, (_, _, template, disk)) in &made {
        assert!(template, "copy {id} is a template");
        assert!(
            disk.starts_with(&format!("local-lvm:base-{id}-disk-0")),
            "copy {id} on the node's own storage: {disk}"
        );
    }

    // A second sync does nothing (no write reaches the cluster).
    let writes = sim.stats().writes;
    let out = stand(dir.path(), &["templates", "sync"], &env);
    assert!(out.status.success());
    assert!(text(&out).contains("nothing to do; 12 copies already in place"), "{}", text(&out));
    assert_eq!(sim.stats().writes, writes);

    // lab3 clones each VM from the copy on its own node.
    let out = stand(dir.path(), &["up", &lab3(), "-q"], &env);
    assert!(out.status.success(), "{}", text(&out));
    {
        let st = sim.state();
        let lab_vms: Vec<_> = st.vms.iter().filter(|(id, _)| (3000..4000).contains(*id)).collect();
        assert_eq!(lab_vms.len(), 48);
        let mut used_nodes = std::collections::BTreeSet::new();
        for (id, vm) in lab_vms {
            let disk = vm.config.get("scsi0").or_else(|| vm.config.get("virtio0")).unwrap();
            let base: u32 = disk.split("base-").nth(1).unwrap().split('-').next().unwrap().parse().unwrap();
            let (node, _, _, _) = &made[&base];
            assert_eq!(*node, vm.node, "VM {id} is a linked clone of the copy on its own node ({disk})");
            assert!(disk.starts_with("local-lvm:"));
            used_nodes.insert(vm.node.clone());
        }
        assert_eq!(used_nodes.len(), 3);
    }
    let out = stand(dir.path(), &["plan", &lab3()], &env);
    assert!(text(&out).contains("no new linked clones") || !text(&out).contains("templates sync"), "{}", text(&out));

    // Prune keeps what linked clones use, and says so; after `down` it removes every copy
    // and nothing else.
    let out = stand(dir.path(), &["templates", "prune"], &env);
    assert!(out.status.success());
    assert!(text(&out).contains("is the base of linked clones"), "{}", text(&out));
    assert_eq!(copies(&sim).len(), 12);
    let out = stand(dir.path(), &["down", "--yes", "lab3", "-q"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let before: Vec<u32> = sim.state().vms.keys().copied().filter(|id| !made.contains_key(id)).collect();
    let out = stand(dir.path(), &["templates", "prune", "--output", "json"], &env);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["removed"], 12, "{doc}");
    assert!(copies(&sim).is_empty());
    let after: Vec<u32> = sim.state().vms.keys().copied().collect();
    assert_eq!(after, before, "only copies were removed");
    assert_eq!(after, originals);
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(100), ..WaitPolicy::default() },
        ..Default::default()
    }
}

async fn catalog(pve: &Arc<dyn Pve>) -> (Snapshot, Catalog) {
    let snap = Snapshot::take_all(pve).await.unwrap();
    let cat = Catalog::of(&snap);
    (snap, cat)
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_fails_half_way_is_removed_and_a_changed_original_is_refreshed_only_when_asked() {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions { seed: 7, ..SimOptions::default() });
    let pve: Arc<dyn Pve> = Arc::new(sim.client());
    let req = SyncRequest { names: vec!["debian-12".into()], first_vmid: 9000, ..Default::default() };

    // Every task fails: the clones that were made are removed again, nothing half-made stays.
    sim.set_faults(FaultSpec { task_fail: 1.0, ..FaultSpec::default() });
    let (snap, cat) = catalog(&pve).await;
    let plan = templates::sync(&snap, &cat, &req).unwrap();
    let report = run(pve.clone(), &plan.graph, &opts()).await;
    assert_eq!(report.failures().len(), 3);
    assert!(report.failures()[0].hint.contains("run `stand templates sync` again"), "{:?}", report.failures());
    assert!(copies(&sim).is_empty(), "{:?}", copies(&sim));

    // Without faults the same request converges; again, nothing to do.
    sim.set_faults(FaultSpec::default());
    let (snap, cat) = catalog(&pve).await;
    let report = run(pve.clone(), &templates::sync(&snap, &cat, &req).unwrap().graph, &opts()).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    assert_eq!(copies(&sim).len(), 3);
    let (snap, cat) = catalog(&pve).await;
    let again = templates::sync(&snap, &cat, &req).unwrap();
    assert!(again.graph.is_empty());
    assert_eq!(again.present, 3);

    // The original changes: the copies are outdated; sync keeps them unless --refresh.
    sim.state().vms.get_mut(&103).unwrap().config.insert("memory".into(), "2048".into());
    let (snap, cat) = catalog(&pve).await;
    let kept = templates::sync(&snap, &cat, &req).unwrap();
    assert!(kept.graph.is_empty());
    assert_eq!(kept.kept.len(), 3, "{:?}", kept.kept);
    let old: Vec<u32> = copies(&sim).keys().copied().collect();
    let refresh = templates::sync(&snap, &cat, &SyncRequest { refresh: true, ..req.clone() }).unwrap();
    let report = run(pve.clone(), &refresh.graph, &opts()).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    let new = copies(&sim);
    assert_eq!(new.len(), 3);
    assert!(new.keys().all(|id| !old.contains(id)), "fresh copies under new VMIDs: {new:?}");
    assert!(new.values().all(|c| c.2));
    let (snap, cat) = catalog(&pve).await;
    assert!(cat.copies.iter().all(|c| c.fresh));
    assert!(templates::sync(&snap, &cat, &req).unwrap().graph.is_empty());
}

/// The template of each planned VM of `script`: (VM name, node, template VMID).
fn planned_templates(dir: &Path, script: &str, env: &[(String, String)]) -> Vec<(String, String, u32)> {
    let path = dir.join("pick.rhai");
    std::fs::write(&path, script).unwrap();
    let out = stand(dir, &["plan", path.to_str().unwrap(), "--output", "json"], env);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["plan"]["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap().to_string();
            (name, v["node"].as_str().unwrap().to_string(), v["template"].as_u64().unwrap() as u32)
        })
        .collect()
}

#[test]
fn a_template_named_by_vmid_or_by_name_comes_from_its_up_to_date_copy_on_the_node_never_a_stale_one() {
    let (sim, _rt, server) = served_in_process();
    let env = token_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let out = stand(dir.path(), &["templates", "sync", "debian-12"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let copy_on: BTreeMap<String, u32> = copies(&sim).into_iter().map(|(id, c)| (c.0, id)).collect();
    assert_eq!(copy_on.len(), 3);
    // By VMID (as deploy-stand's files name them) and by name, one student per node.
    let script = r#"lab(#{ vmid_range: [5000, 5999] });
        for n in [1, 2, 3] {
            let u = create_user(`s${n}@pve`);
            place(u, `pve${n}`);
            clone(u, #{ template: 103, name: "by-id" });
            clone(u, #{ template: "debian-12", name: "by-name" });
        }"#;
    let picked = planned_templates(dir.path(), script, &env);
    assert_eq!(picked.len(), 6);
    for (name, node, template) in &picked {
        assert_eq!(*template, copy_on[node], "{name} on {node} clones the copy on {node}");
    }

    // The original changes: its copies are out of date, and no clone takes them.
    sim.state().vms.get_mut(&103).unwrap().config.insert("memory".into(), "4096".into());
    let picked = planned_templates(dir.path(), script, &env);
    assert!(picked.iter().all(|(_, _, t)| *t == 103), "{picked:?}");
}
