//! `stand credentials LAB --html FILE`: the printable logins, offline.

use std::path::Path;

use anyhow::Context;

use super::{Usage, exit, lab};
use crate::apply::credentials;
use crate::serve::{by_name, logins_page};

/// Writes the logins page of `lab` from its credentials file.
pub fn write(lab_arg: &str, html: &Path, file: Option<&Path>, url: Option<&str>, quiet: bool) -> anyhow::Result<u8> {
    let lab = lab::lab_name(lab_arg);
    let path = file.map(Path::to_path_buf).unwrap_or_else(|| credentials::default_path(&lab));
    let rows = credentials::read(&path)?;
    if rows.is_empty() {
        return Err(Usage(format!(
            "{}: no such file or no students in it; `stand up {lab}.rhai` writes it (or give --file)",
            path.display()
        ))
        .into());
    }
    if let Some(u) = url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(Usage(format!("--url {u}: give the class page's address, e.g. https://class.example:8443/")).into());
    }
    let page = logins_page(&lab, &by_name(rows.clone()), url, 0).context("cannot render the logins page")?;
    crate::sim::write_private(html, page.as_bytes()).with_context(|| format!("cannot write {}", html.display()))?;
    if !quiet {
        crate::errln!(
            "logins of {} written to {} (mode 0600: it holds passwords); open it in a browser and print it",
            crate::cli::render::count(rows.len(), "student"),
            html.display()
        );
    }
    Ok(exit::OK)
}
