//! Which failures of an apply are worth repeating.

use crate::pve::PveError;

/// Transient failures, including lock timeouts inside tasks.
pub fn transient(e: &PveError) -> bool {
    e.is_transient()
}

/// An "already exists" answer to a create that may have been applied before.
pub fn already_exists(e: &PveError) -> bool {
    let text = match e {
        PveError::Api { failure, .. } => format!("{} {:?}", failure.message, failure.errors),
        _ => return false,
    };
    text.contains("already exists")
}
