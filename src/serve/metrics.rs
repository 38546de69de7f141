//! `GET /metrics`: the cluster in prometheus-pve-exporter's names (so its dashboards work),
//! each lab VM's stand, the latest grades, and this server's own requests. Served to
//! loopback, and to others only with the bearer token of `--metrics-token-file`.
//!
//! Families and labels follow prometheus-pve-exporter (`collector/cluster.py`): `pve_up`,
//! `pve_guest_info{id,node,name,type,template,tags}`, `pve_node_info`, `pve_memory_*`,
//! `pve_cpu_usage_*`, `pve_uptime_seconds`, `pve_disk_size_bytes`, with ids `node/pve1`,
//! `qemu/100`, `storage/pve1/local`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::App;

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// This server's own requests.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<Labels, Counter>,
    seconds: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics { requests: Family::default(), seconds: Family::new_with_constructor(new_histogram) }
    }
}

/// Middleware: counts and times every request by route template, method and status.
pub async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "other".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = vec![("method".to_string(), method), ("route".to_string(), route)];
    app.metrics.seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    let mut with_status = labels;
    with_status.push(("status".into(), status));
    app.metrics.requests.get_or_create(&with_status).inc();
    resp
}

fn label(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Whether the request may read the metrics: from loopback, or with the token.
fn allowed(app: &App, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    if peer.is_some_and(|p| p.ip().is_loopback()) {
        return true;
    }
    let Some(token) = &app.config.metrics_token else { return false };
    let sent = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    sent.is_some_and(|s| Sha256::digest(s.trim().as_bytes()) == Sha256::digest(token.expose().as_bytes()))
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Arc<App>>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(p)| *p);
    if !allowed(&app, peer, req.headers()) {
        let why = match app.config.metrics_token {
            Some(_) => "metrics need `Authorization: Bearer <token>` from outside this host",
            None => "metrics are served to this host only; start with --metrics-token-file to open them",
        };
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let mut registry = Registry::default();
    let mut family = |name: &str, help: &str| {
        let g = Gauges::default();
        registry.register(name, help, g.clone());
        g
    };
    let up = family("pve_up", "Node/VM/CT-Status is online/running");
    let guest_info = family("pve_guest_info", "VM/CT info");
    let node_info = family("pve_node_info", "Node info");
    let mem = family("pve_memory_usage_bytes", "Used memory in bytes (for types 'node', 'qemu' and 'lxc').");
    let maxmem =
        family("pve_memory_size_bytes", "Number of available memory in bytes (for types 'node', 'qemu' and 'lxc').");
    let cpu = family("pve_cpu_usage_ratio", "CPU utilization (for types 'node', 'qemu' and 'lxc').");
    let maxcpu = family("pve_cpu_usage_limit", "Number of available CPUs (for types 'node', 'qemu' and 'lxc').");
    let uptime = family(
        "pve_uptime_seconds",
        "Uptime of node or virtual guest in seconds (for types 'node', 'qemu' and 'lxc').",
    );
    let disk = family(
        "pve_disk_size_bytes",
        "Storage size in bytes (for type 'storage'), root image size for VMs (for types 'qemu' and 'lxc').",
    );
    let stand_info = family("stand_info", "A lab VM and the stand it belongs to");
    let points = family("stand_grade_points", "Points of the student's latest `stand check`");
    let max_points = family("stand_grade_max_points", "Points possible in the student's latest `stand check`");
    let sessions = family("stand_sessions", "People logged in to stand serve");
    registry.register("stand_http_requests", "Requests this server answered", app.metrics.requests.clone());
    registry.register("stand_http_request_duration_seconds", "Time to answer a request", app.metrics.seconds.clone());

    let up_ok = match app.view.class().await {
        Ok(class) => {
            for r in class.resources.iter() {
                let id = [("id", r.id.as_str())];
                let set = |f: &Gauges, v: f64| f.get_or_create(&label(&id)).set(v);
                match r.kind.as_str() {
                    "node" => {
                        set(&up, f64::from(r.status.as_deref() == Some("online")));
                        let name = r.node.as_deref().unwrap_or_default();
                        node_info.get_or_create(&label(&[("id", &r.id), ("level", ""), ("name", name)])).set(1.0);
                    }
                    "qemu" | "lxc" => {
                        set(&up, f64::from(r.status.as_deref() == Some("running")));
                        let tags = r.tags.clone().unwrap_or_default();
                        let template = if r.template { "1" } else { "0" };
                        guest_info
                            .get_or_create(&label(&[
                                ("id", &r.id),
                                ("node", r.node.as_deref().unwrap_or_default()),
                                ("name", r.name.as_deref().unwrap_or_default()),
                                ("type", &r.kind),
                                ("template", template),
                                ("tags", &tags),
                            ]))
                            .set(1.0);
                    }
                    "storage" => {
                        set(&up, f64::from(r.status.as_deref() == Some("available")));
                    }
                    _ => continue,
                }
                if r.kind != "storage" {
                    set(&mem, r.mem as f64);
                    set(&maxmem, r.maxmem as f64);
                    set(&cpu, r.cpu);
                    set(&maxcpu, r.maxcpu as f64);
                    set(&uptime, r.uptime as f64);
                }
                set(&disk, r.maxdisk as f64);
            }
            for s in &class.stands {
                for vm in &s.vms {
                    let id = format!("qemu/{}", vm.vmid);
                    stand_info.get_or_create(&label(&[("lab", &s.lab), ("user", &s.user), ("id", &id)])).set(1.0);
                }
            }
            for lab in class.labs.keys() {
                for l in app.grades.latest(lab).await.iter() {
                    let who = label(&[("lab", lab), ("user", &l.run.user)]);
                    points.get_or_create(&who).set(l.run.total);
                    max_points.get_or_create(&who).set(l.run.max);
                }
            }
            true
        }
        Err(e) => {
            tracing::warn!("metrics: the cluster did not answer: {e}");
            false
        }
    };
    sessions.get_or_create(&Vec::new()).set(app.sessions.count() as f64);
    let reachable = Gauges::default();
    registry.register("stand_cluster_reachable", "Whether the last read of the cluster succeeded", reachable.clone());
    reachable.get_or_create(&Vec::new()).set(f64::from(up_ok));
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}")).into_response();
    }
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
