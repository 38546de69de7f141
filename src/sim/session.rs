//! Two ways into a [`Sim`] from this process:
//!
//! - [`Sim::client`]: the one [`PveClient`] over the [`InProcess`] front. What `--sim`,
//!   the benchmarks and the fault tests use: login, latency, faults and retries exactly as
//!   over HTTPS.
//! - [`SimSession`]: straight to the handlers as a given user, with no transport, latency
//!   or faults. For tests to arrange a cluster and to look at it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::access::Identity;
use super::core::Sim;
use super::front::InProcess;
use crate::pve::{ApiRequest, ClientOptions, Credentials, Pve, PveClient, PveError, Secret};

/// A direct, authenticated handle on a [`Sim`].
#[derive(Clone)]
pub struct SimSession {
    sim: Sim,
    who: Identity,
}

impl Sim {
    /// The client `stand` uses, logged in as `root@pam` over the in-process front. It holds
    /// a ticket made here as its password: logging in with it is PVE's ticket renewal, and
    /// nothing is written into the cluster.
    pub fn client(&self) -> PveClient {
        self.client_with(ClientOptions::default())
    }

    /// [`Sim::client`] with other timeouts and retries.
    pub fn client_with(&self, opts: ClientOptions) -> PveClient {
        let password = {
            let st = self.state();
            st.make_ticket("root@pam", st.unix(self.now_ms()))
        };
        let creds = Credentials::Password { user: "root@pam".into(), password: Secret::new(password) };
        PveClient::over(Arc::new(InProcess::new(self.clone())), creds, opts)
    }

    /// A direct handle as `userid` (no password needed in-process).
    pub fn session(&self, userid: &str) -> SimSession {
        SimSession { sim: self.clone(), who: Identity::user(userid) }
    }

    /// A direct handle as an API token of `userid`.
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

#[async_trait]
impl Pve for SimSession {
    async fn call(&self, req: ApiRequest) -> Result<Value, PveError> {
        self.sim
            .handle(Some(&self.who), req.method, &req.path, &req.params)
            .map(|r| r.into_body())
            .map_err(|failure| PveError::Api { method: req.method.to_string(), path: req.path.clone(), failure })
    }

    fn endpoint(&self) -> String {
        "simulator".into()
    }
}
