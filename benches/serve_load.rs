//! `cargo bench --bench serve_load`: 100 students polling their `stand serve` page every
//! 2 s for 60 s (`STAND_LOAD_SECONDS` to change), over real HTTP, against the simulator
//! served over HTTPS (`sim serve`). Prints the page latencies (p50, p99, max), the errors,
//! and the Proxmox VE API requests per second it caused. Never fails on a slow machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stand::apply::{ApplyOptions, apply};
use stand::plan::Snapshot;
use stand::pve::{ClientOptions, Credentials, Pve, PveClient, TlsMode, WaitPolicy};
use stand::script::{RunOptions, run_source};
use stand::serve::{Backend, ServeConfig, router};
use stand::sim::{Fixture, Sim, SimOptions};

const STUDENTS: usize = 100;
const PASSWORD: &str = "Student-pass-1";

fn script() -> String {
    format!(
        "lab(#{{ vmid_range: [3000, 9999], student_reset: true }});
        for i in 1..={STUDENTS} {{ let user = create_user(`s${{i}}@pve`); place_balanced(user); let lan = alias(user, \"lan\");
            clone(user, #{{ template: \"ecorouter\", name: \"gw\", device: \"ecorouter\", nets: [\"vmbr0\", lan], memory: 256 }});
            clone(user, #{{ template: \"debian-12\", name: \"pc\", nets: [lan], memory: 256 }}); }}"
    )
}

/// The value of cookie `name` in a response's `Set-Cookie` headers.
fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (kv, _) = c.split_once(';').unwrap_or((c, ""));
        kv.strip_prefix(&format!("{name}=")).filter(|v| !v.is_empty()).map(str::to_string)
    })
}

async fn log_in(http: &reqwest::Client, base: &str, user: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.expect("login page");
    let nonce = cookie(&form, "stand_login").expect("login cookie");
    let page = form.text().await.expect("login page");
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = &page[at..at + page[at..].find('"').expect("csrf value")];
    let resp = http
        .post(format!("{base}/login"))
        .header("cookie", format!("stand_login={nonce}"))
        .form(&[("username", user), ("password", PASSWORD), ("csrf", csrf)])
        .send()
        .await
        .expect("login");
    cookie(&resp, "stand_session").unwrap_or_else(|| panic!("{user} could not log in: {}", resp.status()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("STAND_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    // The cluster: `sim serve` over HTTPS, operations instant (only the reads matter here).
    let sim = Sim::new(&Fixture::default_cluster(), SimOptions::default());
    let server = stand::sim::serve(sim.clone(), "127.0.0.1:0".parse().expect("address")).await.expect("sim serve");
    let tls = TlsMode::Pinned(server.fingerprint.clone());
    let token = Credentials::from_token(&server.token).expect("token");
    let service = PveClient::new(&server.url, token, &tls, ClientOptions::default()).expect("client");
    let pve: Arc<dyn Pve> = Arc::new(service.sibling(Credentials::from_token(&server.token).expect("token")));
    let snap = Arc::new(Snapshot::take(&*pve).await.expect("snapshot"));
    let opts = RunOptions { lab: Some("load".into()), ..RunOptions::default() };
    let mut plan = run_source("load", std::path::Path::new("."), &script(), snap.clone(), &opts).expect("plan").plan;
    for u in plan.users.iter_mut().filter(|u| u.new_password) {
        u.password = Some(PASSWORD.into());
    }
    let fast = ApplyOptions {
        wait: WaitPolicy { first: Duration::from_millis(5), max: Duration::from_millis(20), ..WaitPolicy::default() },
        ..ApplyOptions::default()
    };
    let report = apply(pve.clone(), &plan, snap, &fast).await;
    assert!(report.failures.is_empty(), "deploying the class failed: {:?}", report.failures);

    // `stand serve` as an instructor runs it: its own token, people's tickets.
    let base_client = service;
    let backend = Backend {
        pve,
        client_as: Arc::new(move |creds| base_client.sibling(creds)),
        apply: fast,
        console: server.url.clone(),
    };
    let app = router(backend, ServeConfig::default()).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum_server::from_tcp(listener).serve(app).await });

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
    let mut sessions = Vec::new();
    for i in 1..=STUDENTS {
        sessions.push(log_in(&http, &base, &format!("s{i}@pve")).await);
    }
    // Each student's first page asks PVE what they may see (twice), and the first one reads
    // who owns what: the cost of a class arriving, measured apart.
    let arrive = sim.stats().requests;
    for session in &sessions {
        let resp = http.get(format!("{base}/")).header("cookie", format!("stand_session={session}")).send().await;
        assert!(resp.is_ok_and(|r| r.status().is_success()), "a first page");
    }
    let arrival = sim.stats().requests - arrive;
    let before = sim.stats().requests;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, session) in sessions.into_iter().enumerate() {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            // Spread the students over the 2 s period, as a class would be.
            tokio::time::sleep(Duration::from_millis((i as u64 * 2000) / STUDENTS as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let (mut times, mut errors) = (Vec::new(), 0usize);
            let end = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < end {
                tick.tick().await;
                let t = Instant::now();
                let resp =
                    http.get(format!("{base}/")).header("cookie", format!("stand_session={session}")).send().await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let body = r.text().await.unwrap_or_default();
                        if body.contains("gw-s") {
                            times.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let (mut times, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (t, e) = t.await.expect("a student's task");
        times.extend(t);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = sim.stats().requests - before;
    times.sort();
    println!("stand serve under load: {STUDENTS} students, a page every 2 s each, {seconds} s");
    println!(
        "  {} pages, {errors} errors; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!("  a class of {STUDENTS} arriving (first page each): {arrival} PVE API requests");
    println!(
        "  then PVE API requests: {requests} in {elapsed:.0} s = {:.2}/s ({:.3} per page view; without the shared cache every view would cost at least 1)",
        requests as f64 / elapsed,
        requests as f64 / times.len().max(1) as f64
    );
    server.shutdown();
}
