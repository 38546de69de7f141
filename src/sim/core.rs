//! [`Sim`]: the simulated cluster behind a lock, its clock, and the request pipeline
//! (route → auth → schema check → tasks advanced to now → faults → handler).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::access::Identity;
use super::context::Ctx;
use super::faults::{Dice, inject_lock_timeout, request_key};
use super::fixture::Fixture;
use super::handlers;
use super::model::{FaultSpec, LatencyModel, SimStats};
use super::schema;
use super::state::SimState;
use crate::pve::{ApiFailure, Method, Params};

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Operation durations.
    pub latency: LatencyModel,
    /// Multiplies every simulated duration (0.1 = ten times faster).
    pub time_scale: f64,
    /// Injected faults.
    pub faults: FaultSpec,
    /// Seed of every random choice (faults, process ids, `vmgenid`); secrets (tickets,
    /// token values) come from the OS, so a printed seed gives away no login.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self { latency: LatencyModel::none(), time_scale: 1.0, faults: FaultSpec::default(), seed: 0 }
    }
}

pub(super) struct Inner {
    pub(super) state: Mutex<SimState>,
    pub(super) opts: SimOptions,
    faults: Mutex<FaultSpec>,
    pub(super) rng: Mutex<StdRng>,
    pub(super) dice: Dice,
    pub(super) stats: Mutex<SimStats>,
    start: tokio::time::Instant,
    base_ms: u64,
    request_log: Mutex<Option<std::fs::File>>,
    pub(super) holds: super::hold::Holds,
}

/// A simulated Proxmox VE cluster. Cheap to clone (shared).
#[derive(Clone)]
pub struct Sim {
    pub(super) inner: Arc<Inner>,
}

/// A reply body: `data` plus top-level keys such as `changes` or `total`.
#[derive(Debug, Default)]
pub struct Reply {
    /// The `data` member.
    pub data: Value,
    /// Other top-level members.
    pub extra: BTreeMap<String, Value>,
}

impl From<Value> for Reply {
    fn from(data: Value) -> Self {
        Reply { data, extra: BTreeMap::new() }
    }
}

impl Reply {
    /// The full JSON body.
    pub fn into_body(self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("data".into(), self.data);
        for (k, v) in self.extra {
            m.insert(k, v);
        }
        Value::Object(m)
    }
}

