//! Opening the cluster a command talks to: a real one over HTTPS, or the simulator in
//! this process with its state kept between commands.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::Usage;
use super::arguments::{Output, Target};
use super::sim_cmd::default_state_path;
use super::sim_state::{Holder, Rendezvous, StateLock, acquire};
use crate::apply::Interrupt;
use crate::pve::{ClientOptions, Connection, Credentials, Logged, Pve};
use crate::sim::{FaultSpec, Fixture, LatencyModel, Sim, SimOptions};

/// The simulated cluster of `--sim`, and who runs it.
enum Simulated {
    /// This process: loaded from its saved state, saved back (under the lock, which a
    /// command that changes the cluster holds to its end) by [`Cluster::close`].
    Here { sim: Sim, state: PathBuf, lock: Option<StateLock> },
    /// `stand serve --sim`, which holds it: calls go to it over HTTPS.
    Served { state: PathBuf, at: Rendezvous },
}

/// An open cluster.
pub struct Cluster {
    /// Where calls go.
    pub pve: Arc<dyn Pve>,
    /// The simulated cluster (`--sim`).
    sim: Option<Simulated>,
    /// Output mode.
    pub output: Output,
    /// How a real cluster was reached (`None` for `--sim`).
    pub connection: Option<Connection>,
    /// Ctrl-C: the command's runs start no more steps (see [`Cluster::stop_on_ctrl_c`]).
    pub interrupt: Interrupt,
}

/// Why a cluster could not be reached (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Unreachable(pub anyhow::Error);

impl From<crate::pve::ConnectError> for Unreachable {
    fn from(e: crate::pve::ConnectError) -> Self {
        Unreachable(e.into())
    }
}

/// Connection settings that cannot work are bad input (exit 2); a client that cannot be
/// built is not.
pub fn bad_settings(e: crate::pve::ConnectError) -> anyhow::Error {
    match e {
        crate::pve::ConnectError::Client(_) | crate::pve::ConnectError::NoCluster => Unreachable::from(e).into(),
        other => Usage(other.to_string()).into(),
    }
}

impl Cluster {
    /// Opens the cluster `target` names; `changes` says whether the command may change it
    /// (then a simulated cluster is kept for this command to its end). Settings that cannot
    /// work (a bad fixture, fault spec, URL or fingerprint) are bad input ([`Usage`], exit 2).
    pub fn open(target: &Target, changes: bool) -> anyhow::Result<Cluster> {
        if let Some(fixture) = &target.sim {
            return Self::open_sim(target, fixture, changes);
        }
        let conn = match &target.cluster {
            Some(name) => Connection::from_file(&Connection::default_file(), name, target.insecure),
            None => Connection::from_env(target.insecure),
        }
        .map_err(bad_settings)?;
        let client = conn.client(ClientOptions::default()).map_err(Unreachable::from)?;
        if client.is_insecure() {
            tracing::warn!(
                "TLS verification is OFF (--insecure): anyone on the path can read the token; pin the certificate with PVE_FINGERPRINT instead"
            );
        }
        Ok(Cluster {
            pve: Arc::new(Logged::new(client)),
            sim: None,
            output: target.output,
            connection: Some(conn),
            interrupt: Interrupt::default(),
        })
    }

    fn open_sim(target: &Target, fixture: &str, changes: bool) -> anyhow::Result<Cluster> {
        if !(target.sim_time_scale >= 0.0 && target.sim_time_scale.is_finite()) {
            return Err(Usage(format!("--sim-time-scale must be a number ≥ 0, got {}", target.sim_time_scale)).into());
        }
        let faults: FaultSpec = target.sim_faults.parse().map_err(|e: String| Usage(format!("--sim-faults: {e}")))?;
        // A short number, easy to copy from the banner.
        let seed = target.sim_seed.unwrap_or_else(|| rand::random::<u32>().into());
        let opts = SimOptions { latency: LatencyModel::realistic(), time_scale: target.sim_time_scale, faults, seed };
        let state = target.sim_state.clone().unwrap_or_else(default_state_path);
        // A named fixture is always read, so a bad one is an error even when a saved cluster
        // exists; that cluster is continued only when it was made from this same fixture.
        let named = match fixture {
            "" => None,
            path => Some(Fixture::load(std::path::Path::new(path)).map_err(|e| Usage(format!("{e:#}")))?),
        };
        let not_from = |saved: Option<&str>| {
            let f = named.as_ref()?;
            (saved != Some(f.digest().as_str())).then(|| {
                Usage(format!(
                    "the simulated cluster saved at {} was not made from {fixture}: run `stand sim reset` to start \
                     again from {fixture}, or use plain --sim to continue the saved cluster",
                    state.display()
                ))
            })
        };
        let lock = match acquire(&state, changes)? {
            Holder::Served(at) => {
                if let Some(e) = not_from(at.fixture_digest.as_deref()) {
                    return Err(e.into());
                }
                let conn = at.connection();
                let client = conn.client(ClientOptions::default()).map_err(Unreachable::from)?;
                let pve = Arc::new(Logged::new(client));
                return Ok(Cluster {
                    pve,
                    sim: Some(Simulated::Served { state, at }),
                    output: target.output,
                    connection: Some(conn),
                    interrupt: Interrupt::default(),
                });
            }
            Holder::Free(lock) => lock,
        };
        let sim = if state.exists() {
            let sim = Sim::load(&state, opts).with_context(|| {
                format!("cannot read the simulated cluster at {} (`stand sim reset` starts a new one)", state.display())
            })?;
            if let Some(e) = not_from(sim.state().fixture_digest.as_deref()) {
                return Err(e.into());
            }
            sim
        } else {
            Sim::new(named.as_ref().unwrap_or(&Fixture::default_cluster()), opts)
        };
        let pve = Arc::new(Logged::new(sim.client()));
        Ok(Cluster {
            pve,
            sim: Some(Simulated::Here { sim, state, lock }),
            output: target.output,
            connection: None,
            interrupt: Interrupt::default(),
        })
    }

