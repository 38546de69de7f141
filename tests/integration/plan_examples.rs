//! Scripts become the plans an instructor expects: deploy-stand's three examples, placement,
//! private networks, the stdlib, and precise errors for bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use stand::plan::{Plan, Snapshot};
use stand::script::{RunOptions, ScriptError, run_file};
use stand::sim::{DEFAULT_FIXTURE, Fixture, Sim, SimOptions};

/// A snapshot of the cluster of a fixture.
async fn snapshot_of(fixture: &str) -> Arc<Snapshot> {
    let sim = Sim::new(&Fixture::parse(fixture, "test.yaml").unwrap(), SimOptions::default());
    Arc::new(Snapshot::take(&sim.session("root@pam")).await.unwrap())
}

async fn default_snapshot() -> Arc<Snapshot> {
    snapshot_of(DEFAULT_FIXTURE).await
}

/// Writes `files` into a temporary folder and runs its `main.rhai` (or `script`).
fn plan_files(
    snap: Arc<Snapshot>,
    files: &[(&str, &str)],
    script: &str,
    opts: RunOptions,
) -> Result<Plan, ScriptError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    run_file(&dir.path().join(script), snap, &opts).map(|o| o.plan)
}

fn plan_script(snap: Arc<Snapshot>, script: &str) -> Result<Plan, ScriptError> {
    plan_files(snap, &[("main.rhai", script)], "main.rhai", RunOptions::default())
}

fn ten_students() -> String {
    let mut s = "users:\n".to_string();
    for i in 1..=10 {
        s.push_str(&format!("  - student{i}@pve\n"));
    }
    s
}

