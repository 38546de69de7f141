//! The simulator as a [`Pve`] in the same process: same pipeline as over HTTPS (latency,
//! faults, request log), no sockets. What `--sim` and most tests use.

use async_trait::async_trait;
use serde_json::Value;

use super::access::Identity;
use super::core::{Sim, TransportFault};
use crate::pve::{ApiFailure, ApiRequest, Pve, PveError};

/// An authenticated connection to a [`Sim`].
#[derive(Clone)]
pub struct SimSession {
    sim: Sim,
    who: Identity,
}

impl Sim {
    /// A session as `userid` (no password needed in-process).
    pub fn session(&self, userid: &str) -> SimSession {
        SimSession { sim: self.clone(), who: Identity::user(userid) }
    }

    /// A session as an API token of `userid`.
    pub fn token_session(&self, userid: &str, tokenid: &str) -> SimSession {
        SimSession { sim: self.clone(), who: Identity { userid: userid.into(), token: Some(tokenid.into()) } }
    }
}

impl SimSession {
    /// The simulator behind this session.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }
}

fn api_error(req: &ApiRequest, failure: ApiFailure) -> PveError {
    PveError::Api { method: req.method.to_string(), path: req.path.clone(), failure }
}

fn reset(req: &ApiRequest) -> PveError {
    PveError::Transport {
        method: req.method.to_string(),
        path: req.path.clone(),
        message: "connection reset by peer".into(),
        maybe_applied: req.method != crate::pve::Method::Get,
    }
}

#[async_trait]
impl Pve for SimSession {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        let latency = self.sim.request_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency / 2).await;
        }
        self.sim.log_request(req.method, &format!("/api2/json{}", req.path), &req.params);
        let fault = self.sim.roll_transport_fault();
        match fault {
            Some(TransportFault::Busy(status)) => {
                let msg = if status == 596 { "Broken pipe" } else { "proxy handler failed: node busy" };
                return Err(api_error(&req, ApiFailure::new(status, msg)));
            }
            Some(TransportFault::ResetBefore) => return Err(reset(&req)),
            _ => {}
        }
        let result = self.sim.handle(Some(&self.who), req.method, &req.path, &req.params);
        if !latency.is_zero() {
            tokio::time::sleep(latency / 2).await;
        }
        if fault == Some(TransportFault::ResetAfter) {
            return Err(reset(&req));
        }
        result.map(|r| r.into_body()).map_err(|f| api_error(&req, f))
    }

    fn endpoint(&self) -> String {
        "simulator".into()
    }
}