    /// Reads the simulated cluster again, to see what other `--sim` commands did meanwhile
    /// (`status --watch`). A real cluster, or one `stand serve --sim` serves, is always current.
    pub fn reload(&mut self) -> anyhow::Result<()> {
        let Some(Simulated::Here { sim, state, lock: None }) = &self.sim else { return Ok(()) };
        let (state, opts) = (state.clone(), sim.options().clone());
        match acquire(&state, false)? {
            Holder::Served(at) => {
                let conn = at.connection();
                self.pve = Arc::new(Logged::new(conn.client(ClientOptions::default()).map_err(Unreachable::from)?));
                self.connection = Some(conn);
                self.sim = Some(Simulated::Served { state, at });
            }
            Holder::Free(_read) if state.exists() => {
                let fresh = Sim::load(&state, opts)
                    .with_context(|| format!("cannot read the simulated cluster at {}", state.display()))?;
                self.pve = Arc::new(Logged::new(fresh.client()));
                self.sim = Some(Simulated::Here { sim: fresh, state, lock: None });
            }
            Holder::Free(_) => {}
        }
        Ok(())
    }

    /// The API token `stand` logs in with, when it is a token (PVE refuses some calls to
    /// tokens, e.g. `PUT /access/password`).
    pub fn token_id(&self) -> Option<&str> {
        match &self.connection.as_ref()?.credentials {
            Credentials::Token { id, .. } => Some(id),
            Credentials::Password { .. } | Credentials::Ticket { .. } => None,
        }
    }

    /// Makes clients that act as a person, over this cluster's transport (`stand serve`).
    pub fn client_as(&self) -> anyhow::Result<crate::serve::ClientAs> {
        let base = match (&self.sim, &self.connection) {
            (Some(Simulated::Here { sim, .. }), _) => sim.client(),
            (_, Some(conn)) => conn.client(ClientOptions::default()).map_err(Unreachable::from)?,
            (_, None) => anyhow::bail!("no cluster to log in to"),
        };
        Ok(Arc::new(move |creds| base.sibling(creds)))
    }

    /// The simulator this command runs itself (`--sim`, unless `stand serve --sim` runs it).
    pub fn sim(&self) -> Option<&Sim> {
        match &self.sim {
            Some(Simulated::Here { sim, .. }) => Some(sim),
            _ => None,
        }
    }

    /// Whether this is the simulator.
    pub fn simulated(&self) -> bool {
        self.sim.is_some()
    }

    /// The simulator's time scale (`--sim`).
    pub fn time_scale(&self) -> Option<f64> {
        match &self.sim {
            Some(Simulated::Here { sim, .. }) => Some(sim.options().time_scale),
            Some(Simulated::Served { at, .. }) => Some(at.time_scale),
            None => None,
        }
    }

    /// Where the saved simulated cluster is (`--sim`).
    pub fn sim_state(&self) -> Option<&std::path::Path> {
        match &self.sim {
            Some(Simulated::Here { state, .. } | Simulated::Served { state, .. }) => Some(state),
            None => None,
        }
    }

    /// A line saying where the commands go, for the top of text output.
    pub fn banner(&self) -> String {
        match &self.sim {
            Some(Simulated::Here { sim, state, .. }) => format!(
                "SIMULATED cluster, --sim-seed {} (state in {}); nothing real is touched",
                sim.options().seed,
                state.display()
            ),
            Some(Simulated::Served { at, .. }) => format!(
                "SIMULATED cluster, served by stand serve --sim (pid {}, --sim-seed {}); nothing real is touched",
                at.pid, at.seed
            ),
            None => format!("cluster {}", self.pve.endpoint()),
        }
    }

    /// Saves the simulator's state, so the next `--sim` command continues from it.
    pub fn close(self) -> anyhow::Result<()> {
        self.save()
    }

    /// On Ctrl-C, the command's runs start no more steps (those under way finish, and the
    /// command reports what was done); a second Ctrl-C quits at once, after saving a
    /// simulated cluster this command holds.
    pub fn stop_on_ctrl_c(&self) {
        let interrupt = self.interrupt.clone();
        let saving = match &self.sim {
            Some(Simulated::Here { sim, state, lock: Some(_) }) => Some((sim.clone(), state.clone())),
            _ => None,
        };
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            interrupt.stop();
            crate::errln!("\ninterrupted: the steps under way finish, no other starts (Ctrl-C again quits at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                if let Some((sim, state)) = saving {
                    let _ = sim.save(&state);
                }
                std::process::exit(130);
            }
        });
    }

    /// Saves the simulator's state now (a long-running command, after a change). Only the
    /// command holding the cluster saves it.
    pub fn save(&self) -> anyhow::Result<()> {
        if let Some(Simulated::Here { sim, state, lock: Some(_) }) = &self.sim {
            sim.save(state).with_context(|| format!("cannot save the simulated cluster to {}", state.display()))?;
        }
        Ok(())
    }
}
