//! The HTTPS client's wire behaviour: exact requests (mockito), PVE's error shapes, ticket
//! renewal, and which failures are retried (a scripted server).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockito::Matcher;
use stand::pve::{
    ApiRequest, ClientOptions, CloneParams, Credentials, Pve, PveClient, PveError, PveExt, Secret, TlsMode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn opts() -> ClientOptions {
    ClientOptions { backoff: Duration::from_millis(1), ..ClientOptions::default() }
}

fn token_client(url: &str) -> PveClient {
    let creds = Credentials::from_token("root@pam!stand=0b5e-secret").unwrap();
    PveClient::new(url, creds, &TlsMode::Verify { extra_ca: None }, opts()).unwrap()
}

#[tokio::test]
async fn clone_sends_the_exact_form_and_token_header() {
    let mut server = mockito::Server::new_async().await;
    let m = server
        .mock("POST", "/api2/json/nodes/pve1/qemu/100/clone")
        .match_header("authorization", "PVEAPIToken=root@pam!stand=0b5e-secret")
        .match_header("content-type", "application/x-www-form-urlencoded")
        .match_body(Matcher::AllOf(vec![
            Matcher::UrlEncoded("newid".into(), "200".into()),
            Matcher::UrlEncoded("name".into(), "web-s1".into()),
            Matcher::UrlEncoded("target".into(), "pve2".into()),
            Matcher::UrlEncoded("full".into(), "0".into()),
        ]))
        .with_body(r#"{"data":"UPID:pve1:00001234:01000000:65000000:qmclone:100:root@pam!stand:"}"#)
        .create_async()
        .await;
    let pve = token_client(&server.url());
    let p = CloneParams {
        newid: 200,
        name: Some("web-s1".into()),
        target: Some("pve2".into()),
        full: Some(false),
        ..Default::default()
    };
    let upid = pve.clone_vm("pve1", 100, &p).await.unwrap();
    assert_eq!(upid.user, "root@pam!stand");
    m.assert_async().await;
}

#[tokio::test]
async fn nextid_reads_a_string_or_a_number_and_booleans_go_as_0_1() {
    let mut server = mockito::Server::new_async().await;
    server.mock("GET", "/api2/json/cluster/nextid").with_body(r#"{"data":"107"}"#).create_async().await;
    let m = server
        .mock("PUT", "/api2/json/nodes/pve1/qemu/107/config")
        .match_body(Matcher::AllOf(vec![
            Matcher::UrlEncoded("net1".into(), "vmxnet3=1C:87:76:40:00:01,bridge=vmbr1000,link_down=1".into()),
            Matcher::UrlEncoded("onboot".into(), "1".into()),
        ]))
        .with_body(r#"{"data":null}"#)
        .create_async()
        .await;
    let pve = token_client(&server.url());
    assert_eq!(pve.nextid().await.unwrap(), 107);
    let params = [("net1", "vmxnet3=1C:87:76:40:00:01,bridge=vmbr1000,link_down=1"), ("onboot", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pve.set_vm_config("pve1", 107, params).await.unwrap();
    m.assert_async().await;
    let mut server = mockito::Server::new_async().await;
    server.mock("GET", "/api2/json/cluster/nextid").with_body(r#"{"data":108}"#).create_async().await;
    assert_eq!(token_client(&server.url()).nextid().await.unwrap(), 108);
}

#[tokio::test]
async fn errors_keep_status_message_and_parameter_errors() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", "/api2/json/cluster/nextid")
        .match_query(Matcher::UrlEncoded("vmid".into(), "100".into()))
        .with_status(400)
        .with_body(
            r#"{"data":null,"errors":{"vmid":"VM 100 already exists"},"message":"Parameter verification failed.\n"}"#,
        )
        .create_async()
        .await;
    server.mock("GET", "/api2/json/nodes").with_status(401).with_body(r#"{"data":null}"#).create_async().await;
    server
        .mock("GET", "/api2/json/nodes/pve1/qemu/100/config")
        .with_status(403)
        .with_body(r#"{"data":null,"message":"Permission check failed (/vms/100, VM.Audit)\n"}"#)
        .create_async()
        .await;
    let pve = token_client(&server.url());
    let e = pve.call(ApiRequest::get("/cluster/nextid").param("vmid", 100)).await.unwrap_err();
    let f = e.failure().unwrap();
    assert_eq!((f.status, f.message.as_str()), (400, "Parameter verification failed."));
    assert_eq!(f.errors["vmid"], "VM 100 already exists");
    assert_eq!(e.to_string(), "GET /cluster/nextid: 400 Parameter verification failed. (vmid: VM 100 already exists)");
    assert_eq!(pve.nodes().await.unwrap_err().status(), Some(401));
    let e = pve.vm_config("pve1", 100).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "Permission check failed (/vms/100, VM.Audit)");
}

#[tokio::test]
async fn ticket_login_sends_cookie_and_csrf_and_renews_with_the_ticket() {
    let mut server = mockito::Server::new_async().await;
    let login = server
        .mock("POST", "/api2/json/access/ticket")
        .match_body(Matcher::AllOf(vec![Matcher::UrlEncoded("username".into(), "teacher@pve".into()), Matcher::UrlEncoded("password".into(), "pw-1".into())]))
        .with_body(r#"{"data":{"username":"teacher@pve","ticket":"PVE:teacher@pve:65000000::sig1","CSRFPreventionToken":"65000000:csrf1"}}"#)
        .expect(1)
        .create_async()
        .await;
    let renew = server
        .mock("POST", "/api2/json/access/ticket")
        .match_body(Matcher::UrlEncoded("password".into(), "PVE:teacher@pve:65000000::sig1".into()))
        .with_body(r#"{"data":{"username":"teacher@pve","ticket":"PVE:teacher@pve:65000100::sig2","CSRFPreventionToken":"65000100:csrf2"}}"#)
        .expect(1)
        .create_async()
        .await;
    let read = server
        .mock("GET", "/api2/json/version")
        .match_header("cookie", "PVEAuthCookie=PVE%3Ateacher%40pve%3A65000000%3A%3Asig1")
        .with_body(r#"{"data":{"version":"8.4.1","release":"8.4","repoid":"x"}}"#)
        .create_async()
        .await;
    let write = server
        .mock("POST", "/api2/json/pools")
        .match_header("csrfpreventiontoken", "65000100:csrf2")
        .match_header("cookie", "PVEAuthCookie=PVE%3Ateacher%40pve%3A65000100%3A%3Asig2")
        .with_body(r#"{"data":null}"#)
        .create_async()
        .await;
    let creds = Credentials::Password { user: "teacher@pve".into(), password: Secret::new("pw-1") };
    let quick_renewal = ClientOptions { ticket_refresh_after: Duration::from_millis(50), ..opts() };
    let pve = PveClient::new(&server.url(), creds, &TlsMode::Verify { extra_ca: None }, quick_renewal).unwrap();
    assert_eq!(pve.version().await.unwrap().version, "8.4.1");
    tokio::time::sleep(Duration::from_millis(80)).await;
    pve.create_pool("lab-s1", None).await.unwrap();
    login.assert_async().await;
    renew.assert_async().await;
    read.assert_async().await;
    write.assert_async().await;
    assert!(!format!("{pve:?}").contains("pw-1"), "Debug shows no secret");
}

/// A server that answers each connection with the next scripted reply (`None`: drop it).
async fn scripted(replies: Vec<Option<&'static str>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in replies {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16384];
            let mut got = Vec::new();
            loop {
                let n = sock.read(&mut buf).await.unwrap_or(0);
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&got).to_string();
            log.lock().unwrap().push(text.lines().next().unwrap_or_default().to_string());
            if let Some(r) = reply {
                let _ = sock.write_all(r.as_bytes()).await;
            }
            let _ = sock.shutdown().await;
        }
    });
    (url, seen)
}

const OK_NULL: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"data\":null}";
const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"data\":null}";
const BROKEN_PIPE: &str = "HTTP/1.1 596 Broken pipe\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"data\":null}";
const LOCK_TIMEOUT: &str = "HTTP/1.1 500 can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"data\":null}";
const LOCKED: &str =
    "HTTP/1.1 500 VM is locked (clone)\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"data\":null}";
const BAD: &str = "HTTP/1.1 400 Parameter verification failed.\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{\"data\":null,\"errors\":{\"memory\":\"invalid format\"}}";

#[tokio::test]
async fn a_500_with_only_a_reason_phrase_keeps_pves_message() {
    let (url, _) = scripted(vec![Some(LOCKED)]).await;
    let e =
        token_client(&url).exec(ApiRequest::put("/nodes/pve1/qemu/203/config").param("memory", 512)).await.unwrap_err();
    assert_eq!(e.failure().unwrap().message, "VM is locked (clone)");
    assert_eq!(e.to_string(), "PUT /nodes/pve1/qemu/203/config: 500 VM is locked (clone)");
}

#[tokio::test]
async fn reads_are_retried_on_busy_nodes_and_dropped_connections() {
    let (url, seen) = scripted(vec![Some(BUSY), None, Some(BROKEN_PIPE), Some(OK_NULL)]).await;
    token_client(&url).exec(ApiRequest::get("/cluster/resources")).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_write_is_retried_only_when_it_certainly_did_not_happen() {
    let (url, seen) = scripted(vec![Some(LOCK_TIMEOUT), Some(BUSY), Some(OK_NULL)]).await;
    token_client(&url).exec(ApiRequest::put("/nodes/pve1/qemu/203/config").param("memory", 512)).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3, "a lock never acquired and a busy proxy are safe to repeat");

    let (url, seen) = scripted(vec![None, Some(OK_NULL)]).await;
    let e = token_client(&url).exec(ApiRequest::post("/pools").param("poolid", "p")).await.unwrap_err();
    assert!(matches!(e, PveError::Transport { maybe_applied: true, .. }), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a write whose answer was lost is not repeated blindly");

    let (url, seen) = scripted(vec![Some(LOCKED), Some(OK_NULL)]).await;
    assert!(token_client(&url).exec(ApiRequest::put("/nodes/pve1/qemu/203/config").param("memory", 1)).await.is_err());
    assert_eq!(seen.lock().unwrap().len(), 1, "a definite refusal is not retried");

    let (url, seen) = scripted(vec![Some(BAD), Some(OK_NULL)]).await;
    let e = token_client(&url).exec(ApiRequest::get("/nodes")).await.unwrap_err();
    assert_eq!(e.failure().unwrap().errors["memory"], "invalid format");
    assert_eq!(seen.lock().unwrap().len(), 1, "4xx is never retried");
}

#[tokio::test]
async fn retries_are_bounded() {
    let (url, seen) = scripted(vec![Some(BUSY); 5]).await;
    let e = token_client(&url).exec(ApiRequest::get("/nodes")).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn refused_connections_are_transport_errors_not_applied() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let pve = PveClient::new(
        &url,
        Credentials::from_token("a@pve!t=tok-secret-xyz").unwrap(),
        &TlsMode::Verify { extra_ca: None },
        ClientOptions { attempts: 2, ..opts() },
    )
    .unwrap();
    let e = pve.exec(ApiRequest::post("/pools").param("poolid", "p")).await.unwrap_err();
    assert!(matches!(e, PveError::Transport { maybe_applied: false, .. }), "{e:?}");
    assert!(!e.to_string().contains("tok-secret-xyz") && !format!("{e:?}").contains("tok-secret-xyz"), "{e}");
}
