//! Which cluster to talk to and how: `--cluster NAME` from `~/.config/stand/clusters.toml`,
//! or `PVE_URL` + `PVE_TOKEN` (or `PVE_USER` + `PVE_PASSWORD`) + `PVE_FINGERPRINT`/`PVE_CA`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::client::{ClientError, ClientOptions, Credentials, PveClient, Secret};
use super::tls::{TlsMode, normalize_fingerprint};

/// One named cluster in `clusters.toml`. Secrets are referenced (`token_file`,
/// `token_env`, `password_env`), or given inline only when the user writes them so.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `https://host:8006`.
    pub url: String,
    /// `user@realm!tokenid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// File holding the token secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the token secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The token secret itself (discouraged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// `user@realm` for ticket login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment variable holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Pinned certificate fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Extra CA (PEM file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct ClustersFile {
    #[serde(default)]
    clusters: BTreeMap<String, ClusterConfig>,
}

/// Why connection settings are unusable; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing says which cluster.
    #[error(
        "no cluster given: set PVE_URL and PVE_TOKEN (user@realm!tokenid=secret), use --cluster NAME, or --sim for the simulator"
    )]
    NoCluster,
    /// A variable or field is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// The variable or `clusters.toml` field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `clusters.toml` problems.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Resolved connection settings.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Base URL.
    pub url: String,
    /// Credentials.
    pub credentials: Credentials,
    /// TLS trust.
    pub tls: TlsMode,
}

fn invalid(field: &str, message: impl Into<String>) -> ConnectError {
    ConnectError::Invalid { field: field.into(), message: message.into() }
}

fn check_url(field: &str, url: &str) -> Result<(), ConnectError> {
    let ok = reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("'{url}' is not an https:// URL (e.g. https://pve1.example.org:8006)")))
    }
}

fn tls_mode(
    field_prefix: &str,
    fingerprint: Option<String>,
    ca: Option<PathBuf>,
    insecure: bool,
) -> Result<TlsMode, ConnectError> {
    if insecure {
        return Ok(TlsMode::Insecure);
    }
    if let Some(fp) = fingerprint {
        let norm = normalize_fingerprint(&fp).ok_or_else(|| {
            invalid(
                &format!("{field_prefix}FINGERPRINT"),
                "expected the SHA-256 fingerprint PVE shows (32 hex bytes, AA:BB:...)",
            )
        })?;
        return Ok(TlsMode::Pinned(norm));
    }
    if let Some(path) = ca {
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| invalid(&format!("{field_prefix}CA"), format!("cannot read {}: {e}", path.display())))?;
        return Ok(TlsMode::Verify { extra_ca: Some(pem) });
    }
    Ok(TlsMode::Verify { extra_ca: None })
}

