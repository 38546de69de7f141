//! The integration tests, linked as one binary (one link instead of one per file).
//!
//! Each module is a feature, tested through the library or the `stand` binary on the simulator.

#![allow(dead_code)]

/// Helpers that run the `stand` binary and `stand sim serve`.
mod common;

/// Removals as an action graph: plan --prune and down --dry-run show what runs.
mod action_graph;
/// The bad input corpus of `tests/bad_input/`: exit 2, a clear message, the cluster unchanged.
mod bad_input;
/// `stand serve` in headless Chromium over WebDriver.
mod browser;
/// `stand export capi`: Cluster API manifests validated against CAPMOX's and CAPI's CRDs.
mod capi;
/// The command line end to end.
mod cli;
/// The HTTPS client against `stand sim serve`.
mod client_https;
/// The HTTPS client on the wire (mockito).
mod client_wire;
/// Closed stdout and stderr.
mod closed_output;
/// One set of scenarios against the simulator in process, over HTTPS, and a real PVE.
mod conformance;
/// A course after `up`: baseline, reset, power, snapshots.
mod course;
/// `doctor` and `graph`.
mod doctor_graph;
/// Seeded fault schedules, each followed by a clean `up` that must converge.
mod fault_campaign;
/// `stand check`: grading through the guest agent, the grade sheet, the history.
mod grading;
/// up, re-up, down on the simulator.
mod lab_cycle;
/// The `--sim` cluster is one cluster: commands take turns, `stand serve --sim` shares it.
mod one_sim;
/// Third-party clients (proxmoxer, Ansible, labomatics, deploy-stand) against the simulator.
mod peer;
/// The seed examples planned exactly.
mod plan_examples;
/// Kills, concurrent instructors, isolation, secrets.
mod reliability;
/// The REPL through a pipe and a pty.
mod repl;
/// `--sim` runs replayed by their seed.
mod replay;
/// Rosters as schools export them, grades out as gradebooks import them, printed logins.
mod rosters;
/// SDN VXLAN: stands that span nodes, the simulated /cluster/sdn.
mod sdn;
/// `stand serve`: pages, API, sessions, metrics, load.
mod serve;
/// The simulator against PVE's documented behaviour.
mod sim_semantics;
/// `stand templates`: copies of templates on every node, used by clone, pruned.
mod templates;
/// What a newcomer and third-party clients found (the trust issue).
mod trust;
