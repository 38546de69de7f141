//! Errors of the Proxmox VE API, kept as PVE reports them.

use std::collections::BTreeMap;
use std::fmt;

/// A failure answered by the API: HTTP status, PVE's message and per-parameter errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status code (400, 401, 403, 500, 501, 596, ...).
    pub status: u16,
    /// PVE's message: the reason phrase, or `message` in the body on newer PVE.
    pub message: String,
    /// Per-parameter errors of a 400 `Parameter verification failed.`
    pub errors: BTreeMap<String, String>,
}

impl ApiFailure {
    /// A failure with a status and a message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), errors: BTreeMap::new() }
    }

    /// PVE's 400 `Parameter verification failed.` with one error per parameter.
    pub fn params(errors: BTreeMap<String, String>) -> Self {
        Self { status: 400, message: "Parameter verification failed.".into(), errors }
    }

    /// A 400 for a single parameter.
    pub fn param(name: &str, msg: impl Into<String>) -> Self {
        Self::params(BTreeMap::from([(name.to_string(), msg.into())]))
    }

    /// A plain `die "text\n"` in a PVE handler: 500 with the text as reason phrase.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(500, msg)
    }

    /// `403 Permission check failed (path, privilege)`.
    pub fn forbidden(detail: impl fmt::Display) -> Self {
        Self::new(403, format!("Permission check failed ({detail})"))
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message.trim_end())?;
        if !self.errors.is_empty() {
            let list: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k}: {}", v.trim_end())).collect();
            write!(f, " ({})", list.join("; "))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to Proxmox VE.
#[derive(Debug, thiserror::Error)]
pub enum PveError {
    /// The API answered with an error status.
    #[error("{method} {path}: {failure}")]
    Api {
        /// HTTP method of the request.
        method: String,
        /// API path of the request (below `/api2/json`).
        path: String,
        /// What PVE answered.
        failure: ApiFailure,
    },
    /// The request did not get an answer (connection refused, reset, timeout).
    #[error("{method} {path}: {message}")]
    Transport {
        /// HTTP method of the request.
        method: String,
        /// API path of the request.
        path: String,
        /// What failed, without secrets.
        message: String,
        /// The request may have reached PVE and been applied (reset or timeout after
        /// sending); a write must then be checked by reading state, not repeated.
        maybe_applied: bool,
    },
    /// TLS: the server's certificate is not trusted.
    #[error("{0}")]
    Tls(String),
    /// A task ended with an error exit status.
    #[error("task {upid} failed: {exitstatus}")]
    TaskFailed {
        /// The task.
        upid: String,
        /// PVE's exit status text.
        exitstatus: String,
    },
    /// A task did not end in the time allowed.
    #[error("task {upid} still running after {seconds} s")]
    TaskTimeout {
        /// The task.
        upid: String,
        /// How long it was waited for.
        seconds: u64,
    },
    /// The answer did not have the expected shape.
    #[error("unexpected answer to {path}: {message}")]
    Decode {
        /// API path of the request.
        path: String,
        /// What did not fit.
        message: String,
    },
}

impl PveError {
    /// The API failure behind this error, if PVE answered.
    pub fn failure(&self) -> Option<&ApiFailure> {
        match self {
            PveError::Api { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// The HTTP status, if PVE answered.
    pub fn status(&self) -> Option<u16> {
        self.failure().map(|f| f.status)
    }

    /// A lock wait that timed out (`can't lock file ... got timeout`, cfs-lock timeouts).
    pub fn is_lock_timeout(&self) -> bool {
        let text = match self {
            PveError::Api { failure, .. } => failure.message.as_str(),
            PveError::TaskFailed { exitstatus, .. } => exitstatus.as_str(),
            _ => return false,
        };
        text.contains("got timeout") || text.contains("got lock request timeout")
    }

    /// Whether a write that failed this way certainly did not happen, so repeating it is safe:
    /// no connection, a lock that was never acquired, a proxy that did not forward.
    pub fn write_not_applied(&self) -> bool {
        match self {
            PveError::Transport { maybe_applied, .. } => !maybe_applied,
            PveError::Api { failure, .. } => matches!(failure.status, 502 | 503) || self.is_lock_timeout(),
            _ => false,
        }
    }

    /// A failure worth retrying: no answer, a busy node (5xx, 596), a lock timeout.
    /// 4xx answers are never transient: the request itself is wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            PveError::Transport { .. } => true,
            PveError::Api { failure, .. } => {
                matches!(failure.status, 502..=504 | 596)
                    || (failure.status == 500 && Self::transient_500(&failure.message))
                    || self.is_lock_timeout()
            }
            PveError::TaskFailed { .. } => self.is_lock_timeout(),
            _ => false,
        }
    }

    fn transient_500(message: &str) -> bool {
        let m = message.to_ascii_lowercase();
        m.contains("timeout")
            || m.contains("temporarily")
            || m.contains("broken pipe")
            || m.contains("connection")
            || m.contains("busy")
            || m.contains("try again")
            || m.contains("internal server error")
    }
}