impl Connection {
    /// Settings from a lookup of environment variables (`PVE_*`).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>, insecure: bool) -> Result<Connection, ConnectError> {
        let url = get("PVE_URL").ok_or(ConnectError::NoCluster)?;
        check_url("PVE_URL", &url)?;
        let credentials = if let Some(tok) = get("PVE_TOKEN") {
            Credentials::from_token(&tok).map_err(|m| invalid("PVE_TOKEN", m))?
        } else if let Some(user) = get("PVE_USER") {
            let password = get("PVE_PASSWORD")
                .ok_or_else(|| invalid("PVE_PASSWORD", "PVE_USER is set, so PVE_PASSWORD must be too"))?;
            Credentials::Password { user, password: Secret::new(password) }
        } else {
            return Err(invalid("PVE_TOKEN", "set PVE_TOKEN=user@realm!tokenid=secret (or PVE_USER and PVE_PASSWORD)"));
        };
        let tls = tls_mode("PVE_", get("PVE_FINGERPRINT"), get("PVE_CA").map(PathBuf::from), insecure)?;
        Ok(Connection { url, credentials, tls })
    }

    /// Settings of the environment of this process.
    pub fn from_env(insecure: bool) -> Result<Connection, ConnectError> {
        Self::from_env_with(|k| std::env::var(k).ok().filter(|v| !v.is_empty()), insecure)
    }

    /// Settings of `[clusters.NAME]` in `file`.
    pub fn from_file(file: &Path, name: &str, insecure: bool) -> Result<Connection, ConnectError> {
        let path = file.display().to_string();
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConnectError::File { path: path.clone(), message: e.to_string() })?;
        let parsed: ClustersFile =
            toml::from_str(&text).map_err(|e| ConnectError::File { path: path.clone(), message: e.to_string() })?;
        let c = parsed.clusters.get(name).ok_or_else(|| ConnectError::File {
            path: path.clone(),
            message: format!(
                "no [clusters.{name}]; known: {}",
                parsed.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
        Self::from_config(name, c, insecure)
    }

    /// Settings of one cluster entry named `name`.
    pub fn from_config(name: &str, c: &ClusterConfig, insecure: bool) -> Result<Connection, ConnectError> {
        let field = |f: &str| format!("clusters.{name}.{f}");
        check_url(&field("url"), &c.url)?;
        let credentials = if let Some(id) = &c.token_id {
            let secret = if let Some(f) = &c.token_file {
                std::fs::read_to_string(f)
                    .map_err(|e| invalid(&field("token_file"), format!("cannot read {}: {e}", f.display())))?
                    .trim()
                    .to_string()
            } else if let Some(var) = &c.token_env {
                std::env::var(var)
                    .map_err(|_| invalid(&field("token_env"), format!("environment variable {var} is not set")))?
            } else if let Some(s) = &c.token_secret {
                s.clone()
            } else {
                return Err(invalid(&field("token_id"), "add token_file or token_env with the secret"));
            };
            Credentials::from_token(&format!("{id}={secret}")).map_err(|m| invalid(&field("token_id"), m))?
        } else if let Some(user) = &c.user {
            let var = c
                .password_env
                .as_deref()
                .ok_or_else(|| invalid(&field("password_env"), "name the environment variable holding the password"))?;
            let password = std::env::var(var)
                .map_err(|_| invalid(&field("password_env"), format!("environment variable {var} is not set")))?;
            Credentials::Password { user: user.clone(), password: Secret::new(password) }
        } else {
            return Err(invalid(&field("token_id"), "give token_id (recommended) or user"));
        };
        let tls = tls_mode(&format!("clusters.{name}."), c.fingerprint.clone(), c.ca.clone(), insecure)?;
        Ok(Connection { url: c.url.clone(), credentials, tls })
    }

    /// `~/.config/stand/clusters.toml`.
    pub fn default_file() -> PathBuf {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("stand/clusters.toml")
    }

    /// The client for these settings.
    pub fn client(&self, opts: ClientOptions) -> Result<PveClient, ConnectError> {
        Ok(PveClient::new(&self.url, self.credentials.clone(), &self.tls, opts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_settings_are_validated_with_clear_errors() {
        assert!(matches!(Connection::from_env_with(env(&[]), false), Err(ConnectError::NoCluster)));
        let e = Connection::from_env_with(env(&[("PVE_URL", "http://x:8006"), ("PVE_TOKEN", "a@pve!t=s")]), false)
            .unwrap_err();
        assert!(e.to_string().starts_with("PVE_URL: 'http://x:8006' is not an https:// URL"), "{e}");
        let e = Connection::from_env_with(env(&[("PVE_URL", "https://x:8006"), ("PVE_TOKEN", "a@pve=s")]), false)
            .unwrap_err();
        assert!(e.to_string().contains("'!tokenid' part is missing"), "{e}");
        let e = Connection::from_env_with(
            env(&[("PVE_URL", "https://x:8006"), ("PVE_TOKEN", "a@pve!t=s"), ("PVE_FINGERPRINT", "zz")]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("PVE_FINGERPRINT:"), "{e}");
        let c = Connection::from_env_with(
            env(&[("PVE_URL", "https://x:8006"), ("PVE_TOKEN", "a@pve!t=s3cr3t-uuid")]),
            false,
        )
        .unwrap();
        assert_eq!(c.tls, TlsMode::Verify { extra_ca: None }, "TLS is verified by default");
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug never shows the secret");
    }

    #[test]
    fn clusters_file_references_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "uuid-secret\n").unwrap();
        let file = dir.path().join("clusters.toml");
        let fp = vec!["AB"; 32].join(":");
        std::fs::write(&file, format!("[clusters.lab]\nurl = \"https://pve.lab:8006\"\ntoken_id = \"stand@pve!deploy\"\ntoken_file = \"{}\"\nfingerprint = \"{fp}\"\n", dir.path().join("tok").display())).unwrap();
        let c = Connection::from_file(&file, "lab", false).unwrap();
        assert_eq!(c.tls, TlsMode::Pinned(fp));
        match c.credentials {
            Credentials::Token { id, secret } => {
                assert_eq!(id, "stand@pve!deploy");
                assert_eq!(secret.expose(), "uuid-secret");
            }
            _ => panic!("token expected"),
        }
        let e = Connection::from_file(&file, "other", false).unwrap_err();
        assert!(e.to_string().contains("no [clusters.other]; known: lab"), "{e}");
    }
}
