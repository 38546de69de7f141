//! The command line, as clap parses it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Deploy lab stands for students on a Proxmox VE cluster.
#[derive(Debug, Parser)]
#[command(name = "stand", version, about, long_about = None)]
pub struct Arguments {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `stand` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The built-in Proxmox VE simulator.
    #[command(subcommand)]
    Sim(SimCommand),
}

/// How long simulated operations take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Latency {
    /// Every operation ends at once.
    None,
    /// Durations of a small real cluster (see README).
    Realistic,
}

/// `stand sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator as a Proxmox VE API over HTTPS.
    #[command(long_about = "Serve the simulator as a Proxmox VE API over HTTPS at /api2/json.\n\n\
        The first lines on stdout are shell exports for PVE_URL, PVE_TOKEN and PVE_FINGERPRINT;\n\
        logs go to stderr. Any Proxmox client works against it, for example:\n\n  \
        eval \"$(stand sim serve | head -3)\"   # in another shell, keep it running\n  \
        curl --cacert <(...) -H \"Authorization: PVEAPIToken=$PVE_TOKEN\" $PVE_URL/api2/json/nodes")]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8006")]
        listen: SocketAddr,
        /// Cluster fixture (YAML); the built-in 3-node cluster when absent.
        #[arg(long)]
        fixture: Option<PathBuf>,
        /// Password of root@pam for ticket login (none: token login only).
        #[arg(long, env = "STAND_SIM_ROOT_PASSWORD", hide_env_values = true)]
        root_password: Option<String>,
        /// Latency model.
        #[arg(long, value_enum, default_value = "realistic")]
        latency: Latency,
        /// Multiplies every simulated duration (0.1 = ten times faster).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Injected faults: comma list of kind=probability (http5xx, reset, lock_timeout, task_fail, slow_task).
        #[arg(long, default_value = "")]
        faults: String,
        /// Seed of the fault injection.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Append every request received as a JSON line {"method","path","params"}.
        #[arg(long)]
        request_log: Option<PathBuf>,
    },
    /// Forget the --sim cluster's saved state.
    Reset {
        /// State file (default: the user's data directory).
        #[arg(long)]
        sim_state: Option<PathBuf>,
    },
}
