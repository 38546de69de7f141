//! A faithful in-memory Proxmox VE: real paths, parameters, UPIDs, locks, errors and
//! permissions, a latency model and seeded faults on tokio's clock. Used by tests,
//! benchmarks, `--sim`, and served over HTTPS by `stand sim serve`.

mod access;
mod context;
mod core;
mod faults;
mod fixture;
mod front;
mod guest;
mod handlers;
mod hold;
mod model;
mod schema;
mod server;
mod session;
mod state;

pub use access::{BUILTIN_ROLES, Identity};
pub use core::{Reply, Sim, SimOptions, write_private};
pub use faults::TransportFault;
pub use fixture::{DEFAULT_FIXTURE, Fixture, FixtureError, GuestFixture};
pub use front::{Dropped, InProcess, answer};
pub use guest::{Canned, Guest};
pub use hold::Hold;
pub use model::{FaultSpec, LatencyModel, SimStats};
pub use server::{RunningServer, ServeError, serve};
pub use session::SimSession;
pub use state::SimState;
