//! [`PveClient`]: the [`Pve`] trait over HTTPS with reqwest + rustls. Form-encoded
//! parameters, the `{"data": ...}` envelope, API-token or ticket auth (renewed before its
//! 2-hour lifetime ends), and bounded retries that never blindly repeat a write.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::api::Pve;
use super::error::{ApiFailure, PveError};
use super::request::{ApiRequest, Method};
use super::retry::{Backoff, retryable};
use super::tls::{TlsMode, client_config};
use super::types::TicketInfo;

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the client authenticates.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// `Authorization: PVEAPIToken=USER@REALM!ID=SECRET`.
    Token {
        /// `user@realm!tokenid`.
        id: String,
        /// The token's UUID.
        secret: Secret,
    },
    /// Ticket login with `POST /access/ticket`.
    Password {
        /// `user@realm`.
        user: String,
        /// The password.
        password: Secret,
    },
}

impl Credentials {
    /// Parses `user@realm!tokenid=secret` (split at the last `=`, like PVE).
    pub fn from_token(value: &str) -> Result<Credentials, String> {
        let (id, secret) = value.rsplit_once('=').ok_or("PVE_TOKEN must look like user@realm!tokenid=secret")?;
        let (user, tokenid) = id
            .split_once('!')
            .ok_or("PVE_TOKEN must look like user@realm!tokenid=secret (the '!tokenid' part is missing)")?;
        if !user.contains('@') || tokenid.is_empty() || secret.is_empty() {
            return Err("PVE_TOKEN must look like user@realm!tokenid=secret".into());
        }
        Ok(Credentials::Token { id: id.to_string(), secret: Secret::new(secret) })
    }

    /// Who the credentials are for.
    pub fn principal(&self) -> &str {
        match self {
            Credentials::Token { id, .. } => id,
            Credentials::Password { user, .. } => user,
        }
    }
}

/// Timeouts and retries of the client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Per request.
    pub timeout: Duration,
    /// Connecting.
    pub connect_timeout: Duration,
    /// Attempts of a retryable request (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubles with jitter.
    pub backoff: Duration,
    /// Renew a ticket once it is this old (PVE tickets live 2 h).
    pub ticket_refresh_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: Duration::from_millis(300),
            ticket_refresh_after: Duration::from_secs(90 * 60),
        }
    }
}

#[derive(Clone)]
struct Ticket {
    ticket: Secret,
    csrf: Secret,
    obtained: Instant,
}

/// A Proxmox VE API client over HTTPS.
pub struct PveClient {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    opts: ClientOptions,
    ticket: tokio::sync::Mutex<Option<Ticket>>,
    insecure: bool,
}

impl fmt::Debug for PveClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PveClient").field("base", &self.base).field("principal", &self.creds.principal()).finish()
    }
}

