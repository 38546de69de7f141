//! `stand sim serve` and `stand sim reset`.

use std::path::PathBuf;

use anyhow::Context;

use super::arguments::{Latency, SimCommand};
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
            match std::fs::remove_file(&path) {
                Ok(()) => crate::errln!("forgot the simulated cluster at {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    crate::errln!("no simulated cluster saved at {}", path.display())
                }
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
            }
            Ok(0)
        }
    }
}
