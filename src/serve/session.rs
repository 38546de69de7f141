//! Sessions of `stand serve`: a random token in an HttpOnly, SameSite=Strict cookie maps to
//! the person's PVE ticket (never their password) and a CSRF token; a session ends when
//! its ticket does. The login form's CSRF token is bound to a cookie by an HMAC, so it
//! needs no server state.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::pve::PveClient;

/// How long PVE accepts a ticket (pve-access-control, `PVE::AccessControl`: tickets are
/// valid for two hours). A session ends with it.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// How long what PVE said a person may see is trusted before it is asked again.
pub const SEEN_FOR: Duration = Duration::from_secs(300);

/// The session cookie.
pub const SESSION_COOKIE: &str = "stand_session";

/// The cookie the login form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "stand_login";

/// What PVE says a person may see, asked with their own ticket.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// When PVE was asked.
    pub at: Option<Instant>,
    /// The VMs `GET /cluster/resources` shows them (PVE filters it by `VM.Audit`).
    pub vmids: BTreeSet<u32>,
    /// `Permissions.Modify` on `/` (the Administrator role): an instructor of every lab.
    pub admin: bool,
}

/// A logged-in person.
#[derive(Clone)]
pub struct Session {
    /// `user@realm`, as PVE authenticated them.
    pub user: String,
    /// A client that acts with their ticket: PVE checks each of their actions itself.
    pub pve: Arc<PveClient>,
    /// The token every state-changing request must carry.
    pub csrf: String,
    /// When the ticket, and so the session, ends.
    pub expires: Instant,
    /// What they may see, cached for [`SEEN_FOR`].
    pub seen: Seen,
}

/// The live sessions, by the SHA-256 of their token.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    key: [u8; 64],
}

impl Default for Sessions {
    fn default() -> Self {
        let mut key = [0u8; 64];
        rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
        Sessions { map: Mutex::new(HashMap::new()), key }
    }
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits, hex).
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `user` acting through `pve`; returns its cookie token.
    pub fn start(&self, user: &str, pve: PveClient) -> String {
        let token = random_token();
        let now = Instant::now();
        let session = Session {
            user: user.to_string(),
            pve: Arc::new(pve),
            csrf: random_token(),
            expires: now + TICKET_LIFETIME,
            seen: Seen::default(),
        };
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        map.insert(digest(&token), session);
        token
    }

    /// The session of a cookie token, unless it ended.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.lock();
        let key = digest(token);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps what PVE said the session's person may see.
    pub fn remember(&self, token: &str, seen: Seen) {
        if let Some(s) = self.lock().get_mut(&digest(token)) {
            s.seen = seen;
        }
    }

    /// Ends a session.
    pub fn end(&self, token: &str) {
        self.lock().remove(&digest(token));
    }

    /// How many sessions are live.
    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|s| s.expires > now).count()
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new((&self.key).into());
        mac.update(b"login:");
        mac.update(nonce.as_bytes());
        mac
    }

    /// The login form's CSRF token for the nonce in its cookie.
    pub fn login_token(&self, nonce: &str) -> String {
        hex::encode(self.mac(nonce).finalize().into_bytes())
    }

    /// Whether `token` is the login form's token for `nonce` (compared in constant time).
    pub fn login_token_ok(&self, nonce: &str, token: &str) -> bool {
        hex::decode(token).is_ok_and(|t| self.mac(nonce).verify_slice(&t).is_ok())
    }
}

/// Whether a request's CSRF token is the session's (compared as digests, so the time taken
/// says nothing about the token).
pub fn csrf_ok(session: &Session, sent: Option<&str>) -> bool {
    sent.is_some_and(|t| Sha256::digest(t.as_bytes()) == Sha256::digest(session.csrf.as_bytes()))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` when served over TLS.
pub fn cookie(name: &str, value: &str, max_age: Duration, secure: bool, path: &str) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn request_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, name))
        .map(str::to_string)
}
