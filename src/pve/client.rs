//! [`PveClient`]: the [`Pve`] trait over a [`Transport`] (HTTPS in production, the
//! simulator's front in process). Form-encoded parameters, the `{"data": ...}` envelope,
//! API-token or ticket auth (renewed before its 2-hour lifetime ends), and bounded retries
//! that never blindly repeat a write.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::api::Pve;
use super::error::{ApiFailure, PveError};
use super::https::Https;
use super::request::{ApiRequest, Method};
use super::retry::{Backoff, retryable};
use super::tls::TlsMode;
use super::transport::{Transport, TransportError, WireRequest, WireResponse, reason_phrase};
use super::types::TicketInfo;
use http::header::{self, HeaderName};

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
    /// A ticket PVE issued to a person (`stand serve` holds one per session, never the
    /// password). It is not renewed: it ends with its 2-hour lifetime.
    Ticket {
        /// `user@realm`.
        user: String,
        /// `PVEAuthCookie`.
        ticket: Secret,
        /// `CSRFPreventionToken`, sent with every write.
        csrf: Secret,
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
            Credentials::Password { user, .. } | Credentials::Ticket { user, .. } => user,
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

/// A Proxmox VE API client: authentication, the `{"data": ...}` envelope, PVE's error
/// shapes and retries, over any [`Transport`] (HTTPS, or the simulator in this process).
pub struct PveClient {
    transport: Arc<dyn Transport>,
    creds: Credentials,
    opts: ClientOptions,
    ticket: tokio::sync::Mutex<Option<Ticket>>,
    insecure: bool,
}

impl fmt::Debug for PveClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PveClient")
            .field("endpoint", &self.transport.endpoint())
            .field("principal", &self.creds.principal())
            .finish()
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
    /// A client for `url` (`https://host:8006`, with or without `/api2/json`) over HTTPS.
    pub fn new(url: &str, creds: Credentials, tls: &TlsMode, opts: ClientOptions) -> Result<PveClient, ClientError> {
        let base = url.trim_end_matches('/').trim_end_matches("/api2/json").to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|_| ClientError::Url(url.to_string()))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(ClientError::Url(url.to_string()));
        }
        let transport = Https::new(&base, tls, opts.timeout, opts.connect_timeout)?;
        let mut client = Self::over(Arc::new(transport), creds, opts);
        client.insecure = *tls == TlsMode::Insecure;
        Ok(client)
    }

    /// A client over `transport` (the simulator's in-process front, or a test's).
    pub fn over(transport: Arc<dyn Transport>, creds: Credentials, opts: ClientOptions) -> PveClient {
        PveClient { transport, creds, opts, ticket: tokio::sync::Mutex::new(None), insecure: false }
    }

    /// A client over the same transport (the same connections) with other credentials.
    pub fn sibling(&self, creds: Credentials) -> PveClient {
        PveClient {
            transport: self.transport.clone(),
            creds,
            opts: self.opts.clone(),
            ticket: tokio::sync::Mutex::new(None),
            insecure: self.insecure,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff { attempts: self.opts.attempts, first: self.opts.backoff, max: Duration::from_secs(10) }
    }

    /// Whether TLS verification is off (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
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
        let login = |password: &Secret| {
            let mut req = ApiRequest::post("/access/ticket");
            req.params.insert("username".into(), user.to_string());
            req.params.insert("password".into(), password.expose().to_string());
            req
        };
        // A login changes nothing, so it is repeated whenever the failure was transient.
        let backoff = self.backoff();
        let log_in = |password: Secret| {
            let req = login(&password);
            async move { backoff.run(PveError::is_transient, |_| self.exchange(&req, Vec::new())).await }
        };
        let body = match log_in(pass).await {
            Err(e) if slot.is_some() && e.status() == Some(401) => {
                // An expired ticket cannot renew itself: log in again with the password.
                log_in(password.clone()).await?
            }
            other => other?,
        };
        let info: TicketInfo = serde_json::from_value(body.get("data").cloned().unwrap_or(Value::Null))
            .map_err(|e| PveError::Decode { path: "/access/ticket".into(), message: e.to_string() })?;
        let t = Ticket { ticket: Secret::new(info.ticket), csrf: Secret::new(info.csrf), obtained: Instant::now() };
        *slot = Some(t.clone());
        Ok(t)
    }

    /// The headers that authenticate `req`.
    async fn auth_headers(&self, req: &ApiRequest) -> Result<Vec<(HeaderName, String)>, PveError> {
        Ok(match &self.creds {
            Credentials::Token { id, secret } => {
                vec![(header::AUTHORIZATION, format!("PVEAPIToken={id}={}", secret.expose()))]
            }
            Credentials::Password { user, password } => {
                let t = self.ticket(user, password).await?;
                let mut headers =
                    vec![(header::COOKIE, format!("PVEAuthCookie={}", urlencoding::encode(t.ticket.expose())))];
                if !req.method.is_read() {
                    headers.push((HeaderName::from_static("csrfpreventiontoken"), t.csrf.expose().to_string()));
                }
                headers
            }
            Credentials::Ticket { ticket, csrf, .. } => {
                let mut headers =
                    vec![(header::COOKIE, format!("PVEAuthCookie={}", urlencoding::encode(ticket.expose())))];
                if !req.method.is_read() {
                    headers.push((HeaderName::from_static("csrfpreventiontoken"), csrf.expose().to_string()));
                }
                headers
            }
        })
    }

    /// Logs in with the password credentials and returns the ticket PVE issued, as
    /// [`Credentials::Ticket`] (the same credentials for any other kind). A wrong password is
    /// PVE's `401`.
    pub async fn issue_ticket(&self) -> Result<Credentials, PveError> {
        match &self.creds {
            Credentials::Password { user, password } => {
                let t = self.ticket(user, password).await?;
                Ok(Credentials::Ticket { user: user.clone(), ticket: t.ticket, csrf: t.csrf })
            }
            other => Ok(other.clone()),
        }
    }

    async fn send_once(&self, req: &ApiRequest) -> Result<Value, PveError> {
        let headers = self.auth_headers(req).await?;
        self.exchange(req, headers).await
    }

    /// One exchange: encodes `req`, sends it with `headers`, decodes the answer.
    async fn exchange(&self, req: &ApiRequest, headers: Vec<(HeaderName, String)>) -> Result<Value, PveError> {
        let wire = encode(req, headers).map_err(|message| PveError::Transport {
            method: req.method.to_string(),
            path: req.path.clone(),
            message,
            maybe_applied: false,
        })?;
        let resp = self.transport.send(wire).await.map_err(|e| match e {
            TransportError::Untrusted(_) => PveError::Tls(e.to_string()),
            TransportError::Failed { message, maybe_sent } => PveError::Transport {
                method: req.method.to_string(),
                path: req.path.clone(),
                message,
                maybe_applied: maybe_sent,
            },
        })?;
        decode(req, resp)
    }
}

/// `req` as an HTTP request: parameters in the query (GET, DELETE) or a form body.
fn encode(req: &ApiRequest, headers: Vec<(HeaderName, String)>) -> Result<WireRequest, String> {
    let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(req.wire_pairs()).finish();
    let in_query = matches!(req.method, Method::Get | Method::Delete);
    let mut uri = format!("/api2/json{}", req.path);
    if in_query && !encoded.is_empty() {
        uri.push('?');
        uri.push_str(&encoded);
    }
    let mut builder = http::Request::builder().method(req.method.as_str()).uri(uri);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let body = if in_query {
        Vec::new()
    } else {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        encoded.into_bytes()
    };
    builder.body(body).map_err(|e| format!("cannot build the request: {e}"))
}

/// The `data` envelope of a success, or PVE's error (message, per-parameter `errors`).
fn decode(req: &ApiRequest, resp: WireResponse) -> Result<Value, PveError> {
    let status = resp.status();
    let reason = reason_phrase(&resp);
    let bytes = resp.into_body();
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

#[async_trait]
impl Pve for PveClient {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        self.backoff().run(|e| retryable(req.method, e), |_| self.send_once(&req)).await
    }

    fn endpoint(&self) -> String {
        self.transport.endpoint()
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
