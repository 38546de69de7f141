//! A preflight check's outcome, as `stand doctor` prints it: what was checked, how it came
//! out, what was found and what to do. Checks of other parts (`capi::checks`) return these.

use serde::Serialize;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but worth knowing or fixing.
    Warn,
    /// What it checks would fail (`stand up`, or CAPMOX).
    Fail,
}

/// One row.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Outcome.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do (empty when ok).
    pub fix: String,
}

/// A check's outcome.
pub fn row(name: &'static str, verdict: Verdict, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, verdict, detail: detail.into(), fix: fix.into() }
}
