//! The `--sim` cluster's saved state is one cluster for every command. A lock file beside it
//! makes commands that change the cluster take turns; a command that only reads never waits
//! (a save replaces the file whole, so it reads the cluster as last saved). `stand serve
//! --sim`, which holds the cluster for as long as it runs, leaves its address beside it:
//! other commands then talk to it over HTTPS instead of to a copy of their own, so nothing
//! one of them does is lost when another saves.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::pve::{Connection, Credentials, Secret, TlsMode};

/// The lock on a saved simulated cluster, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Where `stand serve --sim` serves the cluster it holds (a file readable by its owner only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rendezvous {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Its certificate's SHA-256 fingerprint.
    pub fingerprint: String,
    /// `root@pam`'s password there.
    pub password: String,
    /// The serving process.
    pub pid: u32,
    /// Its simulator's time scale and seed.
    pub time_scale: f64,
    /// Seed.
    pub seed: u64,
    /// The digest of the fixture its cluster was made from.
    pub fixture_digest: Option<String>,
}

impl Rendezvous {
    /// How to reach it: as `root@pam`, its certificate pinned.
    pub fn connection(&self) -> Connection {
        Connection {
            url: self.url.clone(),
            credentials: Credentials::Password { user: "root@pam".into(), password: Secret::new(&self.password) },
            tls: TlsMode::Pinned(self.fingerprint.clone()),
        }
    }
}

/// Who has the cluster for this command.
#[derive(Debug)]
pub enum Holder {
    /// This command loads it from the saved state (and, holding the lock, saves it back).
    Free(Option<StateLock>),
    /// `stand serve --sim` runs it.
    Served(Rendezvous),
}

fn lock_path(state: &Path) -> PathBuf {
    state.with_extension("lock")
}

/// Where `stand serve --sim` leaves its address.
pub fn rendezvous_path(state: &Path) -> PathBuf {
    state.with_extension("serve.json")
}

fn read_rendezvous(state: &Path) -> Option<Rendezvous> {
    serde_json::from_str(&std::fs::read_to_string(rendezvous_path(state)).ok()?).ok()
}

/// Takes the cluster at `state` for a command that changes it (`exclusive`: waits for the
/// lock, saying so once), or for one that only reads it. When `stand serve --sim` holds it,
/// its address instead.
pub fn acquire(state: &Path, exclusive: bool) -> anyhow::Result<Holder> {
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let path = lock_path(state);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut said = false;
    loop {
        let taken = if exclusive { file.try_lock() } else { file.try_lock_shared() };
        match taken {
            Ok(()) => {
                // A server that ended without cleaning up (killed) left its address.
                match std::fs::remove_file(rendezvous_path(state)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot remove {}", rendezvous_path(state).display()));
                    }
                    _ => {}
                }
                return Ok(Holder::Free(exclusive.then_some(StateLock { _file: file })));
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(r) = read_rendezvous(state) {
                    return Ok(Holder::Served(r));
                }
                // Another command is changing it: a reader takes it as last saved.
                if !exclusive {
                    return Ok(Holder::Free(None));
                }
                if !said {
                    crate::errln!(
                        "waiting for another stand command to finish with the simulated cluster at {}",
                        state.display()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
}

/// Leaves `r` beside `state` for other commands, until dropped.
pub struct Published {
    path: PathBuf,
}

/// Publishes where `stand serve --sim` serves the cluster at `state`.
pub fn publish(state: &Path, r: &Rendezvous) -> anyhow::Result<Published> {
    let path = rendezvous_path(state);
    let text = serde_json::to_string(r).context("cannot write the server's address")?;
    crate::sim::write_private(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Published { path })
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_take_turns_readers_never_wait_and_a_server_is_found_by_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sim-state.json");
        let Holder::Free(Some(writer)) = acquire(&state, true).unwrap() else { panic!("free") };
        let file = File::open(lock_path(&state)).unwrap();
        assert!(matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)), "a writer holds the lock");
        assert!(matches!(acquire(&state, false).unwrap(), Holder::Free(None)), "a reader reads the saved state");
        drop(writer);
        assert!(file.try_lock().is_ok(), "released");
        file.unlock().unwrap();

        let Holder::Free(Some(server)) = acquire(&state, true).unwrap() else { panic!("free") };
        let r = Rendezvous {
            url: "https://127.0.0.1:9".into(),
            fingerprint: "AA".into(),
            password: "pw".into(),
            pid: 1,
            time_scale: 0.02,
            seed: 7,
            fixture_digest: None,
        };
        let published = publish(&state, &r).unwrap();
        for exclusive in [true, false] {
            match acquire(&state, exclusive).unwrap() {
                Holder::Served(found) => assert_eq!((found.url.as_str(), found.seed), ("https://127.0.0.1:9", 7)),
                Holder::Free(_) => panic!("the server holds it"),
            }
        }
        // A server killed without cleaning up: its lock is gone, its stale address too.
        std::mem::forget(published);
        drop(server);
        assert!(matches!(acquire(&state, false).unwrap(), Holder::Free(None)));
        assert!(!rendezvous_path(&state).exists());
    }
}