/// Runs a deploy-stand config unchanged through the `legacy` stdlib module.
fn legacy(snap: Arc<Snapshot>, config: &str) -> Plan {
    let users = ten_students();
    let files = [
        ("deployment_config.yml", config),
        ("users_list.yml", users.as_str()),
        ("main.rhai", "import \"legacy\" as legacy;\nlegacy::deploy(\"deployment_config.yml\", \"users_list.yml\");\n"),
    ];
    plan_files(snap, &files, "main.rhai", RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Every stand is on one node, and the stands are spread evenly.
fn assert_one_node_per_stand_and_balanced(plan: &Plan) {
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &plan.users {
        let nodes: BTreeSet<&str> = plan.vms.iter().filter(|v| v.user == u.userid).map(|v| v.node.as_str()).collect();
        assert_eq!(nodes.len(), 1, "{}'s stand is on one node", u.userid);
        *per_node.entry(nodes.into_iter().next().unwrap()).or_default() += 1;
    }
    let (min, max) = (per_node.values().min().unwrap(), per_node.values().max().unwrap());
    assert!(max - min <= 1, "balanced: {per_node:?}");
    assert_eq!(per_node.len(), 3, "all three nodes used: {per_node:?}");
}

/// The private bridges of each user; no bridge (node, iface) belongs to two users or aliases.
fn assert_private_bridges(plan: &Plan, per_user: usize) {
    let mut seen = BTreeSet::new();
    for b in plan.bridges.iter().filter(|b| b.owner.is_some()) {
        assert!(seen.insert((b.node.clone(), b.iface.clone())), "{}/{} is shared", b.node, b.iface);
        assert!(b.iface.len() <= 15, "interface names fit the kernel's limit");
    }
    for u in &plan.users {
        let n = plan.bridges.iter().filter(|b| b.owner.as_deref() == Some(&u.userid)).count();
        assert_eq!(n, per_user, "{} has {per_user} private bridges", u.userid);
    }
}

const EXAMPLE_1: &str = "
machines:
  - device_type: linux
    name: student-vm
    template_node: pve1
    template_vmid: 200
    networks:
      - bridge: vmbr0
";

const EXAMPLE_2: &str = "
machines:
  - device_type: ecorouter
    name: router
    template_node: pve1
    template_vmid: 100
    networks:
      - bridge: vmbr0      # Интернет
      - bridge: lan        # Внутренняя сеть
  - device_type: linux
    name: host1
    template_node: pve1
    template_vmid: 101
    networks:
      - bridge: lan
  - device_type: linux
    name: host2
    template_node: pve1
    template_vmid: 101
    networks:
      - bridge: lan
";

const EXAMPLE_3: &str = "
machines:
  - device_type: ecorouter
    name: gateway
    template_node: pve1
    template_vmid: 100
    networks:
      - bridge: vmbr0      # WAN (интернет)
      - bridge: dmz        # DMZ сеть
      - bridge: lan        # LAN сеть
  - device_type: linux
    name: web-server
    template_node: pve1
    template_vmid: 102
    networks:
      - bridge: dmz
  - device_type: linux
    name: client
    template_node: pve1
    template_vmid: 101
    networks:
      - bridge: lan
";

#[tokio::test]
async fn seed_example_1_one_linux_vm_per_student_on_the_uplink() {
    let fixture = DEFAULT_FIXTURE.replace(
        "  - { vmid: 103,",
        "  - { vmid: 200, name: student-base, node: pve1, storage: nfs-shared, memory: 1024, cores: 1, disk_gib: 8, nets: [\"virtio,bridge=vmbr0\"] }\n  - { vmid: 103,",
    );
    let plan = legacy(snapshot_of(&fixture).await, EXAMPLE_1);
    assert_eq!((plan.users.len(), plan.vms.len(), plan.bridges.len()), (10, 10, 0));
    for v in &plan.vms {
        assert_eq!(v.template, 200);
        assert_eq!(v.nets, vec![Some("virtio,bridge=vmbr0,firewall=1".to_string())]);
        assert_eq!(v.name, format!("student-vm-{}", v.user.trim_end_matches("@pve")));
    }
    assert_one_node_per_stand_and_balanced(&plan);
    let passwords: BTreeSet<_> = plan.users.iter().map(|u| u.password.clone().unwrap()).collect();
    assert_eq!(passwords.len(), 10, "every new student gets their own password");
}

#[tokio::test]
async fn seed_example_2_router_and_two_hosts_on_a_private_lan() {
    let plan = legacy(default_snapshot().await, EXAMPLE_2);
    assert_eq!((plan.users.len(), plan.vms.len()), (10, 30));
    assert_private_bridges(&plan, 1);
    let mut macs = BTreeSet::new();
    for u in &plan.users {
        let lan = plan.bridges.iter().find(|b| b.owner.as_deref() == Some(&u.userid)).unwrap();
        let vm = |n: &str| plan.vms.iter().find(|v| v.user == u.userid && v.spec_name == n).unwrap();
        let router: Vec<String> = vm("router").nets.iter().map(|n| n.clone().unwrap()).collect();
        assert_eq!(router.len(), 3, "management port + the two networks");
        assert!(router[0].starts_with("vmxnet3=1C:87:76:40:") && router[0].ends_with(",bridge=vmbr0,link_down=1"));
        assert!(router[1].ends_with(",bridge=vmbr0"));
        assert!(router[2].ends_with(&format!(",bridge={}", lan.iface)));
        for nic in &router {
            assert!(macs.insert(nic[8..25].to_string()), "MACs are unique in the cluster");
        }
        for host in ["host1", "host2"] {
            assert_eq!(vm(host).nets, vec![Some(format!("virtio,bridge={},firewall=1", lan.iface))]);
        }
    }
    assert_one_node_per_stand_and_balanced(&plan);
}

#[tokio::test]
async fn seed_example_3_dmz_and_lan_per_student() {
    let plan = legacy(default_snapshot().await, EXAMPLE_3);
    assert_eq!((plan.users.len(), plan.vms.len()), (10, 30));
    assert_private_bridges(&plan, 2);
    for u in &plan.users {
        let bridge = |alias: &str| {
            plan.bridges
                .iter()
                .find(|b| b.owner.as_deref() == Some(&u.userid) && b.alias.as_deref() == Some(alias))
                .unwrap()
                .iface
                .clone()
        };
        let vm = |n: &str| plan.vms.iter().find(|v| v.user == u.userid && v.spec_name == n).unwrap();
        let gw = &vm("gateway").nets;
        assert_eq!(gw.len(), 4);
        assert!(gw[2].as_ref().unwrap().ends_with(&format!("bridge={}", bridge("dmz"))));
        assert!(gw[3].as_ref().unwrap().ends_with(&format!("bridge={}", bridge("lan"))));
        assert_eq!(
            vm("web-server").nets[0].as_deref(),
            Some(format!("virtio,bridge={},firewall=1", bridge("dmz")).as_str())
        );
        assert_eq!(
            vm("client").nets[0].as_deref(),
            Some(format!("virtio,bridge={},firewall=1", bridge("lan")).as_str())
        );
        assert_eq!(vm("client").pool, u.pool);
    }
    assert_one_node_per_stand_and_balanced(&plan);
}

#[tokio::test]
async fn a_nearly_full_node_gets_fewer_stands_and_a_full_cluster_is_a_clear_error() {
    let fixture = DEFAULT_FIXTURE.replace(
        "users:\n",
        "vms:\n  - { vmid: 500, name: big, node: pve1, storage: local-lvm, memory: 57344, running: true }\nusers:\n",
    );
    let snap = snapshot_of(&fixture).await;
    let script = "for i in 1..=12 { let u = create_user(`s${i}@pve`); place_balanced(u);
        clone(u, #{ template: \"debian-12\", name: \"a\", memory: 2048 }); }";
    let plan = plan_script(snap.clone(), script).unwrap();
    let on = |n: &str| plan.vms.iter().filter(|v| v.node == n).count();
    assert!(
        on("pve1") < on("pve2") && on("pve1") < on("pve3"),
        "pve1 {} pve2 {} pve3 {}",
        on("pve1"),
        on("pve2"),
        on("pve3")
    );

    let e = plan_script(
        snap,
        "for i in 1..=200 { let u = create_user(`s${i}@pve`); place_balanced(u);
        clone(u, #{ template: \"debian-12\", name: \"a\", memory: 4096 }); }",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("main.rhai:2"), "{e}");
    assert!(e.contains("memory"), "names the shortfall: {e}");
}

#[tokio::test]
async fn aliases_never_share_a_bridge_and_vlans_tag_the_nic() {
    let snap = default_snapshot().await;
    let plan = plan_script(
        snap,
        "let a = create_user(\"a@pve\"); place(a, \"pve2\"); let b = create_user(\"b@pve\"); place(b, \"pve2\");
         let la = alias(a, \"lan\"); let da = alias(a, \"dmz\"); let lb = alias(b, \"lan\");
         if la == da || la == lb || da == lb { throw `shared: ${la} ${da} ${lb}`; }
         if alias(a, \"lan\") != la { throw \"an alias is stable\"; }
         let hq = alias(b, \"hq.100\");
         let vm = clone(b, #{ template: \"debian-12\", name: \"r\", nets: [hq, lb] });
         if vm.node != \"pve2\" || vm.nets.len() != 2 { throw `handle: ${vm}`; }",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ifaces: BTreeSet<_> = plan.bridges.iter().map(|b| b.iface.clone()).collect();
    assert_eq!(ifaces.len(), plan.bridges.len());
    let vlan = plan.bridges.iter().find(|b| b.alias.as_deref() == Some("hq")).unwrap();
    assert!(vlan.vlan_aware);
    let nic = plan.vms[0].nets[0].clone().unwrap();
    assert_eq!(nic, format!("virtio,bridge={},firewall=1,tag=100", vlan.iface));
}

#[tokio::test]
async fn bad_scripts_say_where_and_what_to_do() {
    let snap = default_snapshot().await;
    let err = |s: &str| plan_script(snap.clone(), s).unwrap_err().to_string();

    let e = err("let u = create_user(\"a@pve\");\nclone(u, #{ tempalte: 100 });");
    assert!(e.contains("main.rhai:2:") && e.contains("tempalte"), "{e}");
    assert!(e.contains("template, name, device, nets"), "lists the valid keys: {e}");

    let e = err("let x = 1;\nlet y = ;\n");
    assert!(e.contains("main.rhai:2:9") && e.contains("let y = ;"), "line, column and the line itself: {e}");

    let e = err("let n = 0;\nloop { n += 1; }");
    assert!(e.contains("ran too long") && e.contains("main.rhai:2"), "a runaway script stops: {e}");

    let e = err("create_user(\"no-realm\");");
    assert!(e.contains("name@realm"), "{e}");

    let e = err("let u = create_user(\"a@pve\");\nclone(u, #{ template: \"windows\", name: \"w\" });");
    assert!(e.contains("templates: 100 ecorouter"), "lists the templates there are: {e}");
}

#[tokio::test]
async fn bad_yaml_and_bad_user_lists_name_the_file_and_line() {
    let snap = default_snapshot().await;
    let run = |files: &[(&str, &str)]| {
        plan_files(snap.clone(), files, "main.rhai", RunOptions::default()).unwrap_err().to_string()
    };
    let e = run(&[("main.rhai", "let c = yaml(\"cfg.yml\");"), ("cfg.yml", "machines:\n  - name: [unclosed\n")]);
    assert!(e.contains("cfg.yml: did not find expected ',' or ']' at line 3 column 1"), "{e}");

    let e = run(&[("main.rhai", "for u in users(\"s.txt\") { create_user(u); }"), ("s.txt", "a@pve\nbob\n")]);
    assert!(e.contains("s.txt:2: 'bob' is not a Proxmox userid"), "{e}");
    assert!(e.contains("name@realm"), "{e}");

    let e = run(&[("main.rhai", "for u in users(\"s.txt\") { create_user(u); }"), ("s.txt", "a@pve\na@pve\n")]);
    assert!(e.contains("listed twice"), "{e}");

    let e = run(&[
        ("main.rhai", "import \"legacy\" as l; l::deploy(\"d.yml\", \"u.yml\");"),
        ("d.yml", "machines:\n  - name: r\n    networks: []\n"),
        ("u.yml", "users: [a@pve]\n"),
    ]);
    assert!(e.contains("machine 'r' has no template_vmid"), "{e}");
}

#[tokio::test]
async fn every_stdlib_module_plans_on_the_default_cluster() {
    let snap = default_snapshot().await;
    let cases = [
        ("single", "import \"single\" as m; m::deploy([\"a@pve\", \"b@pve\"], #{ template: \"debian-12\" });"),
        ("router_lan", "import \"router_lan\" as m; m::deploy([\"a@pve\", \"b@pve\"], #{ hosts: 2 });"),
        ("dmz", "import \"dmz\" as m; m::deploy([\"a@pve\", \"b@pve\"], #{});"),
        ("demo_exam", "import \"demo_exam\" as m; m::deploy([\"a@pve\", \"b@pve\"], #{});"),
    ];
    for (module, script) in cases {
        let plan = plan_script(snap.clone(), script).unwrap_or_else(|e| panic!("{module}: {e}"));
        assert_eq!(plan.users.len(), 2, "{module}");
        assert!(!plan.vms.is_empty(), "{module}");
    }
    for lab in ["lab1.rhai", "lab2.rhai", "lab3.rhai"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(lab);
        let plan = run_file(&path, snap.clone(), &RunOptions::default()).unwrap_or_else(|e| panic!("{lab}: {e}"));
        assert_eq!(plan.plan.users.len(), 12, "{lab}");
    }
}