impl Sim {
    /// A simulator of `fixture`.
    pub fn new(fixture: &Fixture, opts: SimOptions) -> Sim {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1_700_000_000);
        let key = hex::encode(rand::random::<[u8; 32]>());
        Self::from_state(SimState::from_fixture(fixture, epoch, key), opts)
    }

    /// The default fixture with instant operations.
    pub fn default_instant() -> Sim {
        Self::new(&Fixture::default_cluster(), SimOptions::default())
    }

    /// A simulator continuing from saved state.
    pub fn from_state(state: SimState, opts: SimOptions) -> Sim {
        let base_ms = state.now_ms;
        let rng = StdRng::seed_from_u64(opts.seed);
        Sim {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                faults: Mutex::new(opts.faults.clone()),
                dice: Dice::new(opts.seed),
                opts,
                rng: Mutex::new(rng),
                stats: Mutex::new(SimStats::default()),
                start: tokio::time::Instant::now(),
                base_ms,
                request_log: Mutex::new(None),
                holds: super::hold::Holds::default(),
            }),
        }
    }

    /// Loads state saved by [`Sim::save`].
    pub fn load(path: &Path, opts: SimOptions) -> std::io::Result<Sim> {
        let text = std::fs::read_to_string(path)?;
        let mut state: SimState = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        // The simulated cluster kept running between commands: its clock (which started at
        // `epoch`, on the wall clock) catches up, so uptimes grow and due tasks end.
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        state.now_ms = state.now_ms.max(wall_ms.saturating_sub(state.epoch * 1000));
        Ok(Self::from_state(state, opts))
    }

    /// Saves the state (after finishing every task that is due), readable only by the owner.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let st = self.state();
        let text = serde_json::to_string(&*st).map_err(std::io::Error::other)?;
        drop(st);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(tmp, path)
    }

    /// Options in force.
    pub fn options(&self) -> &SimOptions {
        &self.inner.opts
    }

    /// Changes the injected faults from now on (a fault campaign ends with a clean run).
    pub fn set_faults(&self, faults: FaultSpec) {
        *lock(&self.inner.faults) = faults;
    }

    /// The faults in force now.
    pub(super) fn faults(&self) -> FaultSpec {
        lock(&self.inner.faults).clone()
    }

    /// Counters of requests and injected faults.
    pub fn stats(&self) -> SimStats {
        lock(&self.inner.stats).clone()
    }

    /// Sim time now, ms.
    pub fn now_ms(&self) -> u64 {
        self.inner.base_ms + self.inner.start.elapsed().as_millis() as u64
    }

    /// The state, with every task due by now finished.
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        let now = self.now_ms();
        let mut st = lock(&self.inner.state);
        advance(&mut st, now);
        st
    }

    /// Writes every request received as a JSON line `{"method","path","params"}`.
    pub fn log_requests_to(&self, path: &Path) -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        *lock(&self.inner.request_log) = Some(f);
        Ok(())
    }

    /// Records one request in the request log, if enabled. Passwords are masked (with a
    /// value that still passes the schema's length rules).
    pub fn log_request(&self, method: Method, path: &str, params: &Params) {
        if let Some(f) = lock(&self.inner.request_log).as_mut() {
            let mut shown = params.clone();
            for (k, v) in shown.iter_mut() {
                if k == "password" || k == "confirmation-password" {
                    *v = "********".into();
                }
            }
            let shown: serde_json::Map<String, serde_json::Value> = shown
                .into_iter()
                .map(|(k, v)| {
                    let value = if v.contains(crate::pve::LIST_SEP) {
                        json!(crate::pve::list_items(&v).collect::<Vec<_>>())
                    } else {
                        json!(v)
                    };
                    (k, value)
                })
                .collect();
            let line = json!({ "method": method.as_str(), "path": path, "params": shown });
            let _ = writeln!(f, "{line}");
        }
    }

    /// The per-request latency, scaled.
    pub fn request_latency(&self) -> Duration {
        let ms = self.inner.opts.latency.request_ms as f64 * self.inner.opts.time_scale;
        Duration::from_micros((ms * 1000.0) as u64)
    }

    /// Serves one API call for `who` (`None`: unauthenticated). `path` is below `/api2/json`.
    pub fn handle(
        &self,
        who: Option<&Identity>,
        method: Method,
        path: &str,
        params: &Params,
    ) -> Result<Reply, ApiFailure> {
        {
            let mut s = lock(&self.inner.stats);
            s.requests += 1;
            // A login changes nothing on the cluster.
            if !method.is_read() && path != "/access/ticket" {
                s.writes += 1;
            } else if path.contains("/tasks/") {
                s.polls += 1;
            }
        }
        let route = schema::route(method, path)?;
        let public = route.template == "/access/ticket";
        let who = match (who, public) {
            (Some(w), _) => w.clone(),
            (None, true) => Identity::user(""),
            (None, false) => return Err(ApiFailure::new(401, "No ticket")),
        };
        if who.token.is_some() && !route.allowtoken {
            return Err(ApiFailure::forbidden(format!(
                "URI '/api2/json{path}' not available with API token, need proper ticket."
            )));
        }
        schema::validate(method, &route, params)?;
        let now = self.now_ms();
        let mut st = lock(&self.inner.state);
        advance(&mut st, now);
        let mut rng = lock(&self.inner.rng);
        let mut stats = lock(&self.inner.stats);
        if let Some(node) = route.vars.get("node")
            && st.nodes.get(node).is_some_and(|n| !n.online)
        {
            return Err(ApiFailure::new(
                595,
                "Errors during connection establishment, proxy handshake: No route to host",
            ));
        }
        let mut ctx = Ctx {
            st: &mut st,
            who,
            vars: route.vars,
            params,
            now,
            opts: &self.inner.opts,
            faults: self.faults(),
            dice: &self.inner.dice,
            key: request_key(method, path, params),
            rng: &mut rng,
            stats: &mut stats,
        };
        if !method.is_read() {
            inject_lock_timeout(&mut ctx, &route.template)?;
        }
        handlers::dispatch(&mut ctx, method, &route.template)
    }

    /// Adds an API token and returns its secret (how `sim serve` makes its root token).
    pub fn add_token(&self, userid: &str, tokenid: &str, privsep: bool) -> Option<String> {
        let secret = uuid::Uuid::new_v4().to_string();
        let mut st = self.state();
        let user = st.users.get_mut(userid)?;
        user.tokens.insert(
            tokenid.to_string(),
            super::state::Token {
                secret_hash: super::access::hash_secret(&secret),
                privsep,
                expire: 0,
                comment: Some("stand sim".into()),
            },
        );
        Some(secret)
    }

    /// Sets a user's password.
    pub fn set_password(&self, userid: &str, password: &str) -> bool {
        let mut st = self.state();
        match st.users.get_mut(userid) {
            Some(u) => {
                u.password_hash = Some(super::access::hash_password(userid, password));
                true
            }
            None => false,
        }
    }

    /// Takes a node offline or back online.
    pub fn set_node_online(&self, node: &str, online: bool) {
        if let Some(n) = self.state().nodes.get_mut(node) {
            n.online = online;
        }
    }
}

/// Finishes every task whose end is due, in end order, applying its effect.
pub(super) fn advance(st: &mut SimState, now: u64) {
    st.now_ms = st.now_ms.max(now);
    loop {
        let next = st
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.done && t.end_ms <= now)
            .min_by_key(|(_, t)| t.end_ms)
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        st.tasks[i].done = true;
        let task = st.tasks[i].clone();
        handlers::finish_task(st, &task);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)
}
