//! `stand down`: removes what carries the lab's marker, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::executor::ApplyOptions;
use super::report::Failure;
use super::retry::transient;
use crate::plan::{Marker, STAND_TAG, Snapshot, lab_tag};
use crate::pve::{ApiRequest, Pve, PveError, PveExt};

/// What `down` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyReport {
    /// VMs removed.
    pub vms: usize,
    /// Bridges removed.
    pub bridges: usize,
    /// Pools removed.
    pub pools: usize,
    /// Users removed.
    pub users: usize,
    /// Users kept because another lab still uses them.
    pub users_kept: usize,
    /// Failures.
    pub failures: Vec<Failure>,
}

fn gone(e: &PveError) -> bool {
    e.failure().is_some_and(|f| f.message.contains("does not exist") || f.message.contains("no such"))
}

/// Destroys lab `lab` (only the students in `only`, if given) as found in `snap`.
pub async fn destroy(
    pve: Arc<dyn Pve>,
    snap: &Snapshot,
    lab: &str,
    only: &[String],
    opts: &ApplyOptions,
) -> DestroyReport {
    let mut report = DestroyReport::default();
    let wanted = |user: Option<&str>| only.is_empty() || user.is_some_and(|u| only.iter().any(|o| o == u));
    let tag = lab_tag(lab);
    let vms: Vec<(String, u32, bool)> = snap
        .vms
        .iter()
        .filter(|v| v.tags.iter().any(|t| t == STAND_TAG) && v.tags.contains(&tag))
        .filter(|v| v.marker().is_some_and(|m| m.has_lab(lab) && wanted(m.get("user"))))
        .map(|v| (v.node.clone(), v.vmid, v.status == "running"))
        .collect();
    let limits: BTreeMap<String, Arc<Semaphore>> =
        snap.nodes.iter().map(|n| (n.name.clone(), Arc::new(Semaphore::new(opts.per_node.max(1))))).collect();
    let mut set = JoinSet::new();
    for (node, vmid, running) in vms {
        let (pve, limit, o) = (pve.clone(), limits.get(&node).cloned(), opts.clone());
        set.spawn(async move {
            let _permit = match limit {
                Some(l) => l.acquire_owned().await.ok(),
                None => None,
            };
            let r = o
                .retries()
                .run(
                    |e| transient(e) || matches!(e, PveError::Transport { .. }),
                    |_| {
                        let (pve, node) = (pve.clone(), node.clone());
                        async move {
                            let status = match pve.vm_status(&node, vmid).await {
                                Ok(s) => s,
                                Err(e) if gone(&e) => return Ok(()),
                                Err(e) => return Err(e),
                            };
                            if status.status == "running"
                                || running && status.lock.is_none() && status.status != "stopped"
                            {
                                let upid = pve.vm_power(&node, vmid, "stop").await?;
                                pve.wait_task(&upid, o.wait).await?;
                            }
                            match pve.delete_vm(&node, vmid).await {
                                Ok(upid) => pve.wait_task(&upid, o.wait).await.map(|_| ()),
                                Err(e) if gone(&e) => Ok(()),
                                Err(e) => Err(e),
                            }
                        }
                    },
                )
                .await;
            (format!("vm {vmid}"), r)
        });
    }
    while let Some(Ok((what, r))) = set.join_next().await {
        match r {
            Ok(()) => report.vms += 1,
            Err(e) => report.failures.push(Failure {
                object: what,
                message: e.to_string(),
                hint: "re-run `stand down`".into(),
            }),
        }
    }

    for (node, bridges) in &snap.bridges {
        let ours: Vec<&str> = bridges
            .iter()
            .filter(|b| {
                b.comments.as_deref().and_then(Marker::parse).is_some_and(|m| {
                    m.get("lab") == Some(lab)
                        && (m.get("user").is_some() && wanted(m.get("user"))
                            || m.get("shared").is_some() && only.is_empty())
                })
            })
            .map(|b| b.iface.as_str())
            .collect();
        if ours.is_empty() {
            continue;
        }
        let mut failed = false;
        for iface in &ours {
            match opts.retries().run(transient, |_| pve.delete_iface(node, iface)).await {
                Ok(()) => report.bridges += 1,
                Err(e) if e.failure().is_some_and(|f| f.message.contains("does not exist")) => {}
                Err(e) => {
                    failed = true;
                    report.failures.push(Failure {
                        object: format!("bridge {node}/{iface}"),
                        message: e.to_string(),
                        hint: "re-run `stand down`".into(),
                    });
                }
            }
        }
        if !failed {
            let r = opts
                .retries()
                .run(transient, |_| async {
                    let upid = pve.apply_network(node).await?;
                    pve.wait_task(&upid, opts.wait).await
                })
                .await;
            if let Err(e) = r {
                report.failures.push(Failure {
                    object: format!("network {node}"),
                    message: e.to_string(),
                    hint: "apply the node's network in the PVE GUI".into(),
                });
            }
        }
    }

    for p in &snap.pools {
        let Some(m) = p.comment.as_deref().and_then(Marker::parse) else { continue };
        if m.get("lab") != Some(lab) || !wanted(m.get("user")) {
            continue;
        }
        match opts.retries().run(transient, |_| pve.delete_pool(&p.poolid)).await {
            Ok(()) => report.pools += 1,
            Err(e) if gone(&e) => {}
            Err(e) => report.failures.push(Failure {
                object: format!("pool {}", p.poolid),
                message: e.to_string(),
                hint: "remove what is left in the pool, then re-run `stand down`".into(),
            }),
        }
    }

    for u in &snap.users {
        let Some(m) = u.comment.as_deref().and_then(Marker::parse) else { continue };
        if !m.has_lab(lab) || !wanted(Some(&u.userid)) {
            continue;
        }
        let rest: Vec<String> = m.labs().into_iter().filter(|l| l != lab).collect();
        let r = if rest.is_empty() {
            opts.retries().run(transient, |_| pve.delete_user(&u.userid)).await.map(|_| true)
        } else {
            let comment = Marker::new(&[("labs", &rest.join(","))]).to_string();
            let req = ApiRequest::put(format!("/access/users/{}", u.userid)).param("comment", comment);
            let sdn: Vec<String> = snap
                .acl
                .iter()
                .filter(|a| a.ugid == u.userid && a.path.starts_with("/sdn/zones/localnetwork/"))
                .filter(|a| {
                    snap.bridges.values().flatten().any(|b| {
                        a.path.ends_with(&format!("/{}", b.iface))
                            && b.comments.as_deref().and_then(Marker::parse).is_some_and(|m| m.get("lab") == Some(lab))
                    })
                })
                .map(|a| a.path.clone())
                .collect();
            let pve = &pve;
            opts.retries()
                .run(transient, |_| {
                    let (req, sdn) = (req.clone(), sdn.clone());
                    async move {
                        pve.exec(req).await?;
                        for path in sdn {
                            pve.set_acl(&path, "PVESDNUser", Some(&u.userid), None, true).await?;
                        }
                        Ok(())
                    }
                })
                .await
                .map(|_| false)
        };
        match r {
            Ok(true) => report.users += 1,
            Ok(false) => report.users_kept += 1,
            Err(e) if gone(&e) => {}
            Err(e) => report.failures.push(Failure {
                object: format!("user {}", u.userid),
                message: e.to_string(),
                hint: "re-run `stand down`".into(),
            }),
        }
    }
    report
}
