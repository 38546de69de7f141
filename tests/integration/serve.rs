//! `stand serve`: the class page, its API and its metrics, driven through the router on a
//! paused clock against the simulator: who sees what, CSRF, login slowdown, ticket expiry,
//! secrets, metrics access, and the load many students put on the cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use stand::apply::{ApplyOptions, apply};
use stand::grade::{GradeSheet, History, StandOutcome};
use stand::plan::Snapshot;
use stand::pve::{Pve, PveExt, WaitPolicy};
use stand::script::{Grade, RunOptions, run_source};
use stand::serve::{Backend, ServeConfig, router};
use stand::sim::Sim;
use tower::ServiceExt;

pub const PASSWORD: &str = "Student-pass-1";
pub const TEACHER: &str = "teacher@pve";
pub const TEACHER_PASSWORD: &str = "Teacher-pass-1";

/// The class: a teacher, and per student a router and a workstation on a private LAN.
pub fn lab_script(students: &[String], student_reset: bool) -> String {
    let list: Vec<String> = students.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"lab(#{{ vmid_range: [3000, 3999], teacher: "{TEACHER}", student_reset: {student_reset} }});
for u in users([{}]) {{
    let user = create_user(u);
    place_balanced(user);
    let lan = alias(user, "lan");
    clone(user, #{{ template: "ecorouter", name: "gw", device: "ecorouter", nets: ["vmbr0", lan], memory: 1024 }});
    clone(user, #{{ template: "debian-12", name: "pc", nets: [lan], memory: 512 }});
}}"#,
        list.join(", ")
    )
}

/// Deploys lab `lab` for `students` on `sim` (every student's password is [`PASSWORD`]) and
/// makes [`TEACHER`] first.
pub async fn deploy(sim: &Sim, lab: &str, students: &[String], student_reset: bool) {
    let root = sim.session("root@pam");
    if !root.users().await.unwrap().iter().any(|u| u.userid == TEACHER) {
        root.create_user(TEACHER, Some(TEACHER_PASSWORD), None).await.unwrap();
    }
    let pve: Arc<dyn Pve> = Arc::new(sim.client());
    let snap = Arc::new(Snapshot::take(&*pve).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { lab: Some(lab.into()), ..RunOptions::default() };
    let mut plan = run_source(lab, dir.path(), &lab_script(students, student_reset), snap.clone(), &opts).unwrap().plan;
    for u in plan.users.iter_mut().filter(|u| u.new_password) {
        u.password = Some(PASSWORD.to_string());
    }
    let report = apply(pve, &plan, snap, &fast()).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

/// Task waits for the instant simulator.
pub fn fast() -> ApplyOptions {
    ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(5), max: Duration::from_millis(20), ..WaitPolicy::default() },
        backoff: Duration::from_millis(5),
        ..ApplyOptions::default()
    }
}

/// The backend of `stand serve` on `sim`: its own reads with an API token, as on a real
/// cluster (a token does not expire with the two-hour tickets).
pub fn backend(sim: &Sim) -> Backend {
    let base = sim.client();
    let secret = sim.add_token("root@pam", "serve", false).unwrap();
    let token = stand::pve::Credentials::Token { id: "root@pam!serve".into(), secret: stand::pve::Secret::new(secret) };
    Backend {
        pve: Arc::new(base.sibling(token)),
        client_as: Arc::new(move |creds| base.sibling(creds)),
        apply: fast(),
        console: "https://pve.example.org:8006".into(),
    }
}

/// A grade history with one run of `lab` where each student failed "nginx" with a hint.
fn graded(dir: &std::path::Path, lab: &str, students: &[String]) -> std::path::PathBuf {
    let path = dir.join("stand.db");
    let outcomes: Vec<StandOutcome> = students
        .iter()
        .map(|u| StandOutcome {
            user: u.clone(),
            node: "pve1".into(),
            grades: vec![
                Grade {
                    title: "hostname".into(),
                    points: 1.0,
                    passed: true,
                    hint: None,
                    reason: None,
                    unreached: false,
                },
                Grade {
                    title: "nginx".into(),
                    points: 2.0,
                    passed: false,
                    hint: Some(format!("enable the site, {u}")),
                    reason: None,
                    unreached: false,
                },
            ],
            error: None,
            defined: Vec::new(),
        })
        .collect();
    let mut history = History::open(&path).unwrap();
    history.record(&GradeSheet::new(lab, &outcomes), "2026-11-23T10:00:00Z", "stand-sim").unwrap();
    // A later run of a lab of the same name on another cluster, where everyone passed: never
    // this class page's.
    let elsewhere: Vec<StandOutcome> = outcomes
        .iter()
        .map(|o| StandOutcome {
            grades: o.grades.iter().map(|g| Grade { passed: true, ..g.clone() }).collect(),
            ..o.clone()
        })
        .collect();
    history.record(&GradeSheet::new(lab, &elsewhere), "2026-11-23T11:00:00Z", "another-cluster").unwrap();
    path
}

/// A browser without a browser: keeps cookies, says where it connects from.
pub struct Client {
    app: Router,
    cookies: BTreeMap<String, String>,
    peer: SocketAddr,
}

impl Client {
    pub fn new(app: &Router) -> Client {
        Client { app: app.clone(), cookies: BTreeMap::new(), peer: "127.0.0.1:50000".parse().unwrap() }
    }

    pub async fn send(&mut self, mut req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req.headers_mut().insert(header::COOKIE, c.join("; ").parse().unwrap());
        }
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let resp: Response<Body> = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        for c in parts.headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn get(&mut self, uri: &str) -> (StatusCode, http::HeaderMap, String) {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub async fn form(&mut self, uri: &str, fields: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub async fn api_post(&mut self, uri: &str, csrf: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        let (status, _, text) = self.send(req.body(Body::from(body.to_string())).unwrap()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn json(&mut self, uri: &str) -> (StatusCode, Value) {
        let (status, _, text) = self.get(uri).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Logs in through the form; returns the login's status and its `Set-Cookie` headers.
    pub async fn log_in(&mut self, user: &str, password: &str) -> (StatusCode, Vec<String>) {
        let (_, _, page) = self.get("/login").await;
        let csrf = hidden(&page, "csrf");
        let (status, headers, _) =
            self.form("/login", &[("username", user), ("password", password), ("csrf", &csrf)]).await;
        let cookies = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        (status, cookies)
    }

    /// The session's CSRF token, from the page.
    pub async fn csrf(&mut self) -> String {
        let (_, _, page) = self.get("/").await;
        hidden(&page, "csrf")
    }
}

/// The value of the hidden field `name` in `page`.
pub fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn encode(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

fn students() -> Vec<String> {
    vec!["иванов@pve".to_string(), "petrova@pve".to_string()]
}

async fn vm_of(sim: &Sim, user: &str, name: &str) -> (String, u32) {
    let root = sim.session("root@pam");
    let r = root.resources(Some("vm")).await.unwrap();
    let n = format!("{name}-{}", stand::plan::latin(user.split('@').next().unwrap()));
    let vm = r.iter().find(|r| r.name.as_deref() == Some(n.as_str())).unwrap_or_else(|| panic!("{n}"));
    (vm.node.clone().unwrap(), vm.vmid.unwrap())
}

/// Advances the paused clock until `done` holds (operations run in the background).
async fn until(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("it never happened");
}

/// Log lines, captured (the test runs on one thread: the paused clock's runtime).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_student_sees_only_their_stand_acts_only_on_it_and_no_secret_leaks() {
    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // Tests on other threads run without a subscriber; a callsite they reached first may
    // have cached "never" before this one existed.
    tracing::callsite::rebuild_interest_cache();
    let sim = Sim::default_instant();
    let students = students();
    deploy(&sim, "lab3", &students, true).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        db: Some(graded(dir.path(), "lab3", &students)),
        cluster: "stand-sim".into(),
        ..ServeConfig::default()
    };
    let app = router(backend(&sim), config);
    let (a, b) = (&students[0], &students[1]);
    let mut c = Client::new(&app);

    // No session: pages send to the login, the API answers 401.
    let (status, headers, _) = c.get("/").await;
    assert_eq!((status, headers[header::LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    assert_eq!(c.json("/api/stands").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/login").await.1[header::CONTENT_TYPE], "text/html; charset=utf-8");

    // A login form without its CSRF cookie is refused; so is a wrong password, after 3 s.
    let (status, _, _) = c.form("/login", &[("username", a), ("password", PASSWORD), ("csrf", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let started = tokio::time::Instant::now();
    let (status, cookies) = c.log_in(a, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= Duration::from_secs(3), "a failed login is slowed down like pveproxy's");
    assert!(!cookies.iter().any(|c| c.starts_with("stand_session=")));

    let (status, cookies) = c.log_in(a, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = cookies.iter().find(|c| c.starts_with("stand_session=")).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=7200"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP on loopback: no Secure flag");

    // Only their own stand, in the API and on the page.
    let (status, stands) = c.json("/api/stands").await;
    assert_eq!(status, StatusCode::OK);
    let stands = stands.as_array().unwrap();
    assert_eq!(stands.len(), 1, "{stands:?}");
    assert_eq!((stands[0]["lab"].as_str(), stands[0]["user"].as_str()), (Some("lab3"), Some(a.as_str())));
    let names: Vec<&str> = stands[0]["vms"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gw-ivanov", "pc-ivanov"]);
    assert!(stands[0]["vms"].as_array().unwrap().iter().all(|v| v["status"] == "running" && v["vmid"].is_u64()));
    let (_, headers, page) = c.get("/").await;
    assert!(page.contains("gw-ivanov") && !page.contains("petrova"), "only A's stand on A's page");
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let (node, pc) = vm_of(&sim, a, "pc").await;
    let console = format!(
        "https://pve.example.org:8006/?console=kvm&novnc=1&vmid={pc}&vmname=pc-ivanov&node={node}&resize=off&cmd="
    );
    let unescaped = page.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(unescaped.contains(&format!("href=\"{console}\"")), "the noVNC console link of pc");
    assert!(page.contains("enable the site, иванов@pve"), "the hint of a failed criterion");
    assert!(page.contains("<svg") && page.contains("lan (vmbr"), "the network picture");
    let (_, grades) = c.json("/api/labs/lab3/grades").await;
    assert_eq!(grades.as_array().unwrap().len(), 1, "their own grades only: {grades}");

    // B's stand: not to be seen or touched, through pages or API.
    let csrf = c.csrf().await;
    let b_path = format!("/api/stands/lab3/{}/reset", encode(b));
    assert_eq!(c.api_post(&b_path, Some(&csrf), "").await.0, StatusCode::FORBIDDEN);
    let (status, _, _) = c.form(&format!("/stands/lab3/{}/reset", encode(b)), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(c.get(&format!("/stands/lab3/{}/network.svg", encode(b))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.get(&format!("/stands/lab3/{}/reset", encode(b))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/labs/lab3/credentials.csv").await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/labs/lab3/logins").await.0, StatusCode::FORBIDDEN, "the printable logins too");
    // Powering is the instructor's, even on one's own stand.
    let own = format!("/api/stands/lab3/{}", encode(a));
    assert_eq!(c.api_post(&format!("{own}/power/off"), Some(&csrf), "").await.0, StatusCode::FORBIDDEN);

    // Their own reset wants the CSRF token, then resets that VM and starts it again.
    let root = sim.session("root@pam");
    root.set_vm_config(&node, pc, [("memory".to_string(), "2048".to_string())].into()).await.unwrap();
    assert_eq!(c.api_post(&format!("{own}/reset"), None, r#"{"vm":"pc"}"#).await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.api_post(&format!("{own}/reset"), Some("wrong"), r#"{"vm":"pc"}"#).await.0, StatusCode::FORBIDDEN);
    let (status, started) = c.api_post(&format!("{own}/reset"), Some(&csrf), r#"{"vm":"pc"}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    until(async || c.json("/api/operations").await.1[0]["state"] == "done").await;
    let config = root.vm_config(&node, pc).await.unwrap();
    assert_eq!(config.get("memory").as_deref(), Some("512"), "back to the snapshot");
    assert_eq!(root.vm_status(&node, pc).await.unwrap().status, "running", "started again");

    // No secret in the pages, the API or the metrics.
    let ticket_prefix = "PVE:иванов@pve:";
    let mut seen = String::new();
    for uri in ["/", "/api/stands", "/api/operations", "/api/labs", "/metrics"] {
        seen.push_str(&c.get(uri).await.2);
    }
    assert!(!seen.contains(PASSWORD) && !seen.contains(ticket_prefix) && !seen.contains("PVEAuthCookie"));
    let metrics = c.get("/metrics").await.2;
    assert!(!metrics.contains(&csrf), "the CSRF token is not in the metrics");

    // Nor in the logs, which say who logged in and who failed.
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("иванов@pve logged in") && logged.contains("failed login for иванов@pve"), "{logged}");
    assert!(!logged.contains(PASSWORD) && !logged.contains("wrong-password") && !logged.contains(ticket_prefix));
    assert!(!logged.contains(&csrf));

    // Logging out wants the token too, then ends the session.
    assert_eq!(c.form("/logout", &[]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.form("/logout", &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
    assert_eq!(c.json("/api/stands").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn the_instructor_sees_the_class_and_grades_powers_a_stand_and_gets_the_credentials() {
    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let sim = Sim::default_instant();
    let students = students();
    deploy(&sim, "lab3", &students, false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lab3-credentials.csv"), "user,password,node,vms\n").unwrap();
    let config = ServeConfig {
        db: Some(graded(dir.path(), "lab3", &students)),
        cluster: "stand-sim".into(),
        credentials_dir: dir.path().to_path_buf(),
        ..ServeConfig::default()
    };
    let app = router(backend(&sim), config);

    // A student of a lab without student_reset may not reset.
    let mut student = Client::new(&app);
    student.log_in(&students[1], PASSWORD).await;
    let csrf = student.csrf().await;
    let own = format!("/api/stands/lab3/{}/reset", encode(&students[1]));
    assert_eq!(student.api_post(&own, Some(&csrf), "").await.0, StatusCode::FORBIDDEN);
    assert!(!student.get("/").await.2.contains("Reset my stand"));

    let mut teacher = Client::new(&app);
    assert_eq!(teacher.log_in(TEACHER, TEACHER_PASSWORD).await.0, StatusCode::SEE_OTHER);
    let (_, _, page) = teacher.get("/").await;
    for s in &students {
        assert!(page.contains(s.as_str()), "{s} in the class");
    }
    assert!(page.contains("Grade sheet") && page.contains("nginx") && page.contains("1 / 3"), "the grade sheet");
    assert!(page.contains("4/4 VMs running"));
    let (_, stands) = teacher.json("/api/stands").await;
    assert_eq!(stands.as_array().unwrap().len(), 2);
    let (_, labs) = teacher.json("/api/labs").await;
    assert_eq!((labs[0]["lab"].as_str(), labs[0]["instructor"].as_bool()), (Some("lab3"), Some(true)));
    let (status, _, csv) = teacher.get("/labs/lab3/credentials.csv").await;
    assert_eq!((status, csv.as_str()), (StatusCode::OK, "user,password,node,vms\n"));
    let (status, _, page) = teacher.get("/labs/lab3/logins").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no slips to print from a file without students");
    assert!(page.contains("`stand up` writes it"), "{page}");

    let csrf = teacher.csrf().await;
    let (status, _, _) =
        teacher.form(&format!("/stands/lab3/{}/power/off", encode(&students[1])), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    until(async || teacher.json("/api/operations").await.1[0]["state"] == "done").await;
    let (_, stands) = teacher.json("/api/labs/lab3/stands").await;
    let b = stands.as_array().unwrap().iter().find(|s| s["user"] == students[1].as_str()).unwrap();
    assert!(b["vms"].as_array().unwrap().iter().all(|v| v["status"] == "stopped"), "{b}");
    let (_, ops) = teacher.json("/api/operations").await;
    assert_eq!((ops[0]["kind"].as_str(), ops[0]["by"].as_str()), (Some("stop"), Some(TEACHER)));
}

#[tokio::test(start_paused = true)]
async fn a_session_ends_with_its_ticket_and_metrics_stay_on_this_host_without_the_token() {
    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let sim = Sim::default_instant();
    let students = students();
    deploy(&sim, "lab3", &students, true).await;
    let dir = tempfile::tempdir().unwrap();
    let token = "metrics-token-0123456789";
    let config = ServeConfig {
        db: Some(graded(dir.path(), "lab3", &students)),
        cluster: "stand-sim".into(),
        metrics_token: Some(stand::pve::Secret::new(token)),
        ..ServeConfig::default()
    };
    let app = router(backend(&sim), config);
    let mut c = Client::new(&app);
    c.log_in(&students[0], PASSWORD).await;
    assert_eq!(c.json("/api/stands").await.0, StatusCode::OK);
    // The server's own connection renews its ticket as it goes; the person's does not.
    tokio::time::advance(Duration::from_secs(95 * 60)).await;
    assert_eq!(c.get("/metrics").await.0, StatusCode::OK);
    assert_eq!(c.json("/api/stands").await.0, StatusCode::OK, "still within the ticket's two hours");
    tokio::time::advance(Duration::from_secs(25 * 60 + 1)).await;
    assert_eq!(c.json("/api/stands").await.0, StatusCode::UNAUTHORIZED, "the ticket's two hours are over");
    let (status, headers, _) = c.get("/").await;
    assert_eq!((status, headers[header::LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));

    // Loopback reads the metrics; another host needs the token.
    let (status, _, text) = c.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let (_, gw) = vm_of(&sim, &students[0], "gw").await;
    for line in [
        "pve_up{id=\"node/pve1\"} 1.0".to_string(),
        format!("stand_info{{lab=\"lab3\",user=\"иванов@pve\",id=\"qemu/{gw}\"}} 1.0"),
        "stand_grade_points{lab=\"lab3\",user=\"petrova@pve\"} 1.0".to_string(),
        "stand_grade_max_points{lab=\"lab3\",user=\"petrova@pve\"} 3.0".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let guest = format!("pve_guest_info{{id=\"qemu/{gw}\",node=");
    assert!(text.lines().any(|l| l.starts_with(&guest) && l.contains("type=\"qemu\",template=\"0\",tags=\"")));
    assert!(
        text.contains("pve_memory_usage_bytes{id=\"qemu/") && text.contains("pve_uptime_seconds{id=\"node/pve1\"}")
    );
    assert!(text.contains("stand_http_requests_total{method=\"GET\",route=\"/api/stands\",status=\"401\"}"));

    let mut remote = Client::new(&app);
    remote.peer = "192.0.2.7:40000".parse().unwrap();
    assert_eq!(remote.get("/metrics").await.0, StatusCode::FORBIDDEN);
    let req =
        |t: &str| Request::get("/metrics").header(header::AUTHORIZATION, format!("Bearer {t}")).body(Body::empty());
    assert_eq!(remote.send(req("wrong").unwrap()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(remote.send(req(token).unwrap()).await.0, StatusCode::OK);

    // Without a token configured, nobody off this host gets them.
    let open = router(backend(&sim), ServeConfig::default());
    let mut remote = Client::new(&open);
    remote.peer = "192.0.2.7:40000".parse().unwrap();
    assert_eq!(remote.get("/metrics").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test(start_paused = true)]
async fn a_hundred_students_polling_cost_the_cluster_what_one_does() {
    let _one_at_a_time = super::common::SERVE_IN_PROCESS.lock().await;
    let sim = Sim::default_instant();
    let students: Vec<String> = (1..=100).map(|i| format!("student{i:03}@pve")).collect();
    deploy(&sim, "big", &students, true).await;
    let app = router(backend(&sim), ServeConfig::default());
    let mut clients = Vec::new();
    for s in &students {
        let mut c = Client::new(&app);
        assert_eq!(c.log_in(s, PASSWORD).await.0, StatusCode::SEE_OTHER);
        c.get("/").await; // the first page asks PVE what this person may see
        clients.push(c);
    }
    // Every student polls their page every 2 s for a minute.
    let before = sim.stats().requests;
    for _ in 0..30 {
        tokio::time::advance(Duration::from_secs(2)).await;
        for c in clients.iter_mut() {
            let (status, _, page) = c.get("/").await;
            assert_eq!(status, StatusCode::OK);
            assert!(page.contains("gw-student"));
        }
    }
    let requests = sim.stats().requests - before;
    // One shared `/cluster/resources` per 2 s, and the people's permissions asked again
    // once after 5 minutes at most: 3000 page views cost a few dozen requests, not 3000.
    assert!(requests <= 30 + 5, "{requests} PVE requests for 3000 page views");
}
