//! The Proxmox VE API as `stand` sees it: requests built without I/O, the [`Pve`] trait
//! and its one client over a [`Transport`] (HTTPS, or the simulator in process), typed
//! endpoints on top of it, UPIDs and task waiting.

mod agent;
mod api;
mod client;
mod connect;

mod error;
mod https;
mod log;
mod netdev;
mod request;
mod retry;
mod task;
mod tls;
mod transport;
mod types;
mod upid;

pub use agent::{AgentExt, ExecStatus, FileRead, GuestAddress, GuestInterface, agent_enabled};
pub use api::{BridgeParams, CloneParams, Pve, PveExt};
pub use client::{ClientError, ClientOptions, Credentials, PveClient, Secret, presented_fingerprint};
pub use connect::{ClusterConfig, ConnectError, Connection};

pub use error::{ApiFailure, PveError};
pub use log::Logged;
pub use netdev::{NetDevice, NetDeviceError, NicModel};
pub use request::{ApiRequest, LIST_SEP, Method, Params, list_items, push_param, segment};
pub use retry::{Backoff, retryable, seed_jitter};
pub use task::{TaskStatus, WaitPolicy};
pub use tls::{TlsMode, cert_fingerprint, client_config, normalize_fingerprint};
pub use transport::{Transport, TransportError, WireRequest, WireResponse, reason_phrase};
pub use types::*;
pub use upid::{Upid, UpidParseError, exitstatus_from_log_line};
