//! The seam under [`PveClient`](super::PveClient): one HTTP exchange, as plain `http`
//! types. Over the network it is [`Https`](super::https::Https) (reqwest + rustls); in this
//! process it is the simulator's own HTTP front, so `--sim` runs the same client code
//! (authentication, the `{"data": ...}` envelope, PVE's error shapes, retries) as a real
//! cluster does.

use async_trait::async_trait;

/// A request on the wire: method, `/api2/json/...` path and query, headers, form body.
pub type WireRequest = http::Request<Vec<u8>>;

/// An answer on the wire. A reason phrase other than the canonical one (PVE puts its
/// error message there) travels as a `hyper::ext::ReasonPhrase` extension.
pub type WireResponse = http::Response<Vec<u8>>;

/// An exchange that got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The server's certificate is not the one trusted.
    #[error("TLS: the server's certificate is not trusted ({0})")]
    Untrusted(String),
    /// The connection failed or was dropped.
    #[error("{message}")]
    Failed {
        /// What happened, without secrets.
        message: String,
        /// Whether the request may have reached the server (then a write may have happened).
        maybe_sent: bool,
    },
}

/// Carries one HTTP exchange to a Proxmox VE API and back.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `req` and returns the answer, whatever its status.
    async fn send(&self, req: WireRequest) -> Result<WireResponse, TransportError>;

    /// Where the exchanges go, for messages (`https://host:8006`).
    fn endpoint(&self) -> String;
}

/// The reason phrase of an answer: PVE's own text when it sent one, else the canonical one.
pub fn reason_phrase(resp: &WireResponse) -> String {
    resp.extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| resp.status().canonical_reason().map(str::to_string))
        .unwrap_or_default()
}
