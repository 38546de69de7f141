//! `stand sim serve`: the simulator as a Proxmox VE API over HTTPS at `/api2/json`, with a
//! self-signed certificate made at start, ticket + CSRF and API-token authentication,
//! PVE's error shapes (reason phrase and `message`), and injected connection faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::access::Identity;
use super::core::{Sim, TransportFault};
use crate::pve::{ApiFailure, Method, Params, cert_fingerprint};

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
        async move { handle_http(sim, req).await }
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

fn reply(
    status: u16,
    reason: Option<&str>,
    body: Value,
    extra_headers: &[(header::HeaderName, String)],
) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json;charset=UTF-8"));
    resp.headers_mut().insert(header::SERVER, header::HeaderValue::from_static("pve-api-daemon/3.0"));
    for (k, v) in extra_headers {
        if let Ok(v) = header::HeaderValue::from_str(v) {
            resp.headers_mut().insert(k.clone(), v);
        }
    }
    if let Some(r) = reason {
        let first_line = r.lines().next().unwrap_or_default().to_string();
        if let Ok(rp) = hyper::ext::ReasonPhrase::try_from(first_line.into_bytes()) {
            resp.extensions_mut().insert(rp);
        }
    }
    resp
}

fn failure_reply(f: &ApiFailure) -> Response<Body> {
    let mut body = json!({ "data": null, "message": format!("{}\n", f.message.trim_end()) });
    if !f.errors.is_empty() {
        body["errors"] = json!(f.errors);
    }
    reply(f.status, Some(&f.message), body, &[])
}

fn parse_form(bytes: &[u8]) -> Params {
    url_pairs(&String::from_utf8_lossy(bytes))
}

fn url_pairs(s: &str) -> Params {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |x: &str| {
                urlencoding::decode(&x.replace('+', " ")).map(|c| c.into_owned()).unwrap_or_else(|_| x.to_string())
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn json_params(bytes: &[u8]) -> Params {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => {
                            if *b {
                                "1".into()
                            } else {
                                "0".into()
                            }
                        }
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| urlencoding::decode(v).map(|s| s.into_owned()).unwrap_or_else(|_| v.to_string()))
    })
}

enum Auth {
    Anonymous,
    Ok(Identity),
    Failed(&'static str),
}

fn authenticate(sim: &Sim, headers: &HeaderMap, method: Method) -> Auth {
    let now = { sim.state().unix(sim.now_ms()) };
    let authz = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if let Some(i) = authz.find("PVEAPIToken") {
        let rest = &authz[i + "PVEAPIToken".len()..];
        let value = rest.trim_start_matches(['=', ' ']).split(';').next().unwrap_or_default();
        let value = urlencoding::decode(value).map(|s| s.into_owned()).unwrap_or_else(|_| value.to_string());
        return match sim.state().verify_token(&value, now) {
            Some(id) => Auth::Ok(id),
            None => Auth::Failed("Authentication failed!"),
        };
    }
    let ticket = cookie(headers, "PVEAuthCookie").or_else(|| {
        authz.strip_prefix("PVEAuthCookie=").map(|t| urlencoding::decode(t).map(|s| s.into_owned()).unwrap_or_default())
    });
    let Some(ticket) = ticket else { return Auth::Anonymous };
    let st = sim.state();
    let Some(user) = st.verify_ticket(&ticket, now) else { return Auth::Failed("Authentication failed!") };
    if !method.is_read() {
        let csrf = headers.get("CSRFPreventionToken").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !st.verify_csrf(&user, csrf, now) {
            return Auth::Failed("Permission denied - invalid csrf token");
        }
    }
    Auth::Ok(Identity::user(&user))
}

async fn handle_http(sim: Sim, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let method = match parts.method.as_str() {
        "GET" | "HEAD" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => return Ok(failure_reply(&ApiFailure::new(501, format!("Method '{other}' not implemented")))),
    };
    let bytes = axum::body::to_bytes(Body::new(body), 16 << 20).await.unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let mut params = parts.uri.query().map(url_pairs).unwrap_or_default();
    let is_json =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    params.extend(if is_json { json_params(&bytes) } else { parse_form(&bytes) });
    sim.log_request(method, &raw_path, &params);
    tracing::debug!(%method, path = %raw_path, "request");

    let Some(path) =
        raw_path.strip_prefix("/api2/json").map(|p| if p.is_empty() { "/".to_string() } else { p.to_string() })
    else {
        return Ok(reply(404, Some("Not Found"), json!({ "data": null }), &[]));
    };
    let latency = sim.request_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = sim.roll_transport_fault();
    match fault {
        Some(TransportFault::Busy(status)) => {
            let msg = if status == 596 { "Broken pipe" } else { "proxy handler failed: node busy" };
            return Ok(failure_reply(&ApiFailure::new(status, msg)));
        }
        Some(TransportFault::ResetBefore) => return Err(std::io::Error::other("injected connection reset")),
        _ => {}
    }
    let who = match authenticate(&sim, &parts.headers, method) {
        Auth::Ok(id) => Some(id),
        Auth::Anonymous => None,
        Auth::Failed(msg) => {
            let delay = Duration::from_secs_f64(3.0 * sim.options().time_scale.min(1.0));
            tokio::time::sleep(delay).await;
            return Ok(failure_reply(&ApiFailure::new(401, msg)));
        }
    };
    let result = sim.handle(who.as_ref(), method, &path, &params);
    if fault == Some(TransportFault::ResetAfter) {
        return Err(std::io::Error::other("injected connection reset"));
    }
    Ok(match result {
        Ok(r) => reply(200, None, r.into_body(), &[]),
        Err(f) => {
            if f.status == 401 {
                let delay = Duration::from_secs_f64(3.0 * sim.options().time_scale.min(1.0));
                tokio::time::sleep(delay).await;
            }
            failure_reply(&f)
        }
    })
}
