//! [`ClusterAgent`]: the guest agent of `fn check` over the PVE API, with blocking calls
//! for the threads that run the script, a limit of calls at once per node, and `exec`
//! polled until the command ends or its timeout passes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::pve::{AgentExt, Pve, PveError};
use crate::script::{ExecOutput, GuestAgent, GuestError, GuestVm, Interface};

/// How `exec-status` is polled: soon, then less often.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);

/// The guest agents of a cluster, reached through `pve`.
pub struct ClusterAgent {
    call: Call,
    handle: Handle,
    per_node: usize,
    limits: Mutex<BTreeMap<String, Arc<Semaphore>>>,
}

/// What one call needs, owned, so it can run as a task of the runtime.
#[derive(Clone)]
struct Call {
    pve: Arc<dyn Pve>,
    calls: Arc<AtomicU64>,
    scale: f64,
}

impl Call {
    fn counted<T>(&self, r: Result<T, PveError>) -> Result<T, GuestError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        r.map_err(|e| reason(&e))
    }

    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale).max(Duration::from_millis(1))
    }

    async fn exec(self, vm: GuestVm, argv: Vec<String>, timeout: Duration) -> Result<ExecOutput, GuestError> {
        let pid = self.counted(self.pve.agent_exec(&vm.node, vm.vmid, &argv).await)?;
        let wait = async {
            let mut pause = self.scaled(FIRST_POLL);
            loop {
                tokio::time::sleep(pause).await;
                let status = self.counted(self.pve.agent_exec_status(&vm.node, vm.vmid, pid).await)?;
                if status.exited {
                    let code = status.exitcode.or(status.signal.map(|s| 128 + s)).unwrap_or(-1);
                    let out = status.out_data.unwrap_or_default();
                    let err = status.err_data.unwrap_or_default();
                    return Ok(ExecOutput { code, out, err });
                }
                pause = (pause * 2).min(self.scaled(MAX_POLL));
            }
        };
        match tokio::time::timeout(self.scaled(timeout), wait).await {
            Ok(r) => r,
            Err(_) => Err(format!("'{}' did not end within {} s", argv.join(" "), timeout.as_secs()).into()),
        }
    }
}

/// What a failed call says on the grade sheet: PVE's own words. An error the guest agent
/// itself returned is a definite answer: QMPClient.pm words it `VM N qga command 'guest-..'
/// failed - <the agent's error>` (a file that is not there); but `failed - got timeout` is an
/// agent that did not answer, like a stopped VM or `QEMU guest agent is not running`.
fn reason(e: &PveError) -> GuestError {
    match e {
        PveError::Api { failure, .. } if failure.message.starts_with("QEMU guest agent is not running") => {
            GuestError::Unreachable(
                "QEMU guest agent is not running (the guest may still be booting, or lacks qemu-guest-agent)".into(),
            )
        }
        PveError::Api { failure, .. } => {
            let message = failure.message.trim_end().to_string();
            let answered = message.contains(" qga command '")
                && message.contains("' failed - ")
                && !message.ends_with("got timeout");
            match answered {
                true => GuestError::Answered(message),
                false => GuestError::Unreachable(message),
            }
        }
        other => GuestError::Unreachable(other.to_string()),
    }
}

impl ClusterAgent {
    /// An agent over `pve` whose calls run on the runtime of `handle`, at most `per_node`
    /// at once on each node.
    pub fn new(pve: Arc<dyn Pve>, handle: Handle, per_node: usize) -> Self {
        ClusterAgent {
            call: Call { pve, calls: Arc::default(), scale: 1.0 },
            handle,
            per_node: per_node.max(1),
            limits: Mutex::default(),
        }
    }

    /// Waits (polls, timeouts) as a fraction of real ones: the simulator's time scale.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.call.scale = scale;
        self
    }

    /// API requests made so far.
    pub fn calls(&self) -> u64 {
        self.call.calls.load(Ordering::Relaxed)
    }

    fn limit(&self, node: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.entry(node.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_node))).clone()
    }

    /// Runs `work` as a task of the runtime, within the node's limit, and waits for it. As
    /// a task, its timers and wake-ups are the runtime's own, so a paused clock (tests,
    /// benchmarks) advances only when every call in flight waits on one.
    fn block<T, F>(&self, node: &str, work: F) -> Result<T, GuestError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, GuestError>> + Send + 'static,
    {
        let limit = self.limit(node);
        let task = self.handle.spawn(async move {
            let _permit = limit.acquire_owned().await.map_err(|e| GuestError::from(e.to_string()))?;
            work.await
        });
        self.handle.block_on(task).unwrap_or_else(|e| Err(format!("the call stopped: {e}").into()))
    }
}

impl GuestAgent for ClusterAgent {
    fn exec(&self, vm: &GuestVm, argv: &[String], timeout: Duration) -> Result<ExecOutput, GuestError> {
        self.block(&vm.node, self.call.clone().exec(vm.clone(), argv.to_vec(), timeout))
    }

    fn read_file(&self, vm: &GuestVm, path: &str) -> Result<String, GuestError> {
        let (call, vm, path) = (self.call.clone(), vm.clone(), path.to_string());
        self.block(&vm.node.clone(), async move {
            call.counted(call.pve.agent_file_read(&vm.node, vm.vmid, &path).await).map(|f| f.content)
        })
    }

    fn hostname(&self, vm: &GuestVm) -> Result<String, GuestError> {
        let (call, vm) = (self.call.clone(), vm.clone());
        self.block(&vm.node.clone(), async move { call.counted(call.pve.agent_hostname(&vm.node, vm.vmid).await) })
    }

    fn interfaces(&self, vm: &GuestVm) -> Result<Vec<Interface>, GuestError> {
        let (call, vm) = (self.call.clone(), vm.clone());
        self.block(&vm.node.clone(), async move {
            let list = call.counted(call.pve.agent_interfaces(&vm.node, vm.vmid).await)?;
            Ok(list
                .into_iter()
                .map(|i| Interface {
                    name: i.name,
                    mac: i.mac.unwrap_or_default(),
                    ips: i.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix)).collect(),
                })
                .collect())
        })
    }

    fn ping(&self, vm: &GuestVm) -> Result<(), GuestError> {
        let (call, vm) = (self.call.clone(), vm.clone());
        self.block(&vm.node.clone(), async move { call.counted(call.pve.agent_ping(&vm.node, vm.vmid).await) })
    }
}
