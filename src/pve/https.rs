//! [`Https`]: the [`Transport`] to a real Proxmox VE (or `stand sim serve`): reqwest over
//! rustls, with the TLS trust of [`TlsMode`] and the client's timeouts.

use std::time::Duration;

use async_trait::async_trait;

use super::client::ClientError;
use super::tls::{TlsMode, client_config};
use super::transport::{Transport, TransportError, WireRequest, WireResponse};

/// HTTPS to one API endpoint.
pub struct Https {
    http: reqwest::Client,
    base: String,
}

impl Https {
    /// A transport to `base` (`https://host:8006`, no `/api2/json`).
    pub fn new(base: &str, tls: &TlsMode, timeout: Duration, connect_timeout: Duration) -> Result<Self, ClientError> {
        let config = client_config(tls).map_err(ClientError::Tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("stand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Https { http, base: base.to_string() })
    }
}

#[async_trait]
impl Transport for Https {
    async fn send(&self, req: WireRequest) -> Result<WireResponse, TransportError> {
        let (parts, body) = req.into_parts();
        let url = format!("{}{}", self.base, parts.uri);
        let mut builder = self.http.request(parts.method, url).headers(parts.headers);
        if !body.is_empty() {
            builder = builder.body(body);
        }
        let resp = builder.send().await.map_err(|e| failed(&e))?;
        let mut answer = http::Response::builder().status(resp.status());
        if let Some(reason) = resp.extensions().get::<hyper::ext::ReasonPhrase>() {
            answer = answer.extension(reason.clone());
        }
        let bytes = resp.bytes().await.map_err(|e| failed(&e))?;
        answer.body(bytes.to_vec()).map_err(|e| TransportError::Failed { message: e.to_string(), maybe_sent: true })
    }

    fn endpoint(&self) -> String {
        self.base.clone()
    }
}

fn failed(e: &reqwest::Error) -> TransportError {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    let text = chain.join(": ");
    if text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("fingerprint") {
        return TransportError::Untrusted(chain.last().cloned().unwrap_or_default());
    }
    TransportError::Failed {
        message: if e.is_timeout() { "timed out waiting for the answer".into() } else { text },
        maybe_sent: !(e.is_connect() || e.is_builder()),
    }
}
