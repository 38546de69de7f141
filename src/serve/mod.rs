//! `stand serve`: the class's web page and API for students and instructors, and
//! Prometheus metrics, over the same [`Pve`] client as every other command.
//!
//! People log in with their own Proxmox VE credentials (`auth.rs`); what each may see is
//! what PVE shows them, and what they do runs with their own ticket, so PVE checks it again
//! (`access.rs`). Cluster reads are shared and cached (`view.rs`): many students polling
//! cost pveproxy the same few requests. Pages are server-rendered from templates shipped in
//! the binary (`pages.rs`, `assets/`); the JSON API is `api.rs`; resets and power run as
//! action graphs in the background (`ops.rs`); `/metrics` is `metrics.rs`.

mod access;
mod api;
mod auth;
mod grades;
mod logins;
mod metrics;
mod ops;
mod pages;
mod picture;
pub mod session;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::apply::ApplyOptions;
use crate::pve::{Credentials, Pve, PveClient, Secret};
pub use logins::{by_name, logins_page};
pub use view::{ClassView, ClusterView, Freshness, StandView};

/// Makes a client that acts as a person (with their password at login, their ticket after).
pub type ClientAs = Arc<dyn Fn(Credentials) -> PveClient + Send + Sync>;

/// The cluster `stand serve` talks to.
pub struct Backend {
    /// `stand`'s own connection (token or `root@pam` on the simulator): shared reads only.
    pub pve: Arc<dyn Pve>,
    /// Clients that act as the logged-in person.
    pub client_as: ClientAs,
    /// Task waits and retries of the operations people start.
    pub apply: ApplyOptions,
    /// The PVE web UI the console links open (`https://HOST:8006`).
    pub console: String,
}

/// How `stand serve` behaves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The labs shown (all when empty).
    pub labs: Vec<String>,
    /// How fresh the shared reads are.
    pub fresh: Freshness,
    /// The grade history (`stand check`'s database), when there is one.
    pub db: Option<PathBuf>,
    /// The cluster served (`Pve::cluster_identity`): only its grades are shown.
    pub cluster: String,
    /// Where `<lab>-credentials.csv` files are (the instructor downloads them).
    pub credentials_dir: PathBuf,
    /// Served over TLS: cookies get `Secure`.
    pub tls: bool,
    /// The bearer token `/metrics` wants from anyone but loopback (`--metrics-token-file`).
    pub metrics_token: Option<Secret>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            labs: Vec::new(),
            fresh: Freshness::default(),
            db: None,
            cluster: String::new(),
            credentials_dir: PathBuf::from("."),
            tls: false,
            metrics_token: None,
        }
    }
}

/// Everything a request handler reaches.
pub struct App {
    backend: Backend,
    config: ServeConfig,
    sessions: session::Sessions,
    view: ClusterView,
    ops: ops::Operations,
    metrics: metrics::HttpMetrics,
    pages: pages::Templates,
    grades: grades::Grades,
    realms: tokio::sync::OnceCell<Vec<String>>,
}

/// The whole service: pages, API, metrics. Serve it with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>`) so `/metrics` knows who asks.
pub fn router(backend: Backend, config: ServeConfig) -> Router {
    let view = ClusterView::new(backend.pve.clone(), config.labs.clone(), config.fresh);
    let app = Arc::new(App {
        grades: grades::Grades::new(config.db.clone(), config.cluster.clone()),
        realms: tokio::sync::OnceCell::new(),
        backend,
        config,
        sessions: session::Sessions::default(),
        view,
        ops: ops::Operations::default(),
        metrics: metrics::HttpMetrics::default(),
        pages: pages::Templates::new(),
    });
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/", get(pages::home))
        .route("/stands/{lab}/{user}/reset", get(pages::confirm_reset).post(pages::reset))
        .route("/stands/{lab}/{user}/power/{op}", post(pages::power))
        .route("/stands/{lab}/{user}/network.svg", get(pages::network))
        .route("/labs/{lab}/credentials.csv", get(pages::credentials))
        .route("/labs/{lab}/logins", get(pages::logins))
        .route("/labs/{lab}/uplinks/{op}", post(pages::uplinks))
        .route("/assets/{file}", get(pages::asset))
        .route("/api/stands", get(api::stands))
        .route("/api/labs", get(api::labs))
        .route("/api/labs/{lab}/stands", get(api::lab_stands))
        .route("/api/labs/{lab}/grades", get(api::grades))
        .route("/api/operations", get(api::operations))
        .route("/api/stands/{lab}/{user}/reset", post(api::reset))
        .route("/api/stands/{lab}/{user}/power/{op}", post(api::power))
        .route("/metrics", get(metrics::metrics))
        .layer(axum::middleware::from_fn_with_state(app.clone(), metrics::track))
        .with_state(app)
}

/// Whether plain HTTP may listen on `addr` (only loopback: passwords cross it).
pub fn plain_http_allowed(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