/// Client construction failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not usable.
    #[error("invalid Proxmox URL '{0}': use https://HOST:8006")]
    Url(String),
    /// TLS configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl PveClient {
    /// A client for `url` (`https://host:8006`, with or without `/api2/json`).
    pub fn new(url: &str, creds: Credentials, tls: &TlsMode, opts: ClientOptions) -> Result<PveClient, ClientError> {
        let base = url.trim_end_matches('/').trim_end_matches("/api2/json").to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|_| ClientError::Url(url.to_string()))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(ClientError::Url(url.to_string()));
        }
        let config = client_config(tls).map_err(ClientError::Tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("stand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(PveClient {
            http,
            base,
            creds,
            opts,
            ticket: tokio::sync::Mutex::new(None),
            insecure: *tls == TlsMode::Insecure,
        })
    }

    /// Whether TLS verification is off (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api2/json{path}", self.base)
    }

    /// A valid ticket: logs in, or renews one that is getting old.
    async fn ticket(&self, user: &str, password: &Secret) -> Result<Ticket, PveError> {
        let mut slot = self.ticket.lock().await;
        if let Some(t) = slot.as_ref()
            && t.obtained.elapsed() < self.opts.ticket_refresh_after
        {
            return Ok(t.clone());
        }
        // Renewal sends the current ticket as the password, like the PVE GUI does.
        let pass = slot.as_ref().map(|t| t.ticket.clone()).unwrap_or_else(|| password.clone());
        let form = [("username", user), ("password", pass.expose())];
        let req = ApiRequest::post("/access/ticket");
        let resp = self.http.post(self.url("/access/ticket")).form(&form).send().await;
        let body = self.read(&req, resp).await;
        let body = match body {
            Err(e) if slot.is_some() && e.status() == Some(401) => {
                // An expired ticket cannot renew itself: log in again with the password.
                let form = [("username", user), ("password", password.expose())];
                let resp = self.http.post(self.url("/access/ticket")).form(&form).send().await;
                self.read(&req, resp).await?
            }
            other => other?,
        };
        let info: TicketInfo = serde_json::from_value(body.get("data").cloned().unwrap_or(Value::Null))
            .map_err(|e| PveError::Decode { path: "/access/ticket".into(), message: e.to_string() })?;
        let t = Ticket { ticket: Secret::new(info.ticket), csrf: Secret::new(info.csrf), obtained: Instant::now() };
        *slot = Some(t.clone());
        Ok(t)
    }

    async fn send_once(&self, req: &ApiRequest) -> Result<Value, PveError> {
        let url = self.url(&req.path);
        let mut builder = match req.method {
            Method::Get => self.http.get(&url).query(&req.params),
            Method::Delete => self.http.delete(&url).query(&req.params),
            Method::Post => self.http.post(&url).form(&req.params),
            Method::Put => self.http.put(&url).form(&req.params),
        };
        match &self.creds {
            Credentials::Token { id, secret } => {
                builder =
                    builder.header(reqwest::header::AUTHORIZATION, format!("PVEAPIToken={id}={}", secret.expose()));
            }
            Credentials::Password { user, password } => {
                let t = self.ticket(user, password).await?;
                builder = builder.header(
                    reqwest::header::COOKIE,
                    format!("PVEAuthCookie={}", urlencoding::encode(t.ticket.expose())),
                );
                if !req.method.is_read() {
                    builder = builder.header("CSRFPreventionToken", t.csrf.expose());
                }
            }
        }
        let resp = builder.send().await;
        self.read(req, resp).await
    }

    async fn read(&self, req: &ApiRequest, resp: Result<reqwest::Response, reqwest::Error>) -> Result<Value, PveError> {
        let resp = resp.map_err(|e| transport_error(req, &e))?;
        let status = resp.status();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let bytes = resp.bytes().await.map_err(|e| transport_error(req, &e))?;
        let body: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            if body.is_null() && !bytes.is_empty() {
                return Err(PveError::Decode { path: req.path.clone(), message: "the answer is not JSON".into() });
            }
            return Ok(body);
        }
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(|m| m.trim_end().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or(reason);
        let errors = body
            .get("errors")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Err(PveError::Api {
            method: req.method.to_string(),
            path: req.path.clone(),
            failure: ApiFailure { status: status.as_u16(), message, errors },
        })
    }
}

fn transport_error(req: &ApiRequest, e: &reqwest::Error) -> PveError {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    let text = chain.join(": ");
    if text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("fingerprint") {
        let detail = chain.last().cloned().unwrap_or_default();
        return PveError::Tls(format!("TLS: the server's certificate is not trusted ({detail})"));
    }
    PveError::Transport {
        method: req.method.to_string(),
        path: req.path.clone(),
        message: if e.is_timeout() { "timed out waiting for the answer".into() } else { text },
        maybe_applied: !(e.is_connect() || e.is_builder()),
    }
}

#[async_trait]
impl Pve for PveClient {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        let backoff = Backoff { attempts: self.opts.attempts, first: self.opts.backoff, max: Duration::from_secs(10) };
        backoff.run(|e| retryable(req.method, e), |_| self.send_once(&req)).await
    }

    fn endpoint(&self) -> String {
        self.base.clone()
    }
}

/// The certificate a server presents, by fingerprint (to tell a user what to pin).
pub async fn presented_fingerprint(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_string();
    let port = parsed.port_or_known_default()?;
    tokio::task::spawn_blocking(move || {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let config = super::tls::capture_config(seen.clone())?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
        let mut sock = std::net::TcpStream::connect((host.as_str(), port)).ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let _ = conn.complete_io(&mut sock);
        seen.lock().ok()?.clone()
    })
    .await
    .ok()
    .flatten()
}
