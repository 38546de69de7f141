//! What `stand serve` knows of the cluster, read with its own credentials and shared by
//! every visitor: who owns what (a [`Snapshot`], re-read when the lab VMs change and
//! every few minutes) and the live state (one `GET /cluster/resources` at most every
//! `live_ttl`). However many students poll their page, pveproxy sees the same few requests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::plan::{Owner, STAND_TAG, Snapshot};
use crate::pve::{ClusterResource, Pve, PveError, PveExt};

/// How fresh the shared reads are kept.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
    /// Live state (VM status, uptime, memory, CPU): re-read when older.
    pub live: Duration,
    /// Ownership, NICs and lab settings: re-read when older, or at once when the lab VMs
    /// in the live state differ from those known.
    pub structure: Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness { live: Duration::from_secs(2), structure: Duration::from_secs(300) }
    }
}

/// A lab on the cluster and what its group's marker records.
#[derive(Clone, Debug, Serialize)]
pub struct LabInfo {
    /// The lab's name.
    pub lab: String,
    /// Its instructor (`lab(#{ teacher })`).
    pub teacher: Option<String>,
    /// Whether students may reset their own stand (`lab(#{ student_reset: true })`).
    pub student_reset: bool,
    /// Its last day.
    pub expires: Option<String>,
    /// The snapshot a reset goes back to (`lab(#{ snapshot })`, `start`).
    pub baseline: String,
    /// How many stands it has.
    pub stands: usize,
}

/// One NIC of a VM, for the network picture.
#[derive(Clone, Debug, Serialize)]
pub struct Nic {
    /// `net0`, ...
    pub slot: String,
    /// The bridge it plugs into.
    pub bridge: String,
    /// The stand's alias of that bridge (`lan`), when it is one of its private ones.
    pub alias: Option<String>,
    /// Disconnected (`link_down=1`, e.g. an exam's cut uplink).
    pub link_down: bool,
    /// Cut by `stand uplinks off` (an exam), as the VM's marker says.
    pub cut: bool,
}

/// One VM of a stand, as a page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct VmView {
    /// VMID.
    pub vmid: u32,
    /// The cluster's name (`gw-ivanov`).
    pub name: String,
    /// The script's name (`gw`).
    pub short: String,
    /// Node.
    pub node: String,
    /// `running`, `stopped`, ...
    pub status: String,
    /// Seconds since its start.
    pub uptime_s: u64,
    /// Memory in use and configured, bytes.
    pub mem: u64,
    /// Configured memory, bytes.
    pub maxmem: u64,
    /// CPU use (0..cores).
    pub cpu: f64,
    /// A config lock (`rollback`, `clone`, ...).
    pub lock: Option<String>,
    /// Its NICs.
    pub nics: Vec<Nic>,
}

/// One student's stand.
#[derive(Clone, Debug, Serialize)]
pub struct StandView {
    /// Lab.
    pub lab: String,
    /// Student (`user@realm`).
    pub user: String,
    /// Their name (from the roster, in PVE's `firstname`/`lastname`), when set.
    pub name: Option<String>,
    /// The node of its first VM.
    pub node: String,
    /// Its VMs, by VMID.
    pub vms: Vec<VmView>,
}

impl StandView {
    /// How many of its VMs run.
    pub fn running(&self) -> usize {
        self.vms.iter().filter(|v| v.status == "running").count()
    }

    /// Whether an exam cut its uplinks (`stand uplinks off`).
    pub fn uplinks_cut(&self) -> bool {
        self.vms.iter().flat_map(|v| &v.nics).any(|n| n.cut)
    }
}

/// The structure part: who owns what.
struct Structure {
    read: Instant,
    snapshot: Arc<Snapshot>,
    labs: BTreeMap<String, LabInfo>,
    /// (lab, user) → VMs without live state, by VMID.
    stands: BTreeMap<(String, String), Vec<VmView>>,
    /// The VMIDs of the structure's lab VMs.
    vmids: BTreeSet<u32>,
}

