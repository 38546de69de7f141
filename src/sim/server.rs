//! `stand sim serve`: the simulator as a Proxmox VE API over HTTPS at `/api2/json`, with a
//! self-signed certificate made at start. What it answers is the [`front`](super::front)'s,
//! the same as in process.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};

use super::core::Sim;
use super::front::{Dropped, answer};
use crate::pve::cert_fingerprint;

/// A running HTTPS simulator.
pub struct RunningServer {
    /// `https://127.0.0.1:PORT` (no `/api2/json`).
    pub url: String,
    /// SHA-256 fingerprint of the certificate, `AA:BB:...`.
    pub fingerprint: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The root token `root@pam!stand=<uuid>`.
    pub token: String,
    handle: axum_server::Handle,
}

impl RunningServer {
    /// Stops serving.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Server start failures.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Certificate generation or TLS setup.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// Binding the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Starts serving `sim` on `addr` (port 0 picks a free one) and returns once it listens.
pub async fn serve(sim: Sim, addr: SocketAddr) -> Result<RunningServer, ServeError> {
    let names = vec!["localhost".to_string(), addr.ip().to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| ServeError::Tls(e.to_string()))?;
    let cert_der = cert.cert.der().to_vec();
    let key_der = cert.key_pair.serialize_der();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert_der.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    let secret = sim
        .add_token("root@pam", "stand", false)
        .ok_or_else(|| ServeError::Tls("root@pam is missing from the fixture".into()))?;
    sim.state().tls_fingerprint = Some(cert_fingerprint(&cert_der));
    let handle = axum_server::Handle::new();
    let server_sim = sim.clone();
    let service = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let sim = server_sim.clone();
        async move { over_https(sim, req).await }
    });
    let std_listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    std_listener.set_nonblocking(true).map_err(|source| ServeError::Bind { addr, source })?;
    let local = std_listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    let server = axum_server::from_tcp_rustls(std_listener, tls).handle(handle.clone());
    tokio::spawn(async move {
        if let Err(e) = server.serve(tower::make::Shared::new(service)).await {
            tracing::error!("simulator server stopped: {e}");
        }
    });
    Ok(RunningServer {
        url: format!("https://{local}"),
        fingerprint: cert_fingerprint(&cert_der),
        cert_pem: cert.cert.pem(),
        token: format!("root@pam!stand={secret}"),
        handle,
    })
}

/// One exchange over HTTPS: the body read, answered by the front; a dropped answer closes
/// the connection.
async fn over_https(sim: Sim, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    // pveproxy's limit on a request body is far lower; 16 MiB keeps a bad client bounded.
    let bytes = Limited::new(body, 16 << 20).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    match answer(&sim, Request::from_parts(parts, bytes.to_vec())).await {
        Ok(resp) => Ok(resp.map(|b| Full::new(Bytes::from(b)))),
        Err(Dropped) => Err(std::io::Error::other("injected connection reset")),
    }
}
