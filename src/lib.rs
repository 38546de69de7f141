//! `stand` deploys per-student lab stands on a Proxmox VE cluster.
//!
//! The layers, top to bottom: `cli` (commands), `pve` (the Proxmox VE API: the [`pve::Pve`]
//! trait, typed endpoints, the HTTPS client) and `sim` (a faithful in-memory Proxmox VE that
//! implements the same trait and can be served over HTTPS).
//!
//! ```
//! use stand::pve::PveExt;
//! # tokio_test();
//! # fn tokio_test() {
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let sim = stand::sim::Sim::default_instant();
//!     let pve = sim.session("root@pam");
//!     let nodes = pve.nodes().await.unwrap();
//!     assert_eq!(nodes.len(), 3);
//! });
//! # }
//! ```
#![deny(missing_docs)]

pub mod apply;
pub mod capi;
pub mod check;
pub mod cli;
pub mod grade;
pub mod out;
pub mod plan;
pub mod pve;
pub mod roster;
pub mod script;
pub mod serve;
pub mod sim;