/// The live part: one `/cluster/resources`.
struct Live {
    read: Instant,
    resources: Arc<Vec<ClusterResource>>,
}

/// Everything a page needs at one moment.
#[derive(Clone, Default)]
pub struct ClassView {
    /// Labs, by name.
    pub labs: BTreeMap<String, LabInfo>,
    /// Stands, by lab then user.
    pub stands: Vec<StandView>,
    /// The whole `/cluster/resources` (nodes, guests, storage) for `/metrics`.
    pub resources: Arc<Vec<ClusterResource>>,
    /// The snapshot the structure was read from (VM configs, for operations).
    pub snapshot: Arc<Snapshot>,
}

impl ClassView {
    /// The stand of `user` in `lab`.
    pub fn stand(&self, lab: &str, user: &str) -> Option<&StandView> {
        self.stands.iter().find(|s| s.lab == lab && s.user == user)
    }
}

/// The shared, cached view of the cluster.
pub struct ClusterView {
    pve: Arc<dyn Pve>,
    only_labs: Vec<String>,
    fresh: Freshness,
    structure: Mutex<Option<Structure>>,
    live: Mutex<Option<Live>>,
}

impl ClusterView {
    /// A view through `pve` of the labs in `only_labs` (all when empty).
    pub fn new(pve: Arc<dyn Pve>, only_labs: Vec<String>, fresh: Freshness) -> ClusterView {
        ClusterView { pve, only_labs, fresh, structure: Mutex::new(None), live: Mutex::new(None) }
    }

    /// Forgets the structure, so the next read takes it again (after an operation).
    pub async fn invalidate(&self) {
        *self.structure.lock().await = None;
        *self.live.lock().await = None;
    }

    /// The class now: the live state at most `live` old; the structure re-read when stale
    /// or when lab VMs came or went. Concurrent callers share one read.
    pub async fn class(&self) -> Result<ClassView, PveError> {
        let resources = self.live().await?;
        let lab_vmids: BTreeSet<u32> = resources
            .iter()
            .filter(|r| r.kind == "qemu" && !r.template && tagged_stand(r))
            .filter_map(|r| r.vmid)
            .collect();
        let mut slot = self.structure.lock().await;
        let stale = slot.as_ref().is_none_or(|s| s.read.elapsed() >= self.fresh.structure || s.vmids != lab_vmids);
        if stale {
            *slot = Some(self.read_structure().await?);
        }
        let Some(structure) = slot.as_ref() else { return Ok(ClassView::default()) };
        let by_id: BTreeMap<u32, &ClusterResource> =
            resources.iter().filter(|r| r.kind == "qemu").filter_map(|r| Some((r.vmid?, r))).collect();
        let stands = structure
            .stands
            .iter()
            .map(|((lab, user), vms)| {
                let vms: Vec<VmView> = vms
                    .iter()
                    .map(|v| {
                        let mut v = v.clone();
                        if let Some(r) = by_id.get(&v.vmid) {
                            v.node = r.node.clone().unwrap_or(v.node);
                            v.status = r.status.clone().unwrap_or_default();
                            v.uptime_s = r.uptime;
                            v.mem = r.mem;
                            v.maxmem = r.maxmem;
                            v.cpu = r.cpu;
                            v.lock = r.lock.clone();
                        } else {
                            v.status = "gone".into();
                        }
                        v
                    })
                    .collect();
                StandView {
                    lab: lab.clone(),
                    user: user.clone(),
                    name: structure.snapshot.user(user).and_then(|u| u.name.as_ref()).map(|n| n.display()),
                    node: vms.first().map(|v| v.node.clone()).unwrap_or_default(),
                    vms,
                }
            })
            .collect();
        Ok(ClassView { labs: structure.labs.clone(), stands, resources, snapshot: structure.snapshot.clone() })
    }

