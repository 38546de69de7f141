//! `stand sim serve` and `stand sim reset`.

use std::path::PathBuf;

use anyhow::Context;

use super::arguments::{Latency, SimCommand};
use super::target::Cluster;
use crate::plan::course::Scope;
use crate::pve::AgentExt;
use crate::sim::{FaultSpec, Fixture, LatencyModel, Sim, SimOptions};

/// Where `stand` keeps state between commands: `$XDG_STATE_HOME/stand`, else
/// `~/.local/state/stand`.
pub fn state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("stand")
}

/// Where `--sim` keeps its cluster between commands.
pub fn default_state_path() -> PathBuf {
    state_dir().join("sim-state.json")
}

pub async fn run(cmd: SimCommand) -> anyhow::Result<u8> {
    match cmd {
        SimCommand::Serve { listen, fixture, root_password, latency, time_scale, faults, seed, request_log } => {
            anyhow::ensure!(
                time_scale > 0.0 && time_scale.is_finite(),
                "--time-scale must be a positive number, got {time_scale}"
            );
            let fixture = match &fixture {
                Some(p) => Fixture::load(p)?,
                None => Fixture::default_cluster(),
            };
            let faults: FaultSpec = faults.parse().map_err(|e: String| anyhow::anyhow!("--faults: {e}"))?;
            let latency = match latency {
                Latency::None => LatencyModel::none(),
                Latency::Realistic => LatencyModel::realistic(),
            };
            let seed = seed.unwrap_or_else(|| rand::random::<u32>().into());
            let sim = Sim::new(&fixture, SimOptions { latency, time_scale, faults, seed });
            if let Some(p) = &root_password {
                sim.set_password("root@pam", p);
            }
            if let Some(log) = &request_log {
                sim.log_requests_to(log).with_context(|| format!("cannot open request log {}", log.display()))?;
            }
            let server = crate::sim::serve(sim, listen).await?;
            // A reader that stops after these lines (`| head -3`) must not stop the server.
            crate::out!(
                "export PVE_URL={}\nexport PVE_TOKEN='{}'\nexport PVE_FINGERPRINT={}\n",
                server.url,
                server.token,
                server.fingerprint
            );
            tracing::warn!(
                "SIMULATED Proxmox VE {} serving {} ({} nodes, --seed {seed}); Ctrl-C stops it",
                fixture.version,
                server.url,
                fixture.nodes.len()
            );
            tokio::signal::ctrl_c().await?;
            server.shutdown();
            Ok(0)
        }
        SimCommand::Reset { sim_state } => {
            let path = sim_state.unwrap_or_else(default_state_path);
            // Not while another command, or `stand serve --sim`, has the cluster.
            let _lock = match super::sim_state::acquire(&path, true)? {
                super::sim_state::Holder::Free(lock) => lock,
                super::sim_state::Holder::Served(at) => anyhow::bail!(
                    "stand serve --sim (pid {}) is running the simulated cluster at {}: stop it first",
                    at.pid,
                    path.display()
                ),
            };
            match std::fs::remove_file(&path) {
                Ok(()) => crate::errln!("forgot the simulated cluster at {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    crate::errln!("no simulated cluster saved at {}", path.display())
                }
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
            }
            Ok(0)
        }
        SimCommand::Guest(_) => {
            anyhow::bail!("stand sim guest works on the simulated cluster (see stand sim guest --help)")
        }
    }
}

/// `stand sim guest write LAB USER VM PATH [TEXT]`: writes a file in a student's guest on the
/// simulated cluster through the guest agent, as the student would have.
pub async fn guest_write(
    cluster: &Cluster,
    lab: &str,
    user: &str,
    vm: &str,
    path: &str,
    text: Option<&str>,
) -> anyhow::Result<u8> {
    let snap = super::up::snapshot(cluster).await?;
    let lab = super::down::lab_of(lab, &snap);
    let only = super::down::check_exists(&snap, &lab, &[user.to_string()])?;
    let names = Scope::vm_names(&snap, &lab);
    let wanted = [vm.to_string()];
    let chosen = Scope { lab: &lab, only: &only, vms: &wanted }.select(&snap);
    let Some(target) = chosen.first() else {
        let theirs = Scope { lab: &lab, only: &only, vms: &[] }.select(&snap);
        let list: Vec<&str> = theirs.iter().map(|v| v.name.as_str()).collect();
        let meant = super::suggest::did_you_mean(vm, names.iter().map(String::as_str));
        anyhow::bail!(
            "{} has no VM '{vm}'{} in lab {lab}; theirs: {}",
            only.join(", "),
            meant.map(|m| format!(" (did you mean '{m}'?)")).unwrap_or_default(),
            list.join(", ")
        );
    };
    if !path.starts_with('/') {
        return Err(super::Usage(format!("{path}: give the file's absolute path in the guest (/etc/hostname)")).into());
    }
    let mut content = match text {
        Some(t) => t.to_string(),
        None => std::io::read_to_string(std::io::stdin()).context("cannot read the content from stdin")?,
    };
    if !content.ends_with('\n') {
        content.push('\n');
    }
    cluster
        .pve
        .agent_file_write(&target.node, target.vmid, path, &content)
        .await
        .with_context(|| format!("cannot write {path} in {}", target.name))?;
    crate::outln!("wrote {} bytes to {path} in {} ({}, lab {lab})", content.len(), target.name, only.join(", "));
    Ok(super::exit::OK)
}
