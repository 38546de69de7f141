//! Which failures of an apply are worth repeating.

use crate::pve::PveError;

/// Transient failures, including lock timeouts inside tasks.
pub fn transient(e: &PveError) -> bool {
    e.is_transient()
}

/// A failure after which an idempotent call may simply be made again: a transient one,
/// or no answer at all.
pub fn repeatable(e: &PveError) -> bool {
    transient(e) || matches!(e, PveError::Transport { .. })
}

/// A delete that found nothing to delete (it is done).
pub fn gone(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("does not exist") || f.message.contains("no such"))
}

/// An "already exists" answer to a create that may have been applied before.
pub fn already_exists(e: &PveError) -> bool {
    let text = match e {
        PveError::Api { failure, .. } => format!("{} {:?}", failure.message, failure.errors),
        _ => return false,
    };
    text.contains("already exists")
}
