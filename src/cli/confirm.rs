//! Asking before a command does what cannot be undone: on a terminal a question, `--yes`
//! instead of it, and for removals no silent go-ahead where nobody can be asked.

use std::io::IsTerminal;

use super::Usage;

/// Whether a person can be asked: stdin and stderr are a terminal.
fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` on the terminal; anything but yes is no.
fn ask(question: &str) -> bool {
    crate::err!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes" | "да" | "д")
}

/// Before an operation that can be repeated or undone (a reset): `yes`, or no terminal to ask
/// on, goes ahead; else the person answers.
pub fn go_ahead(question: &str, yes: bool) -> bool {
    yes || !can_ask() || ask(question)
}

/// Before removing: `yes` goes ahead; on a terminal the person answers (`Ok(false)`: they
/// said no); with nobody to ask, it refuses (exit 2) and names `--yes`.
pub fn before_removing(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !can_ask() {
        return Err(Usage(format!(
            "not removing without asking: {} Run it on a terminal to answer, or add --yes (--dry-run shows it)",
            question.trim_end_matches('?').to_string() + "."
        ))
        .into());
    }
    Ok(ask(question))
}
