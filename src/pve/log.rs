//! A [`Pve`] layer that logs each call: `-v` shows every write (method, path, status,
//! duration), `-vv` every request. Parameters are never logged: they carry passwords.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::{ApiRequest, Pve, PveError};

/// Logs the calls of the [`Pve`] it wraps (the `tracing` target `stand::api`).
pub struct Logged<P> {
    inner: P,
}

impl<P: Pve> Logged<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Logged { inner }
    }
}

/// What a call ended with, as a log shows it: an HTTP status, or why there was none.
fn outcome(r: &Result<Value, PveError>) -> String {
    match r {
        Ok(_) => "200".into(),
        Err(e) => match e.status() {
            Some(s) => s.to_string(),
            None => format!("error ({e})"),
        },
    }
}

#[async_trait]
impl<P: Pve> Pve for Logged<P> {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        let (method, path) = (req.method, req.path.clone());
        let start = Instant::now();
        let r = self.inner.call(req).await;
        let ms = start.elapsed().as_millis();
        if method.is_read() {
            tracing::debug!(target: "stand::api", "{} {path} {} {ms} ms", method.as_str(), outcome(&r));
        } else {
            tracing::info!(target: "stand::api", "{} {path} {} {ms} ms", method.as_str(), outcome(&r));
        }
        r
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}