    async fn live(&self) -> Result<Arc<Vec<ClusterResource>>, PveError> {
        let mut slot = self.live.lock().await;
        if let Some(l) = slot.as_ref().filter(|l| l.read.elapsed() < self.fresh.live) {
            return Ok(l.resources.clone());
        }
        let resources = Arc::new(self.pve.resources(None).await?);
        *slot = Some(Live { read: Instant::now(), resources: resources.clone() });
        Ok(resources)
    }

    async fn read_structure(&self) -> Result<Structure, PveError> {
        let snap = Snapshot::take(&*self.pve).await?;
        let wanted = |lab: &str| self.only_labs.is_empty() || self.only_labs.iter().any(|l| l == lab);
        let mut stands: BTreeMap<(String, String), Vec<VmView>> = BTreeMap::new();
        let mut vmids = BTreeSet::new();
        let aliases: BTreeMap<(&str, &str), &str> = snap
            .bridges
            .iter()
            .flat_map(|(node, bridges)| {
                bridges.iter().filter_map(move |b| match &b.owner {
                    Some(Owner::Private { alias, .. }) => Some(((node.as_str(), b.iface.as_str()), alias.as_str())),
                    _ => None,
                })
            })
            .collect();
        // A VNet is the same network on every node of its zone.
        let vnet_aliases: BTreeMap<&str, &str> = snap
            .vnets
            .iter()
            .filter_map(|v| match &v.owner {
                Some(Owner::Private { alias, .. }) => Some((v.vnet.as_str(), alias.as_str())),
                _ => None,
            })
            .collect();
        for vm in &snap.vms {
            if vm.tags.iter().any(|t| t == STAND_TAG) && !vm.template {
                vmids.insert(vm.vmid);
            }
            let Some(Owner::Vm { lab, user, name }) = vm.owner() else { continue };
            if !wanted(lab) {
                continue;
            }
            let cut = crate::plan::course::cut_nics(vm);
            let nics = vm
                .nets()
                .into_iter()
                .filter_map(|(slot, nic)| {
                    let bridge = nic.bridge.clone()?;
                    Some(Nic {
                        slot: format!("net{slot}"),
                        alias: aliases
                            .get(&(vm.node.as_str(), bridge.as_str()))
                            .or_else(|| vnet_aliases.get(bridge.as_str()))
                            .map(|a| a.to_string()),
                        bridge,
                        link_down: nic.link_down,
                        cut: cut.contains(&format!("net{slot}")),
                    })
                })
                .collect();
            stands.entry((lab.clone(), user.clone())).or_default().push(VmView {
                vmid: vm.vmid,
                name: vm.name.clone(),
                short: name.clone(),
                node: vm.node.clone(),
                status: vm.status.clone(),
                uptime_s: vm.uptime,
                mem: 0,
                maxmem: vm.maxmem,
                cpu: 0.0,
                lock: vm.lock.clone(),
                nics,
            });
        }
        for vms in stands.values_mut() {
            vms.sort_by_key(|v| v.vmid);
        }
        let labs = snap
            .labs()
            .into_iter()
            .filter(|l| wanted(l))
            .map(|lab| {
                let info = LabInfo {
                    teacher: snap.lab_setting(&lab, "teacher"),
                    student_reset: snap.lab_setting(&lab, "student_reset").as_deref() == Some("1"),
                    expires: snap.lab_expires(&lab),
                    baseline: snap.lab_setting(&lab, "snapshot").unwrap_or_else(|| "start".into()),
                    stands: stands.keys().filter(|(l, _)| *l == lab).count(),
                    lab: lab.clone(),
                };
                (lab, info)
            })
            .collect();
        Ok(Structure { read: Instant::now(), snapshot: Arc::new(snap), labs, stands, vmids })
    }
}

fn tagged_stand(r: &ClusterResource) -> bool {
    r.tags.as_deref().is_some_and(|t| t.split([';', ',', ' ']).any(|t| t == STAND_TAG))
}
