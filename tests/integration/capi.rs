//! `stand export capi`: every document validates against CAPMOX's and Cluster API's own CRDs
//! (`tests/capi/`, kept with their licences) for a bridge lab, a VXLAN lab and a lab after
//! `templates sync`; the export is the same twice; address ranges never overlap; bad
//! settings are refused with nothing written; `--with-credentials` makes a token limited to
//! the lab and writes its secret once, to a private file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::LazyLock;

use serde_json::{Value, json};
use stand::sim::Identity;

use crate::common::{served_in_process, stand, text, token_env};

/// The schema of each kind: CAPMOX's stored version, Cluster API's `v1beta1`.
static SCHEMAS: LazyLock<BTreeMap<String, (String, Value)>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/capi");
    let files = [
        ("capmox/proxmoxclusters.yaml", None),
        ("capmox/proxmoxmachinetemplates.yaml", None),
        ("cluster-api/cluster.x-k8s.io_clusters.yaml", Some("v1beta1")),
        ("cluster-api/cluster.x-k8s.io_machinedeployments.yaml", Some("v1beta1")),
        ("cluster-api/controlplane.cluster.x-k8s.io_kubeadmcontrolplanes.yaml", Some("v1beta1")),
        ("cluster-api/bootstrap.cluster.x-k8s.io_kubeadmconfigtemplates.yaml", Some("v1beta1")),
    ];
    let mut out = BTreeMap::new();
    for (file, version) in files {
        let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let group = crd["spec"]["group"].as_str().unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let v = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| match version {
                Some(name) => v["name"] == name && v["served"] == true,
                None => v["storage"] == true,
            })
            .unwrap_or_else(|| panic!("{file}: no such version"))
            .clone();
        let api_version = format!("{group}/{}", v["name"].as_str().unwrap());
        out.insert(kind, (api_version, v["schema"]["openAPIV3Schema"].clone()));
    }
    out
});

/// Checks `v` against a CRD's structural schema the way the API server prunes and
/// validates: unknown fields, missing required ones, types, enums, bounds, patterns.
fn validate(v: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
    if schema["x-kubernetes-int-or-string"] == true {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            errors.push(format!("{at}: not an integer or a string"));
        }
        return;
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    match schema["type"].as_str() {
        Some("object") => {
            let Some(obj) = v.as_object() else { return errors.push(format!("{at}: not an object")) };
            for r in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    errors.push(format!("{at}: `{r}` is required"));
                }
            }
            let props = schema["properties"].as_object();
            for (k, val) in obj {
                let here = format!("{at}.{k}");
                match (props.and_then(|p| p.get(k)), &schema["additionalProperties"]) {
                    (Some(p), _) => validate(val, p, &here, errors),
                    (None, ap) if ap.is_object() => validate(val, ap, &here, errors),
                    (None, _) if props.is_some() && !preserve => errors.push(format!("{here}: unknown field")),
                    _ => {}
                }
            }
        }
        Some("array") => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    validate(item, &schema["items"], &format!("{at}[{i}]"), errors);
                }
                if let Some(max) = schema["maxItems"].as_u64().filter(|m| items.len() as u64 > *m) {
                    errors.push(format!("{at}: more than {max} items"));
                }
            }
            None => errors.push(format!("{at}: not an array")),
        },
        Some("string") => match v.as_str() {
            Some(s) => {
                if let Some(e) = schema["enum"].as_array().filter(|e| !e.contains(v)) {
                    errors.push(format!("{at}: `{s}` is not one of {e:?}"));
                }
                if schema["minLength"].as_u64().is_some_and(|m| (s.chars().count() as u64) < m)
                    || schema["maxLength"].as_u64().is_some_and(|m| s.chars().count() as u64 > m)
                {
                    errors.push(format!("{at}: `{s}` has the wrong length"));
                }
                let pattern = schema["pattern"].as_str().and_then(|p| regex::Regex::new(p).ok());
                if pattern.is_some_and(|p| !p.is_match(s)) {
                    errors.push(format!("{at}: `{s}` does not match {}", schema["pattern"]));
                }
            }
            None => errors.push(format!("{at}: not a string")),
        },
        Some("integer") => match v.as_i64() {
            Some(n) => {
                if schema["minimum"].as_i64().is_some_and(|m| n < m)
                    || schema["maximum"].as_i64().is_some_and(|m| n > m)
                {
                    errors.push(format!("{at}: {n} is out of bounds"));
                }
            }
            None => errors.push(format!("{at}: not an integer")),
        },
        Some("boolean") if !v.is_boolean() => errors.push(format!("{at}: not a boolean")),
        Some("number") if !v.is_number() => errors.push(format!("{at}: not a number")),
        _ => {}
    }
}

