//! `stand cluster add NAME`: checks a connection, then records it in clusters.toml.

use anyhow::Context;

use super::arguments::ClusterCommand;
use super::{Usage, exit};
use crate::pve::{ClientOptions, ClusterConfig, Connection, PveError, PveExt, presented_fingerprint};
use crate::sim::write_private;

pub async fn run(cmd: ClusterCommand) -> anyhow::Result<u8> {
    let ClusterCommand::Add { name, url, token_id, token_file, token_env, fingerprint, ca, force } = cmd;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || name.is_empty() {
        return Err(Usage(format!("cluster name '{name}': use letters, digits, - and _")).into());
    }
    if token_file.is_none() && token_env.is_none() {
        return Err(Usage(
            "give the token secret's place: --token-file FILE or --token-env VAR (never the secret itself)".into(),
        )
        .into());
    }
    // Files are recorded by absolute path: the entry is used from any directory later.
    let absolute = |p: Option<std::path::PathBuf>| -> anyhow::Result<Option<std::path::PathBuf>> {
        p.map(|p| std::path::absolute(&p).with_context(|| format!("cannot resolve {}", p.display()))).transpose()
    };
    let (token_file, ca) = (absolute(token_file)?, absolute(ca)?);
    let file = Connection::default_file();
    let mut doc: toml::Table = match std::fs::read_to_string(&file) {
        Ok(text) => text.parse().with_context(|| format!("{} is not valid TOML", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let clusters = doc.entry("clusters").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(clusters) = clusters.as_table_mut() else {
        anyhow::bail!("{}: `clusters` is not a table", file.display());
    };
    if clusters.contains_key(&name) && !force {
        return Err(Usage(format!("{} already has [clusters.{name}]; --force replaces it", file.display())).into());
    }
    let config = ClusterConfig {
        url: url.clone(),
        token_id: Some(token_id),
        token_file,
        token_env,
        token_secret: None,
        user: None,
        password_env: None,
        fingerprint,
        ca,
    };
    // The same checks `stand` makes on every use, then one call that proves it works.
    let conn = Connection::from_config(&name, &config, false).map_err(super::target::bad_settings)?;
    let client = conn.client(ClientOptions { attempts: 1, ..ClientOptions::default() })?;
    match client.version().await {
        Ok(v) => crate::errln!(
            "{url}: Proxmox VE {} answered; run `stand doctor --cluster {name}` for the full checks",
            v.version
        ),
        Err(PveError::Tls(msg)) => {
            let hint = match presented_fingerprint(&url).await {
                Some(fp) => format!("if this is your cluster's certificate, add --fingerprint {fp}"),
                None => "add --fingerprint or --ca".into(),
            };
            anyhow::bail!("{msg}\n{hint}");
        }
        Err(e) => anyhow::bail!("{url}: {e}; nothing was written"),
    }
    clusters.insert(name.clone(), toml::Value::try_from(&config)?);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(&file, toml::to_string_pretty(&doc)?.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    crate::outln!("added [clusters.{name}] to {} (mode 0600); use it with --cluster {name}", file.display());
    Ok(exit::OK)
}
