//! The real client over real HTTPS against the served simulator: TLS pinning, both kinds of
//! auth, and a full deploy cycle whose request log matches the official API schema.

use std::path::Path;

use stand::pve::{
    BridgeParams, ClientOptions, CloneParams, Credentials, PveClient, PveError, PveExt, Secret, TlsMode, WaitPolicy,
    presented_fingerprint,
};
use stand::sim::{Sim, serve};

fn policy() -> WaitPolicy {
    WaitPolicy {
        first: std::time::Duration::from_millis(5),
        max: std::time::Duration::from_millis(20),
        ..WaitPolicy::default()
    }
}

#[tokio::test]
async fn pinned_fingerprint_is_accepted_and_a_wrong_one_is_refused_with_what_was_presented() {
    let sim = Sim::default_instant();
    let server = serve(sim, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let creds = Credentials::from_token(&server.token).unwrap();
    let pinned = PveClient::new(
        &server.url,
        creds.clone(),
        &TlsMode::Pinned(server.fingerprint.clone()),
        ClientOptions::default(),
    )
    .unwrap();
    assert_eq!(pinned.nodes().await.unwrap().len(), 3);

    let wrong = vec!["AB"; 32].join(":");
    let bad =
        PveClient::new(&server.url, creds.clone(), &TlsMode::Pinned(wrong.clone()), ClientOptions::default()).unwrap();
    let e = bad.nodes().await.unwrap_err();
    assert!(matches!(e, PveError::Tls(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&server.fingerprint) && text.contains(&wrong) && text.contains("PVE_FINGERPRINT"), "{text}");
}

#[tokio::test]
async fn an_unpinned_self_signed_server_is_refused_and_its_fingerprint_can_be_shown() {
    let sim = Sim::default_instant();
    let server = serve(sim, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let creds = Credentials::from_token(&server.token).unwrap();
    let default =
        PveClient::new(&server.url, creds.clone(), &TlsMode::Verify { extra_ca: None }, ClientOptions::default())
            .unwrap();
    let e = default.version().await.unwrap_err();
    assert!(matches!(e, PveError::Tls(_)), "verification is on by default: {e:?}");
    assert_eq!(presented_fingerprint(&server.url).await.as_deref(), Some(server.fingerprint.as_str()));
    let with_ca = PveClient::new(
        &server.url,
        creds,
        &TlsMode::Verify { extra_ca: Some(server.cert_pem.clone()) },
        ClientOptions::default(),
    )
    .unwrap();
    assert_eq!(with_ca.version().await.unwrap().version, "8.4.1", "PVE_CA trusts the server's own certificate");
}

#[tokio::test]
async fn ticket_login_works_and_a_wrong_password_is_401() {
    let sim = Sim::default_instant();
    sim.set_password("root@pam", "Root-pass-1");
    let server = serve(sim, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tls = TlsMode::Pinned(server.fingerprint.clone());
    let creds = Credentials::Password { user: "root@pam".into(), password: Secret::new("Root-pass-1") };
    let pve = PveClient::new(&server.url, creds, &tls, ClientOptions::default()).unwrap();
    pve.create_pool("via-ticket", Some("written with cookie + CSRF")).await.unwrap();
    assert!(pve.pools().await.unwrap().iter().any(|p| p.poolid == "via-ticket"));
    let wrong = Credentials::Password { user: "root@pam".into(), password: Secret::new("nope") };
    let pve = PveClient::new(&server.url, wrong, &tls, ClientOptions::default()).unwrap();
    assert_eq!(pve.nodes().await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn a_full_cycle_over_https_passes_the_schema_check() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let sim = Sim::default_instant();
    sim.log_requests_to(&log).unwrap();
    let server = serve(sim, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let pve = PveClient::new(
        &server.url,
        Credentials::from_token(&server.token).unwrap(),
        &TlsMode::Pinned(server.fingerprint.clone()),
        ClientOptions::default(),
    )
    .unwrap();

    let newid = pve.nextid().await.unwrap();
    pve.create_pool("lab3-s1", Some("stand: lab=lab3 user=s1@pve")).await.unwrap();
    let p = CloneParams {
        newid,
        name: Some("web-s1".into()),
        target: Some("pve2".into()),
        pool: Some("lab3-s1".into()),
        ..Default::default()
    };
    let upid = pve.clone_vm("pve1", 101, &p).await.unwrap();
    pve.wait_task(&upid, policy()).await.unwrap();
    pve.create_bridge(
        "pve2",
        &BridgeParams {
            iface: "vmbr1000".into(),
            autostart: true,
            comments: Some("stand: lab=lab3".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reload = pve.apply_network("pve2").await.unwrap();
    pve.wait_task(&reload, policy()).await.unwrap();
    let nic = [
        ("net1".to_string(), "virtio,bridge=vmbr1000,firewall=1".to_string()),
        ("tags".to_string(), "stand;lab-lab3".to_string()),
    ]
    .into_iter()
    .collect();
    pve.set_vm_config("pve2", newid, nic).await.unwrap();
    pve.create_user("s1@pve", Some("Student-pass-1"), Some("stand: lab=lab3")).await.unwrap();
    pve.set_acl("/pool/lab3-s1", "PVEVMAdmin", Some("s1@pve"), None, false).await.unwrap();
    let start = pve.vm_power("pve2", newid, "start").await.unwrap();
    pve.wait_task(&start, policy()).await.unwrap();
    assert_eq!(pve.vm_status("pve2", newid).await.unwrap().status, "running");
    let stop = pve.vm_power("pve2", newid, "stop").await.unwrap();
    pve.wait_task(&stop, policy()).await.unwrap();
    let del = pve.delete_vm("pve2", newid).await.unwrap();
    pve.wait_task(&del, policy()).await.unwrap();
    pve.delete_iface("pve2", "vmbr1000").await.unwrap();
    pve.wait_task(&pve.apply_network("pve2").await.unwrap(), policy()).await.unwrap();
    pve.delete_pool("lab3-s1").await.unwrap();
    pve.delete_user("s1@pve").await.unwrap();
    assert!(pve.acl().await.unwrap().is_empty());
    drop(server);

    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pve-api/check_requests.py");
    if !checker.exists() {
        assert!(std::env::var_os("STAND_REQUIRE_PEER").is_none(), "../shared/pve-api is missing");
        return;
    }
    let out = std::process::Command::new("python3").arg(&checker).arg(&log).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.contains(", 0 do not match the schema"), "{report}");
}