/// Errors of one document: its kind's schema, its apiVersion, and Kubernetes' rules for
/// names and labels.
fn errors_of(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let Some((api_version, schema)) = SCHEMAS.get(kind) else { return vec![format!("no CRD for kind {kind}")] };
    let mut errors = Vec::new();
    if doc["apiVersion"] != api_version.as_str() {
        errors.push(format!("{kind}: apiVersion {} (the CRD's is {api_version})", doc["apiVersion"]));
    }
    validate(doc, schema, kind, &mut errors);
    let label = regex::Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    if !regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap().is_match(name) || name.len() > 63 {
        errors.push(format!("{kind}: name `{name}` is not a DNS label"));
    }
    for (k, v) in doc["metadata"]["labels"].as_object().into_iter().flatten() {
        let value = v.as_str().unwrap_or_default();
        if !label.is_match(value) || value.len() > 63 || !k.split('/').all(|p| !p.is_empty() && p.len() <= 63) {
            errors.push(format!("{kind}: label {k}={value} is not valid"));
        }
    }
    errors
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A class of `n` students with one VM on their `lan`, and Kubernetes clusters on it.
fn k8s_lab(dir: &Path, name: &str, n: usize, extra: &str, capi: &str) -> String {
    let body = format!(
        "lab(#{{ {extra} capi: #{{ {capi} }} }});\n\
         for i in 1..={n} {{ let user = create_user(`s${{i}}@pve`); place_balanced(user); let lan = alias(user, \"lan\");\n\
         clone(user, #{{ template: \"debian-12\", name: \"gw\", nets: [\"vmbr0\", lan], memory: 256 }}); }}\n"
    );
    write(dir, name, &body).display().to_string()
}

const CAPI: &str = r#"addresses: "10.10.0.0/25", prefix: 24, gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "lan", template: "debian-12", ssh_keys: ["ssh-ed25519 AAAAC3Nza teacher"], vmids: [5000, 5999]"#;

fn documents(dir: &Path, lab: &str) -> Vec<Value> {
    let o = stand(dir, &["export", "capi", lab, "--sim", "--output", "json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    json(&o)["documents"].as_array().unwrap().clone()
}

fn all_valid(docs: &[Value]) {
    let errors: Vec<String> = docs.iter().flat_map(errors_of).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_validator_finds_unknown_and_missing_fields() {
    let mut errors = Vec::new();
    let (_, schema) = &SCHEMAS["ProxmoxCluster"];
    let doc =
        json!({ "apiVersion": "x", "kind": "ProxmoxCluster", "metadata": {}, "spec": { "allowedNode": ["pve1"] } });
    validate(&doc, schema, "ProxmoxCluster", &mut errors);
    assert!(errors.iter().any(|e| e.contains("spec.allowedNode: unknown field")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("spec: `dnsServers` is required")), "{errors:?}");
    let (_, schema) = &SCHEMAS["ProxmoxMachineTemplate"];
    let mut errors = Vec::new();
    let bad = json!({ "spec": { "template": { "spec": { "format": "vhd", "network": { "networkDevices": [{ "model": "virtio" }] } } } } });
    validate(&bad, schema, "t", &mut errors);
    assert!(errors.iter().any(|e| e.contains("`vhd` is not one of")), "{errors:?}");
}

#[test]
fn a_bridge_lab_exports_valid_clusters_the_same_twice() {
    let dir = tempfile::tempdir().unwrap();
    let lab = k8s_lab(dir.path(), "k8s.rhai", 3, "", CAPI);
    assert!(stand(dir.path(), &["up", &lab, "--sim", "-q"], &[]).status.success());
    let docs = documents(dir.path(), &lab);
    all_valid(&docs);
    assert_eq!(docs.len(), 3 * 7, "Cluster, ProxmoxCluster, KCP, 2 machine templates, MD, KubeadmConfigTemplate each");
    let status = json(&stand(dir.path(), &["status", "k8s", "--sim", "--output", "json"], &[]));
    for (i, s) in status["stands"].as_array().unwrap().iter().enumerate() {
        let user = s["user"].as_str().unwrap();
        let node = s["nodes"][0].as_str().unwrap();
        let pc =
            of_kind(&docs, "ProxmoxCluster").into_iter().find(|d| d["metadata"]["annotations"]["stand/user"] == user);
        let pc = pc.unwrap_or_else(|| panic!("{user}'s ProxmoxCluster"));
        assert_eq!(pc["spec"]["allowedNodes"], json!([node]), "on the stand's node");
        let bridge = s["bridges"].as_array().unwrap().iter().find(|b| b["alias"] == "lan").unwrap()["iface"].clone();
        let name = pc["metadata"]["name"].as_str().unwrap();
        for t in of_kind(&docs, "ProxmoxMachineTemplate")
            .into_iter()
            .filter(|t| t["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == name)
        {
            let spec = &t["spec"]["template"]["spec"];
            assert_eq!(spec["network"]["networkDevices"][0]["bridge"], bridge, "on the student's own lan");
            assert_eq!(spec["pool"], format!("k8s-s{}", i + 1));
            assert_eq!((spec["templateID"].as_u64(), spec["full"].as_bool()), (Some(103), Some(false)));
        }
    }
    let yaml = |dir: &Path| {
        let o = stand(dir, &["export", "capi", &lab, "--sim"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        o.stdout
    };
    assert_eq!(yaml(dir.path()), yaml(dir.path()), "the same lab exports the same YAML twice");
}

#[test]
fn a_vxlan_lab_and_a_synced_lab_export_valid_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let vxlan = k8s_lab(dir.path(), "kx.rhai", 2, "network: \"vxlan\",", CAPI);
    assert!(stand(dir.path(), &["up", &vxlan, "--sim", "-q"], &[]).status.success());
    let docs = documents(dir.path(), &vxlan);
    all_valid(&docs);
    for t in of_kind(&docs, "ProxmoxMachineTemplate") {
        let bridge =
            t["spec"]["template"]["spec"]["network"]["networkDevices"][0]["bridge"].as_str().unwrap().to_string();
        assert!(!bridge.starts_with("vmbr"), "a VNet, not a node's bridge: {bridge}");
    }
    // After `templates sync`, each student's machines come from the copy on their node.
    let synced = k8s_lab(dir.path(), "ks.rhai", 3, "", CAPI);
    let o = stand(dir.path(), &["templates", "sync", "--sim", "-q"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stand(dir.path(), &["up", &synced, "--sim", "-q"], &[]).status.success());
    let docs = documents(dir.path(), &synced);
    all_valid(&docs);
    for t in of_kind(&docs, "ProxmoxMachineTemplate") {
        let spec = &t["spec"]["template"]["spec"];
        assert_eq!(spec["sourceNode"], spec["allowedNodes"][0], "the copy on the stand's own node: {spec}");
        if spec["sourceNode"] != "pve1" {
            assert_ne!(spec["templateID"], 103, "a copy, not the original on shared storage: {spec}");
        }
    }
}

#[test]
fn thirty_students_get_ranges_and_endpoints_that_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let capi = r#"addresses: "10.40.0.10-10.40.0.199", prefix: 24, gateway: "10.40.0.1", endpoint: "10.40.0.200", network: "lan", template: "debian-12", workers: 3"#;
    let lab = k8s_lab(dir.path(), "k30.rhai", 30, "", capi);
    let docs = documents(dir.path(), &lab);
    all_valid(&docs);
    let ip = |s: &str| -> u32 { u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) };
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    let mut endpoints = Vec::new();
    for pc in of_kind(&docs, "ProxmoxCluster") {
        let (a, b) = pc["spec"]["ipv4Config"]["addresses"][0].as_str().unwrap().split_once('-').unwrap();
        ranges.push((ip(a), ip(b)));
        endpoints.push(ip(pc["spec"]["controlPlaneEndpoint"]["host"].as_str().unwrap()));
    }
    assert_eq!(ranges.len(), 30);
    for (i, (a, b)) in ranges.iter().enumerate() {
        assert_eq!(b - a + 1, 1 + 3 + 2, "control plane, workers, one surge of each");
        assert!(*a >= ip("10.40.0.10") && *b <= ip("10.40.0.199"));
        for (c, d) in &ranges[i + 1..] {
            assert!(b < c || d < a, "overlap");
        }
        for e in &endpoints {
            assert!(e < a || e > b, "an endpoint in a student's range");
        }
    }
    endpoints.dedup();
    assert_eq!(endpoints.len(), 30);
}

#[test]
fn bad_settings_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"addresses: "10.10.0.0/28", prefix: 24, gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "lan", template: "debian-12""#,
            "capi.addresses: 10.10.0.1-10.10.0.14 holds 2 of the class's 5 students at 5 addresses each",
        ),
        (
            r#"addresses: "10.10.0.0/24", gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "lan", template: "debian-12""#,
            "capi.endpoint: 10.10.0.200 (a control plane endpoint; the class's are 10.10.0.200 to 10.10.0.204) is inside `addresses` 10.10.0.0/24",
        ),
        (
            r#"addresses: "10.10.0.0/25", prefix: 24, gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "lan", template: "alt-server""#,
            "capi.template: alt-server (101) has no cloud-init drive",
        ),
        (
            r#"addresses: "10.10.0.0/25", prefix: 24, gateway: "10.10.0.1", endpoint: "10.10.0.200", network: "dmz", template: "debian-12""#,
            "s1@pve: no network 'dmz' (capi.network): their networks are lan",
        ),
    ];
    for (i, (capi, message)) in cases.iter().enumerate() {
        let lab = k8s_lab(dir.path(), &format!("bad{i}.rhai"), 5, "", capi);
        let out = dir.path().join(format!("out{i}"));
        let o = stand(
            dir.path(),
            &["export", "capi", &lab, "--sim", "--dir", out.to_str().unwrap(), "--with-credentials"],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(message), "{message}\n{}", text(&o));
        assert!(!out.exists(), "no folder written");
        assert!(!dir.path().join(format!("bad{i}-capmox-secret.yaml")).exists(), "no token made");
    }
    let lab = write(dir.path(), "plain.rhai", "create_user(\"a@pve\");");
    let o = stand(dir.path(), &["export", "capi", lab.to_str().unwrap(), "--sim"], &[]);
    assert!(text(&o).contains("lab plain has no Cluster API settings: add lab(#{ capi:"), "{}", text(&o));
}

#[test]
fn the_token_is_the_labs_own_and_its_secret_is_written_once_to_a_private_file() {
    let (sim, _rt, server) = served_in_process();
    let dir = tempfile::tempdir().unwrap();
    let env = token_env(&server);
    let lab = k8s_lab(dir.path(), "kt.rhai", 2, "", CAPI);
    assert!(stand(dir.path(), &["up", &lab, "-q"], &env).status.success());
    let o = stand(dir.path(), &["export", "capi", &lab, "--with-credentials"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let file = dir.path().join("kt-capmox-secret.yaml");
    let secret: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let value = secret["stringData"]["secret"].as_str().unwrap().to_string();
    assert!(!text(&o).contains(&value), "the secret never reaches the terminal");
    assert_eq!(
        (secret["stringData"]["token"].as_str(), secret["stringData"]["url"].as_str()),
        (Some("capmox-kt@pve!capi"), Some(server.url.as_str()))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let yaml: Vec<Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert!(of_kind(&yaml, "ProxmoxCluster").iter().all(|d| d["spec"]["credentialsRef"]["name"] == "kt-capmox"));
    all_valid(&yaml);

    // The token reaches the lab's pools, not another lab's, and changes no user.
    let token = Identity { userid: "capmox-kt@pve".into(), token: Some("capi".into()) };
    let st = sim.state();
    assert!(st.users["capmox-kt@pve"].tokens["capi"].privsep, "privilege-separated");
    assert!(st.has(&token, "/pool/kt-s1", "VM.Allocate") && st.has(&token, "/pool/kt-s2", "VM.Allocate"));
    assert!(st.has(&token, "/vms/103", "VM.Clone") && st.has(&token, "/storage/nfs-shared", "Datastore.AllocateSpace"));
    assert!(!st.has(&token, "/pool/other-lab", "VM.Allocate") && !st.has(&token, "/vms/101", "VM.Clone"));
    assert!(!st.has(&token, "/access", "User.Modify") && !st.has(&token, "/", "Sys.Modify"));
    drop(st);

    // Again: the token exists; its secret is not shown or written again.
    let before = std::fs::read(&file).unwrap();
    let o = stand(dir.path(), &["export", "capi", &lab, "--with-credentials"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the token capmox-kt@pve!capi exists (its Secret was written when it was made): 0 of its"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "the file is left as it was");
    let o = stand(dir.path(), &["doctor", &lab, "--capi", "--output", "json"], &env);
    let checks = json(&o)["checks"].as_array().unwrap().clone();
    let names: Vec<(&str, &str)> = checks
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("capi"))
        .map(|c| (c["name"].as_str().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("capi template", "ok"),
            ("capi storage", "ok"),
            ("capi ISO storage", "ok"),
            ("capi token", "ok"),
            ("capi addresses", "ok")
        ]
    );
}

/// `(user, addresses)` of each ProxmoxCluster in a YAML export.
fn ranges_of(yaml: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(yaml)
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str::<Value>(d).unwrap())
        .filter(|d| d["kind"] == "ProxmoxCluster")
        .map(|d| {
            let user = d["metadata"]["annotations"]["stand/user"].as_str().unwrap().to_string();
            (user, d["spec"]["ipv4Config"]["addresses"][0].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn a_deployed_lab_exports_by_name_as_by_script_and_a_new_student_moves_no_one() {
    let dir = tempfile::tempdir().unwrap();
    // Twelve students: s10 sorts before s2, the order their stands were made does not.
    let lab = k8s_lab(dir.path(), "kn.rhai", 12, "", CAPI);
    assert!(stand(dir.path(), &["up", &lab, "--sim", "-q"], &[]).status.success());
    let by_script = stand(dir.path(), &["export", "capi", &lab, "--sim"], &[]);
    let by_name = stand(dir.path(), &["export", "capi", "kn", "--sim"], &[]);
    assert!(by_name.status.success(), "{}", text(&by_name));
    assert_eq!(by_script.stdout, by_name.stdout, "the lab's settings were recorded by up");
    let before = ranges_of(&by_name.stdout);
    assert_eq!(
        before[1],
        ("s2@pve".to_string(), "10.10.0.7-10.10.0.11".to_string()),
        "in the order the stands were made"
    );

    // A student added at the top of the list gets the next range; the others keep theirs.
    let body = std::fs::read_to_string(&lab)
        .unwrap()
        .replace("for i in 1..=12", "for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]");
    std::fs::write(&lab, body).unwrap();
    assert!(stand(dir.path(), &["up", &lab, "--sim", "-q"], &[]).status.success());
    let after = ranges_of(&stand(dir.path(), &["export", "capi", "kn", "--sim"], &[]).stdout);
    assert_eq!(&after[..12], &before[..], "nobody's range moved");
    assert_eq!(after[12].0, "s0@pve");

    let o = stand(dir.path(), &["export", "capi", "nosuch", "--sim"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("nosuch: no such file, and no lab nosuch is deployed (deployed labs: kn)"),
        "{}",
        text(&o)
    );
    let plain = write(
        dir.path(),
        "plain.rhai",
        "let u = create_user(\"a@pve\"); clone(u, #{ template: \"debian-12\", name: \"pc\" });",
    );
    assert!(stand(dir.path(), &["up", plain.to_str().unwrap(), "--sim", "-q"], &[]).status.success());
    let o = stand(dir.path(), &["export", "capi", "plain", "--sim"], &[]);
    assert!(text(&o).contains("lab plain is deployed without Cluster API settings on record"), "{}", text(&o));
}
