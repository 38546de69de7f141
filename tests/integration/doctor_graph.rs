//! `stand doctor`, `stand graph` and `stand completions` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stand::pve::PveExt;

use crate::common::stand;
use stand::sim::{Fixture, RunningServer, Sim, SimOptions};

fn checks(o: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    v["checks"].as_array().unwrap().clone()
}

fn row<'a>(checks: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no row {name}: {checks:#?}"))
}

fn served() -> (Sim, tokio::runtime::Runtime, RunningServer) {
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    (sim, rt, server)
}

fn env(url: &str, token: &str, fingerprint: &str) -> Vec<(String, String)> {
    vec![
        ("PVE_URL".into(), url.into()),
        ("PVE_TOKEN".into(), token.into()),
        ("PVE_FINGERPRINT".into(), fingerprint.into()),
    ]
}

fn lab3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab3.rhai")
}

#[test]
fn doctor_passes_on_sim_serve_and_names_a_missing_privilege_and_a_wrong_pin() {
    let (sim, rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let good = env(&server.url, &server.token, &server.fingerprint);
    let out = stand(dir.path(), &["doctor", lab3().to_str().unwrap(), "--output", "json"], &good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let all = checks(&out);
    // Everything passes; the default fixture's templates sit on shared NFS, so doctor says
    // what copies on every node would gain.
    assert!(all.iter().all(|c| c["verdict"] == "ok" || c["name"] == "template copies"), "{all:#?}");
    let copies = row(&all, "template copies");
    assert_eq!(copies["verdict"], "warn");
    assert!(copies["detail"].as_str().unwrap().contains("48 linked clones queue on shared storage nfs-shared"));
    assert_eq!(copies["fix"], "stand templates sync");
    assert!(row(&all, "TLS")["detail"].as_str().unwrap().contains("pinned"));
    assert!(row(&all, "lab")["detail"].as_str().unwrap().contains("48 VMs fit"));

    // Password login (ticket + CSRF) works for doctor as for every command.
    assert!(sim.set_password("root@pam", "Root-pass-1"));
    let password = vec![
        ("PVE_URL".to_string(), server.url.clone()),
        ("PVE_USER".to_string(), "root@pam".to_string()),
        ("PVE_PASSWORD".to_string(), "Root-pass-1".to_string()),
        ("PVE_FINGERPRINT".to_string(), server.fingerprint.clone()),
    ];
    let out = stand(dir.path(), &["doctor", "--output", "json"], &password);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(row(&checks(&out), "auth")["detail"], "password of root@pam");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Root-pass-1"));

    // A token of a user who may manage VMs but not bridges, users or pools.
    rt.block_on(async {
        let root = sim.session("root@pam");
        root.create_user("assistant@pve", None, None).await.unwrap();
        root.set_acl("/", "PVEVMAdmin", Some("assistant@pve"), None, false).await.unwrap();
    });
    let secret = sim.add_token("assistant@pve", "doctor", false).unwrap();
    let limited = env(&server.url, &format!("assistant@pve!doctor={secret}"), &server.fingerprint);
    let out = stand(dir.path(), &["doctor", "--output", "json"], &limited);
    assert_eq!(out.status.code(), Some(1), "a failed check is exit code 1");
    let all = checks(&out);
    let privileges = row(&all, "privileges");
    assert_eq!(privileges["verdict"], "fail");
    let missing = privileges["detail"].as_str().unwrap();
    assert!(missing.contains("Sys.Modify on /nodes") && missing.contains("User.Modify on /access"), "{missing}");
    assert!(!missing.contains("VM.Clone"), "granted privileges are not listed: {missing}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret), "the secret is never printed");

    // A change someone staged by hand is named, as `up` would refuse to apply over it.
    rt.block_on(async {
        let bridge = stand::pve::BridgeParams {
            iface: "vmbr77".into(),
            autostart: true,
            vlan_aware: false,
            ports: None,
            comments: Some("lab switch".into()),
        };
        sim.session("root@pam").create_bridge("pve2", &bridge).await.unwrap();
    });
    let all = checks(&stand(dir.path(), &["doctor", "--output", "json"], &good));
    let pending = row(&all, "pending network");
    assert_eq!(pending["verdict"], "warn");
    assert_eq!(pending["detail"], "changes waiting on pve2 (vmbr77)");

    let wrong = env(&server.url, &server.token, &("AA:".repeat(31) + "AA"));
    let out = stand(dir.path(), &["doctor", "--output", "json"], &wrong);
    assert_eq!(out.status.code(), Some(1));
    let all = checks(&out);
    let tls = row(&all, "TLS");
    assert_eq!(tls["verdict"], "fail");
    assert!(tls["fix"].as_str().unwrap().contains(&server.fingerprint), "the fix shows the fingerprint to pin: {tls}");
    server.shutdown();
}

/// A DOT file parses: balanced braces, every edge between declared nodes; rendered by
/// Graphviz when it is installed (`.ci/run` installs it).
fn assert_valid_dot(dot: &str) {
    assert!(dot.starts_with("graph \""));
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    let declared: Vec<&str> =
        dot.lines().filter(|l| l.contains(" [shape=")).map(|l| l.trim().split(' ').next().unwrap()).collect();
    for edge in dot.lines().filter(|l| l.contains(" -- ")) {
        let mut ends = edge.trim().split(" -- ");
        let (a, b) = (ends.next().unwrap(), ends.next().unwrap().split(' ').next().unwrap());
        assert!(declared.contains(&a) && declared.contains(&b), "edge {edge} between declared nodes");
    }
    if Command::new("dot").arg("-V").output().is_ok() {
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<svg"), "dot renders it");
    }
}

#[test]
fn graph_draws_the_seed_examples_as_dot_and_mermaid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), "users:\n  - student1@pve\n  - student2@pve\n").unwrap();
    let example3 = "machines:\n  - { device_type: ecorouter, name: gateway, template_node: pve1, template_vmid: 100, networks: [{bridge: vmbr0}, {bridge: dmz}, {bridge: lan}] }\n  - { device_type: linux, name: web-server, template_node: pve1, template_vmid: 102, networks: [{bridge: dmz}] }\n  - { device_type: linux, name: client, template_node: pve1, template_vmid: 101, networks: [{bridge: lan}] }\n";
    std::fs::write(dir.path().join("example3.yml"), example3).unwrap();
    let out = stand(dir.path(), &["graph", "--legacy", "example3.yml", "--users", "users.yml", "--sim"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert_valid_dot(&dot);
    assert!(dot.contains("label=\"dmz (vmbr1000)\"") && dot.contains("label=\"lan (vmbr1001)\""), "{dot}");
    assert!(
        dot.contains("vm_gateway -- br_vmbr0 [label=\"net1\"]"),
        "the router's uplink, after its management port: {dot}"
    );
    assert!(
        dot.contains("vm_gateway -- br_vmbr0 [label=\"net0, link down\", style=dashed]"),
        "the management port is drawn, dashed and down: {dot}"
    );

    let out = stand(
        dir.path(),
        &["graph", lab3().to_str().unwrap(), "--sim", "--format", "mermaid", "--student", "petrova@pve"],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mermaid = String::from_utf8(out.stdout).unwrap();
    assert!(mermaid.starts_with("flowchart LR\n") && mermaid.contains("stand of petrova@pve"), "{mermaid}");
    assert!(mermaid.contains("---|net0| br_vmbr"), "{mermaid}");

    let out = stand(dir.path(), &["graph", lab3().to_str().unwrap(), "--sim", "--student", "nobody@pve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no student nobody@pve"));
}

#[test]
fn completions_are_generated_for_the_shells() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = stand(dir.path(), &["completions", shell], &[]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("doctor") && text.contains("--sim"), "{shell} completes commands and flags");
    }
    let out = stand(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn cluster_add_checks_the_connection_and_records_it_without_the_secret() {
    let (_sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = server.token.split_once('=').unwrap();
    let config = vec![
        ("XDG_CONFIG_HOME".to_string(), dir.path().display().to_string()),
        ("LAB_TOKEN".to_string(), secret.to_string()),
    ];
    let add = |extra: &[&str]| {
        let mut args =
            vec!["cluster", "add", "lab", "--url", server.url.as_str(), "--token-id", id, "--token-env", "LAB_TOKEN"];
        args.extend_from_slice(extra);
        stand(dir.path(), &args, &config)
    };
    let out = add(&[]);
    assert_eq!(out.status.code(), Some(1), "an unpinned self-signed certificate is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--fingerprint {}", server.fingerprint)));
    let file = dir.path().join("stand/clusters.toml");
    assert!(!file.exists(), "nothing written when the check fails");

    let out = add(&["--fingerprint", &server.fingerprint]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("[clusters.lab]") && text.contains("token_env = \"LAB_TOKEN\""), "{text}");
    assert!(!text.contains(secret), "the secret stays in its variable");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(add(&["--fingerprint", &server.fingerprint]).status.code(), Some(2), "an existing name needs --force");

    let out = stand(dir.path(), &["status", "--cluster", "lab", "--output", "json"], &config);
    assert!(out.status.success(), "--cluster uses it: {}", String::from_utf8_lossy(&out.stderr));

    // A token file named relative to where the command ran is recorded by its absolute
    // path: the entry works from any directory.
    std::fs::write(dir.path().join("lab.token"), secret).unwrap();
    let out = stand(
        dir.path(),
        &["cluster", "add", "lab2", "--url", server.url.as_str(), "--token-id", id, "--token-file", "lab.token"]
            .into_iter()
            .chain(["--fingerprint", server.fingerprint.as_str()])
            .collect::<Vec<_>>(),
        &config,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    let recorded = format!("token_file = \"{}\"", dir.path().join("lab.token").display());
    assert!(text.contains(&recorded), "{text}");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = stand(elsewhere.path(), &["status", "--cluster", "lab2", "--output", "json"], &config);
    assert!(out.status.success(), "from another directory: {}", String::from_utf8_lossy(&out.stderr));
    server.shutdown();
}

#[test]
fn status_watch_refreshes_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stand"))
        .current_dir(dir.path())
        .args(["status", "--sim", "--watch", "0.1"])
        .env("STAND_SIM_STATE", dir.path().join("sim.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    // Another command deploys meanwhile; the watch shows it.
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab1.rhai");
    let up = stand(dir.path(), &["up", lab1.to_str().unwrap(), "--sim", "--quiet"], &[]);
    assert!(up.status.success());
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("no labs deployed by stand").count() >= 2, "refreshed:\n{text}");
    assert!(text.contains("lab1 "), "the watch saw the other command's lab:\n{text}");
}

#[test]
fn doctor_names_the_vms_whose_storage_cannot_take_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = "nodes: [{name: pve1, memory_gib: 64}]\n\
        storages: [{id: thick, type: lvm, content: [images]}, {id: thin, type: lvmthin, content: [images]}]\n\
        bridges: [{iface: vmbr0}]\n\
        templates: [{vmid: 100, name: deb, node: pve1, storage: thin, memory: 512}]\n";
    std::fs::write(dir.path().join("thick.yaml"), fixture).unwrap();
    let lab = "lab(#{ vmid_range: [200, 299] });\nlet u = create_user(\"ivanov@pve\");\nplace(u, \"pve1\");\n\
        clone(u, #{ template: \"deb\", name: \"a\", full: true, storage: \"thick\" });\n\
        clone(u, #{ template: \"deb\", name: \"b\" });\n";
    std::fs::write(dir.path().join("snaps.rhai"), lab).unwrap();
    let out = stand(dir.path(), &["doctor", "snaps.rhai", "--sim=thick.yaml", "--output", "json"], &[]);
    let all = checks(&out);
    let snapshots = row(&all, "snapshots");
    assert_eq!(snapshots["verdict"], "warn", "{all:#?}");
    assert!(
        snapshots["detail"].as_str().unwrap().contains("1 of 2 new VMs cannot take snapshot 'start'"),
        "{snapshots}"
    );
    assert!(snapshots["detail"].as_str().unwrap().contains("a-ivanov"), "{snapshots}");
    let fixed = lab.replace("lab(#{ vmid_range: [200, 299] })", "lab(#{ vmid_range: [200, 299], snapshot: false })");
    std::fs::write(dir.path().join("snaps.rhai"), fixed).unwrap();
    let all = checks(&stand(dir.path(), &["doctor", "snaps.rhai", "--sim=thick.yaml", "--output", "json"], &[]));
    assert_eq!(row(&all, "snapshots")["verdict"], "ok");
}

/// The storage row: a template only on one node's own storage warns (linked clones of it
/// work there only) until `stand templates sync` puts a copy on every node; copies beside
/// shared originals are fine.
#[test]
fn doctor_warns_of_a_template_on_one_nodes_storage_until_it_is_synced() {
    let (sim, _rt, server) = served();
    let dir = tempfile::tempdir().unwrap();
    let env = env(&server.url, &server.token, &server.fingerprint);
    let doctor = || checks(&stand(dir.path(), &["doctor", "--output", "json"], &env));
    let all = doctor();
    assert_eq!(row(&all, "storage")["verdict"], "ok");
    assert!(row(&all, "storage")["detail"].as_str().unwrap().contains("templates on shared storage (nfs-shared)"));

    // alt-workstation's disk moves to pve1's local-lvm.
    sim.state().vms.get_mut(&102).unwrap().config.insert("scsi0".into(), "local-lvm:base-102-disk-0,size=8G".into());
    let all = doctor();
    let storage = row(&all, "storage");
    assert_eq!(storage["verdict"], "warn", "{storage}");
    assert!(storage["detail"].as_str().unwrap().contains("alt-workstation only on pve1"), "{storage}");
    assert!(storage["fix"].as_str().unwrap().starts_with("`stand templates sync`"), "{storage}");

    let out = stand(dir.path(), &["templates", "sync"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = doctor();
    let storage = row(&all, "storage");
    assert_eq!(storage["verdict"], "ok", "{storage}");
    assert!(storage["detail"].as_str().unwrap().contains("copies on the nodes' own storage"), "{storage}");
    // Three copies of each shared original, two of alt-workstation (pve1 holds it already).
    let templates = row(&all, "templates");
    assert!(
        templates["detail"].as_str().unwrap().ends_with("; 11 copies on the nodes (`stand templates`)"),
        "{templates}"
    );
}
