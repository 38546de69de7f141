//! `stand serve`: starts the class's web page (`crate::serve`) on the opened cluster, over
//! TLS or on loopback, until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::arguments::{ApplyArgs, LabInput};
use super::sim_state::{Published, Rendezvous, publish};
use super::target::Cluster;
use super::up::timing;
use super::{Usage, exit};
use crate::pve::{PveExt, Secret};
use crate::serve::{Backend, ServeConfig, router};

/// What `stand serve` was asked.
pub struct ServeArgs<'a> {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--lab`.
    pub labs: &'a [String],
    /// `--tls-cert`, `--tls-key`.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// `--metrics-token-file`.
    pub metrics_token_file: Option<&'a Path>,
    /// `--db`.
    pub db: Option<PathBuf>,
    /// `--credentials-dir`.
    pub credentials_dir: &'a Path,
    /// `--console-url`.
    pub console_url: Option<&'a str>,
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Usage(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Usage(format!("--tls-cert {}: no certificate in it", cert.display())).into());
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Usage(format!("--tls-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Usage(format!("--tls-cert/--tls-key do not match or cannot be used: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn metrics_token(path: &Path) -> anyhow::Result<Secret> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Usage(format!("--metrics-token-file {}: {e}", path.display())))?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(Usage(format!(
            "--metrics-token-file {}: the token must have at least 16 characters (e.g. `openssl rand -hex 24`)",
            path.display()
        ))
        .into());
    }
    Ok(Secret::new(token))
}

/// The simulated instructor of `stand serve --sim` (a simulated cluster only).
pub const DEMO_TEACHER: (&str, &str) = ("teacher@pve", "teacher-demo-1");

/// On the simulator: an instructor account (Administrator, a known password), and when the
/// cluster has no lab yet, the demo class deployed, so the page has something to show.
async fn prepare_demo(cluster: &Cluster, credentials_dir: &Path) -> anyhow::Result<()> {
    let Some(sim) = cluster.sim() else { return Ok(()) };
    let root = sim.session("root@pam");
    let (teacher, password) = DEMO_TEACHER;
    if !root.users().await?.iter().any(|u| u.userid == teacher) {
        root.create_user(teacher, Some(password), Some("stand serve --sim: the demo instructor")).await?;
        root.set_acl("/", "Administrator", Some(teacher), None, false).await?;
    }
    if super::up::snapshot(cluster).await?.labs().is_empty() {
        let dir = super::sim_cmd::state_dir().join("serve-demo");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let script = dir.join("demo.rhai");
        std::fs::write(&script, include_str!("serve_demo.rhai"))
            .with_context(|| format!("cannot write {}", script.display()))?;
        crate::errln!("the simulated cluster has no lab: deploying the demo class ({})", script.display());
        let input = LabInput {
            lab: Some(script),
            legacy: None,
            users: None,
            group: None,
            only: Vec::new(),
            lab_name: None,
            overcommit: None,
        };
        let apply = ApplyArgs {
            dry_run: false,
            reset_passwords: false,
            per_node: 6,
            per_storage: 4,
            apply_foreign_network: false,
            credentials: Some(credentials_dir.join("demo-credentials.csv")),
            prune: false,
            yes: false,
            show_passwords: false,
        };
        super::up::up(cluster, &input, &apply, true).await?;
        cluster.save()?;
    }
    crate::errln!(
        "simulated cluster: log in as {teacher} / {password} (instructor), or as a student with a password from <lab>-credentials.csv"
    );
    Ok(())
}

/// On `--sim`, while the class page runs, other `stand` commands work on the same simulated
/// cluster: it is served over HTTPS on loopback (its address left beside the saved state for
/// them) and saved every few seconds, so nothing they or the page do is lost.
async fn share_simulated(cluster: &Cluster) -> anyhow::Result<Option<(crate::sim::RunningServer, Published)>> {
    let (Some(sim), Some(state)) = (cluster.sim(), cluster.sim_state()) else { return Ok(None) };
    let server = crate::sim::serve(sim.clone(), "127.0.0.1:0".parse()?).await?;
    let password = crate::plan::generate_password(24);
    sim.set_password("root@pam", &password);
    let at = Rendezvous {
        url: server.url.clone(),
        fingerprint: server.fingerprint.clone(),
        password,
        pid: std::process::id(),
        time_scale: sim.options().time_scale,
        seed: sim.options().seed,
        fixture_digest: sim.state().fixture_digest.clone(),
    };
    let published = publish(state, &at)?;
    let (sim, state) = (sim.clone(), state.to_path_buf());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            if let Err(e) = sim.save(&state) {
                tracing::warn!("cannot save the simulated cluster to {}: {e}", state.display());
            }
        }
    });
    Ok(Some((server, published)))
}

/// Resolves on Ctrl-C or SIGTERM (a service manager stopping the server).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `stand serve`.
pub async fn serve(cluster: &Cluster, args: ServeArgs<'_>) -> anyhow::Result<u8> {
    let tls = args.tls.map(|(cert, key)| tls_config(cert, key)).transpose()?;
    if tls.is_none() && !crate::serve::plain_http_allowed(&args.listen) {
        return Err(Usage(format!(
            "plain HTTP only listens on loopback (people's passwords cross it): use --listen 127.0.0.1:{}, or give --tls-cert and --tls-key",
            args.listen.port()
        ))
        .into());
    }
    let metrics_token = args.metrics_token_file.map(metrics_token).transpose()?;
    let console = match (args.console_url, &cluster.connection) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(conn)) => conn.url.trim_end_matches('/').trim_end_matches("/api2/json").to_string(),
        (None, None) => "https://localhost:8006".into(),
    };
    prepare_demo(cluster, args.credentials_dir).await?;
    let labs: Vec<String> = args.labs.iter().map(|l| super::lab::lab_name(l)).collect();
    if !labs.is_empty() {
        let there = super::up::snapshot(cluster).await?.labs();
        if let Some(missing) = labs.iter().find(|l| !there.contains(*l)) {
            anyhow::bail!("--lab: {}", super::suggest::not_found("lab", missing, there.iter().map(String::as_str)));
        }
    }
    let backend =
        Backend { pve: cluster.pve.clone(), client_as: cluster.client_as()?, apply: timing(cluster), console };
    let _shared = share_simulated(cluster).await?;
    let identity = cluster.pve.cluster_identity().await.context("cannot read which cluster this is")?;
    let config = ServeConfig {
        labs,
        db: args.db,
        cluster: identity,
        credentials_dir: args.credentials_dir.to_path_buf(),
        tls: tls.is_some(),
        metrics_token,
        ..ServeConfig::default()
    };
    let app = router(backend, config).into_make_service_with_connect_info::<SocketAddr>();
    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    crate::outln!("{scheme}://{local}/");
    crate::errln!("stand serve: {scheme}://{local}/ (metrics at /metrics; Ctrl-C stops)");
    // A ticket login renews itself on use; a night without visitors must not let it lapse.
    let keep = cluster.pve.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(20 * 60)).await;
            if let Err(e) = keep.version().await {
                tracing::warn!("the cluster did not answer: {e}");
            }
        }
    });
    let stop = handle.clone();
    tokio::spawn(async move {
        stopped().await;
        stop.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    match tls {
        Some(config) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
            axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app).await?
        }
        None => axum_server::from_tcp(listener).handle(handle).serve(app).await?,
    }
    Ok(exit::OK)
}
