//! Template copies on every node (`stand templates`): the templates by name with their
//! copies per node and storage, and the graphs that make (`sync`) and remove (`prune`)
//! copies. A copy is a template with the original's name and, in its description,
//! `stand: template-of=<vmid> digest=<the original's config digest when copied>`; `clone`
//! by name then picks the copy on the stand's node (`planner/vms.rs`), so the nodes make
//! their linked clones in parallel, each on its own storage's lock.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::action::{Action, ActionGraph};
use super::marker::Marker;
use super::model::Plan;
use super::snapshot::{Snapshot, VmSnap};

/// The marker field naming the original of a copy.
pub const COPY_OF: &str = "template-of";

/// Storage plugins that hold a template's base volume for linked clones, best first
/// (thick LVM and iSCSI cannot: pve-storage `volume_has_feature` "clone").
const LINKED_CLONE_STORAGES: [&str; 5] = ["lvmthin", "zfspool", "btrfs", "dir", "rbd"];

/// A template made by someone (not a copy).
#[derive(Clone, Debug, Serialize)]
pub struct Original {
    /// VMID.
    pub vmid: u32,
    /// Name (what `clone` names).
    pub name: String,
    /// Node.
    pub node: String,
    /// Storages of its disks.
    pub storages: Vec<String>,
    /// All its disks are on shared storage.
    pub shared: bool,
    /// Its config digest (a copy made from another digest is stale).
    pub digest: String,
}

/// A copy of a template on a node (a template, or a copy left half-made).
#[derive(Clone, Debug, Serialize)]
pub struct TemplateCopy {
    /// VMID.
    pub vmid: u32,
    /// Name.
    pub name: String,
    /// Node.
    pub node: String,
    /// Storages of its disks.
    pub storages: Vec<String>,
    /// VMID of the original.
    pub of: u32,
    /// Whether the original still has the config it was copied from.
    pub fresh: bool,
    /// Converted to a template (false: a copy interrupted before its end).
    pub complete: bool,
    /// VMs whose disks are linked clones of it (it cannot go while they exist).
    pub linked: Vec<u32>,
}

/// What the cluster has: the originals and the copies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalog {
    /// Templates made by someone, by VMID.
    pub originals: Vec<Original>,
    /// Copies made by `stand templates sync` (of originals that may be gone).
    pub copies: Vec<TemplateCopy>,
}

/// The marker of a copy of `original`.
pub fn copy_marker(original: &Original) -> Marker {
    Marker::new(&[(COPY_OF, &original.vmid.to_string()), ("digest", &original.digest)])
}

/// The original a VM's description names, with the digest it was copied from.
fn copy_of(vm: &VmSnap) -> Option<(u32, String)> {
    let marker = vm.config.as_ref()?.get("description").and_then(|d| Marker::parse(&d))?;
    let of = marker.get(COPY_OF)?.parse().ok()?;
    Some((of, marker.get("digest").unwrap_or_default().to_string()))
}

/// A VM's config digest (changes with every config write).
fn config_digest(vm: &VmSnap) -> String {
    vm.config.as_ref().and_then(|c| c.get("digest")).unwrap_or_default()
}

/// Whether `vm` is a copy `stand templates sync` made: its original's VMID, and whether it
/// is up to date (the original's config is as it was when the copy was made).
pub fn copy_state(snap: &Snapshot, vm: &VmSnap) -> Option<(u32, bool)> {
    let (of, copied_from) = copy_of(vm)?;
    Some((of, snap.vm(of).is_some_and(|o| config_digest(o) == copied_from)))
}

/// Whether `vm`'s disks are linked clones of template `base` (volumes named
/// `base-<vmid>-disk-N/vm-...`, pve-storage's linked clone names on every plugin).
fn linked_to(vm: &VmSnap, base: u32) -> bool {
    let needle = format!("base-{base}-disk");
    vm.vmid != base
        && vm.config.as_ref().is_some_and(|c| {
            c.0.iter().any(|(k, v)| {
                ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"].iter().any(|p| k.starts_with(p))
                    && v.as_str().is_some_and(|v| v.contains(&needle))
            })
        })
}

impl Catalog {
    /// Reads the catalog from a snapshot (the configs of every VM should be read, so that
    /// the clones linked to a copy are known).
    pub fn of(snap: &Snapshot) -> Catalog {
        let mut cat = Catalog::default();
        for vm in &snap.vms {
            let storages = vm.disk_storages();
            match copy_state(snap, vm) {
                Some((of, fresh)) => cat.copies.push(TemplateCopy {
                    vmid: vm.vmid,
                    name: vm.name.clone(),
                    node: vm.node.clone(),
                    storages,
                    of,
                    fresh,
                    complete: vm.template,
                    linked: snap.vms.iter().filter(|o| linked_to(o, vm.vmid)).map(|o| o.vmid).collect(),
                }),
                None if vm.template => cat.originals.push(Original {
                    vmid: vm.vmid,
                    name: vm.name.clone(),
                    node: vm.node.clone(),
                    shared: snap.on_shared_storage(vm),
                    storages,
                    digest: config_digest(vm),
                }),
                None => {}
            }
        }
        cat
    }

    /// The original named `name` or with VMID `name`.
    pub fn original(&self, name: &str) -> Option<&Original> {
        self.originals.iter().find(|o| o.name == name || o.vmid.to_string() == name)
    }

    /// The copies of `original`.
    pub fn copies_of(&self, original: u32) -> impl Iterator<Item = &TemplateCopy> {
        self.copies.iter().filter(move |c| c.of == original)
    }

    /// Copies whose original is gone.
    pub fn orphans(&self) -> impl Iterator<Item = &TemplateCopy> {
        self.copies.iter().filter(|c| !self.originals.iter().any(|o| o.vmid == c.of))
    }
}

/// The storage a node's copies go to: the one asked for, else the node's own storage for
/// VM images that holds linked-clone bases (LVM-thin first, then ZFS, Btrfs, directory).
pub fn local_storage(snap: &Snapshot, node: &str) -> Option<String> {
    LINKED_CLONE_STORAGES.iter().find_map(|kind| {
        snap.storages
            .iter()
            .find(|s| {
                !s.shared
                    && s.kind == *kind
                    && s.content.iter().any(|c| c == "images")
                    && s.nodes.iter().any(|n| n == node)
            })
            .map(|s| s.id.clone())
    })
}

/// What `stand templates sync` is asked.
#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    /// Templates by name or VMID (empty: every original).
    pub names: Vec<String>,
    /// The storage of the copies (default: each node's [`local_storage`]).
    pub storage: Option<String>,
    /// Nodes to copy to (empty: every online node).
    pub nodes: Vec<String>,
    /// Replace the copies whose original changed since.
    pub refresh: bool,
    /// The first VMID copies may take.
    pub first_vmid: u32,
}

/// Why a sync or prune cannot be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplatesError {
    /// A named template is not an original on the cluster.
    #[error("template '{name}' does not exist{hint}")]
    UnknownTemplate {
        /// The name given.
        name: String,
        /// What exists instead.
        hint: String,
    },
    /// A named node is not in the cluster or offline.
    #[error("node '{0}' is not an online node of the cluster{1}")]
    UnknownNode(String, String),
    /// The storage asked for cannot hold copies.
    #[error("storage '{storage}': {why}")]
    Storage {
        /// The storage.
        storage: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A planned sync or prune: the graph and what it leaves, with why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TemplatesPlan {
    /// What will run.
    pub graph: ActionGraph,
    /// Copies or nodes left alone, each with the reason (`alt-server on pve2: ...`).
    pub kept: Vec<String>,
    /// Copies already in place and current.
    pub present: usize,
}

fn names_hint(cat: &Catalog) -> String {
    let names: BTreeSet<&str> = cat.originals.iter().map(|o| o.name.as_str()).collect();
    if names.is_empty() {
        " (the cluster has no templates)".into()
    } else {
        format!(" (templates: {})", names.into_iter().collect::<Vec<_>>().join(", "))
    }
}

/// The originals `names` means (all when empty), or the first unknown name.
fn chosen<'a>(cat: &'a Catalog, names: &[String]) -> Result<Vec<&'a Original>, TemplatesError> {
    if names.is_empty() {
        return Ok(cat.originals.iter().collect());
    }
    let mut out: Vec<&Original> = Vec::new();
    for n in names {
        let found: Vec<&Original> = cat.originals.iter().filter(|o| o.name == *n || o.vmid.to_string() == *n).collect();
        if found.is_empty() {
            return Err(TemplatesError::UnknownTemplate { name: n.clone(), hint: names_hint(cat) });
        }
        out.extend(found);
    }
    out.sort_by_key(|o| o.vmid);
    out.dedup_by_key(|o| o.vmid);
    Ok(out)
}

/// The online nodes `nodes` means (all when empty).
fn chosen_nodes(snap: &Snapshot, nodes: &[String]) -> Result<Vec<String>, TemplatesError> {
    let online: Vec<String> = snap.nodes.iter().filter(|n| n.online).map(|n| n.name.clone()).collect();
    if nodes.is_empty() {
        return Ok(online);
    }
    for n in nodes {
        if !online.contains(n) {
            return Err(TemplatesError::UnknownNode(n.clone(), format!(" (online: {})", online.join(", "))));
        }
    }
    Ok(online.into_iter().filter(|n| nodes.contains(n)).collect())
}

/// Checks a storage asked for with `--storage`.
fn check_storage(snap: &Snapshot, id: &str) -> Result<(), TemplatesError> {
    let err = |why: String| TemplatesError::Storage { storage: id.to_string(), why };
    let Some(s) = snap.storage(id) else {
        let ids: Vec<&str> = snap.storages.iter().map(|s| s.id.as_str()).collect();
        return Err(err(format!("does not exist (storages: {})", ids.join(", "))));
    };
    if s.shared {
        return Err(err(
            "is shared: one template on it serves every node already; name a storage of each node (local-lvm, a ZFS pool)"
                .into(),
        ));
    }
    if !s.content.iter().any(|c| c == "images") {
        return Err(err("does not hold VM disks (content 'images')".into()));
    }
    if !LINKED_CLONE_STORAGES.contains(&s.kind.as_str()) {
        return Err(err(format!("is of type {}, which cannot hold a base for linked clones", s.kind)));
    }
    Ok(())
}

/// The graph of `stand templates sync`: for each chosen original and node, a copy unless
/// the node has a current one or the original itself sits on that node's own storage.
pub fn sync(snap: &Snapshot, cat: &Catalog, req: &SyncRequest) -> Result<TemplatesPlan, TemplatesError> {
    let originals = chosen(cat, &req.names)?;
    let nodes = chosen_nodes(snap, &req.nodes)?;
    if let Some(s) = &req.storage {
        check_storage(snap, s)?;
    }
    let mut used: BTreeSet<u32> = snap.vms.iter().map(|v| v.vmid).collect();
    let mut next_vmid = || {
        let id = (req.first_vmid.max(100)..).find(|i| !used.contains(i)).unwrap_or(req.first_vmid);
        used.insert(id);
        id
    };
    let mut plan = TemplatesPlan::default();
    for o in originals {
        for node in &nodes {
            let here = format!("{} on {node}", o.name);
            if o.node == *node && !o.shared {
                plan.kept.push(format!("{here}: the original is on this node's own storage"));
                continue;
            }
            let storage = match &req.storage {
                Some(s) if snap.storage(s).is_some_and(|x| x.nodes.contains(node)) => s.clone(),
                Some(s) => {
                    plan.kept.push(format!("{here}: storage '{s}' is not available on {node}"));
                    continue;
                }
                None => match local_storage(snap, node) {
                    Some(s) => s,
                    None => {
                        plan.kept.push(format!("{here}: the node has no own storage for VM images"));
                        continue;
                    }
                },
            };
            let mut after = Vec::new();
            let mut copy_needed = true;
            for c in cat.copies_of(o.vmid).filter(|c| c.node == *node) {
                if !c.complete {
                    // Left half-made by an interrupted sync: it goes, the copy is made anew.
                    after.push(plan.graph.add(destroy(c), Vec::new()));
                } else if c.fresh {
                    plan.present += 1;
                    copy_needed = false;
                } else if !req.refresh {
                    plan.kept
                        .push(format!("{here}: copy {} is older than the original (`--refresh` replaces it)", c.vmid));
                    copy_needed = false;
                } else if !c.linked.is_empty() {
                    plan.kept.push(format!(
                        "{here}: copy {} is older than the original but linked clones use it ({}); remove them first",
                        c.vmid,
                        list(&c.linked)
                    ));
                    copy_needed = false;
                } else {
                    after.push(plan.graph.add(destroy(c), Vec::new()));
                }
            }
            if !copy_needed {
                continue;
            }
            // PVE clones to another node only onto shared storage (qemu-server clone_vm:
            // "can't clone to non-shared storage"), so a copy is a full clone on the
            // original's node, a migrate to its node (QemuMigrate copies local disks), and
            // the conversion to a template.
            let via = if snap.storage(&storage).is_some_and(|s| s.nodes.contains(&o.node)) {
                storage.clone()
            } else {
                match local_storage(snap, &o.node) {
                    Some(s) => s,
                    None => {
                        plan.kept.push(format!("{here}: {} has no own storage to copy through", o.node));
                        continue;
                    }
                }
            };
            let action = Action::CopyTemplate {
                of: o.vmid,
                name: o.name.clone(),
                source_node: o.node.clone(),
                node: node.clone(),
                vmid: next_vmid(),
                storage: storage.clone(),
                via,
                marker: copy_marker(o).to_string(),
            };
            plan.graph.add(action, after);
        }
    }
    Ok(plan)
}

fn destroy(c: &TemplateCopy) -> Action {
    Action::DestroyVm { node: c.node.clone(), vmid: c.vmid, name: c.name.clone(), running: false }
}

fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// The graph of `stand templates prune`: the copies of the chosen templates (all when
/// none named, and always the copies whose original is gone) on the chosen nodes, except
/// the ones linked clones still use.
pub fn prune(
    snap: &Snapshot,
    cat: &Catalog,
    names: &[String],
    nodes: &[String],
) -> Result<TemplatesPlan, TemplatesError> {
    let originals: BTreeSet<u32> = chosen(cat, names)?.into_iter().map(|o| o.vmid).collect();
    let all_nodes = nodes.is_empty();
    let nodes = chosen_nodes(snap, nodes)?;
    let orphans: BTreeSet<u32> = cat.orphans().map(|c| c.vmid).collect();
    let mut plan = TemplatesPlan::default();
    for c in &cat.copies {
        let named = originals.contains(&c.of) || (names.is_empty() && orphans.contains(&c.vmid));
        if !named || !(all_nodes || nodes.contains(&c.node)) {
            continue;
        }
        if c.linked.is_empty() {
            plan.graph.add(destroy(c), Vec::new());
        } else {
            plan.kept.push(format!(
                "{} on {}: copy {} is the base of linked clones ({}); remove them first",
                c.name,
                c.node,
                c.vmid,
                list(&c.linked)
            ));
        }
    }
    Ok(plan)
}

/// Where a lab's linked clones queue: on one shared storage's cluster-wide lock, or on
/// each node's own storage, and what a sync would change, in the latency model's terms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloneQueues {
    /// Linked clones from templates on shared storage, by storage.
    pub shared: BTreeMap<String, usize>,
    /// Linked clones from templates on nodes' own storage, by node.
    pub local: BTreeMap<String, usize>,
    /// The longest queue now, seconds (`lock_ms` per volume).
    pub now_s: f64,
    /// The longest queue with a copy of each template on every node, seconds.
    pub synced_s: f64,
}

impl CloneQueues {
    /// The queues of a plan's new linked clones, `lock_ms` per volume.
    pub fn of_plan(plan: &Plan, snap: &Snapshot, lock_ms: u64) -> CloneQueues {
        let clones: Vec<(u32, String, usize)> = plan
            .vms
            .iter()
            .filter(|v| !v.exists && !v.full)
            .map(|v| {
                let disks = snap.vm(v.template).map(|t| t.disk_storages().len().max(1)).unwrap_or(1);
                (v.template, v.node.clone(), disks)
            })
            .collect();
        CloneQueues::of(snap, &clones, lock_ms)
    }

    /// Which case the clones are in, in a sentence: what a sync would gain, or that the
    /// nodes already clone from their own copies.
    pub fn summary(&self) -> Option<String> {
        if let Some(advice) = self.advice() {
            return Some(advice);
        }
        let clones: usize = self.local.values().sum::<usize>() + self.shared.values().sum::<usize>();
        (clones > 0 && self.shared.is_empty()).then(|| {
            format!(
                "{clones} linked clones from templates on the nodes' own storage: the nodes clone in parallel (≈{:.0} s of storage locks)",
                self.now_s
            )
        })
    }

    /// The queues of `clones` (each: the template's VMID, the node the clone goes to,
    /// its disks), with `lock_ms` per linked-clone volume.
    pub fn of(snap: &Snapshot, clones: &[(u32, String, usize)], lock_ms: u64) -> CloneQueues {
        let mut q = CloneQueues { shared: BTreeMap::new(), local: BTreeMap::new(), now_s: 0.0, synced_s: 0.0 };
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        let mut queue_now: BTreeMap<String, usize> = BTreeMap::new();
        for (template, node, disks) in clones {
            let Some(t) = snap.vm(*template) else { continue };
            let storages = t.disk_storages();
            let shared = storages.iter().find(|s| snap.storage(s).is_some_and(|x| x.shared));
            match shared {
                Some(s) => {
                    *q.shared.entry(s.clone()).or_default() += 1;
                    *queue_now.entry(s.clone()).or_default() += disks;
                }
                None => {
                    *q.local.entry(t.node.clone()).or_default() += 1;
                    *queue_now.entry(format!("{}/", t.node)).or_default() += disks;
                }
            }
            *per_node.entry(node.clone()).or_default() += disks;
        }
        let secs = |n: usize| n as f64 * lock_ms as f64 / 1000.0;
        q.now_s = queue_now.values().copied().max().map(secs).unwrap_or(0.0);
        q.synced_s = per_node.values().copied().max().map(secs).unwrap_or(0.0);
        q
    }

    /// What `stand templates sync` would gain, in a sentence, when it would gain anything.
    pub fn advice(&self) -> Option<String> {
        let (storage, clones) = self.shared.iter().max_by_key(|(_, n)| **n)?;
        if self.synced_s >= self.now_s * 0.8 {
            return None;
        }
        Some(format!(
            "{clones} linked clones queue on shared storage {storage}'s cluster-wide lock (≈{:.0} s); \
             `stand templates sync` puts a copy of each template on every node's own storage, \
             where the nodes clone in parallel (≈{:.0} s)",
            self.now_s, self.synced_s
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::VmConfig;
    use serde_json::json;

    fn vm(vmid: u32, node: &str, name: &str, template: bool, config: serde_json::Value) -> VmSnap {
        let mut v = VmSnap { vmid, node: node.into(), name: name.into(), template, ..Default::default() };
        v.set_config(serde_json::from_value::<VmConfig>(config).unwrap());
        v
    }

    fn snap() -> Snapshot {
        let mut s = Snapshot::default();
        for n in ["pve1", "pve2", "pve3"] {
            s.nodes.push(crate::plan::NodeSnap { name: n.into(), online: true, maxmem: 1 << 36, mem: 0, maxcpu: 16 });
        }
        let all: Vec<String> = ["pve1", "pve2", "pve3"].iter().map(|s| s.to_string()).collect();
        for (id, kind, shared) in [("nfs", "nfs", true), ("local-lvm", "lvmthin", false), ("local", "dir", false)] {
            s.storages.push(crate::plan::StorageSnap {
                id: id.into(),
                kind: kind.into(),
                shared,
                content: vec!["images".into()],
                nodes: all.clone(),
            });
        }
        s.vms.push(vm(101, "pve1", "alt", true, json!({ "scsi0": "nfs:base-101-disk-0,size=8G", "digest": "d1" })));
        s
    }

    #[test]
    fn a_sync_copies_to_every_node_once_and_a_fresh_copy_is_kept() {
        let mut s = snap();
        let cat = Catalog::of(&s);
        let req = SyncRequest { first_vmid: 9000, ..Default::default() };
        let plan = sync(&s, &cat, &req).unwrap();
        let copies: Vec<(String, u32, String)> = plan
            .graph
            .steps()
            .iter()
            .filter_map(|st| match &st.action {
                Action::CopyTemplate { node, vmid, storage, .. } => Some((node.clone(), *vmid, storage.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            copies,
            vec![
                ("pve1".into(), 9000, "local-lvm".into()),
                ("pve2".into(), 9001, "local-lvm".into()),
                ("pve3".into(), 9002, "local-lvm".into())
            ]
        );
        // A current copy on pve2: nothing to do there; an outdated one on pve3: kept
        // without --refresh, replaced with it.
        let desc = |d: &str| format!("stand: template-of=101 digest={d}");
        s.vms.push(vm(
            9000,
            "pve2",
            "alt",
            true,
            json!({ "scsi0": "local-lvm:base-9000-disk-0", "description": desc("d1") }),
        ));
        s.vms.push(vm(
            9001,
            "pve3",
            "alt",
            true,
            json!({ "scsi0": "local-lvm:base-9001-disk-0", "description": desc("old") }),
        ));
        let cat = Catalog::of(&s);
        let plan = sync(&s, &cat, &SyncRequest { nodes: vec!["pve2".into(), "pve3".into()], ..req.clone() }).unwrap();
        assert!(plan.graph.is_empty(), "{:?}", plan.graph);
        assert_eq!(plan.present, 1);
        assert!(plan.kept[0].contains("--refresh"), "{:?}", plan.kept);
        let plan = sync(&s, &cat, &SyncRequest { refresh: true, nodes: vec!["pve3".into()], ..req.clone() }).unwrap();
        let shown: Vec<String> = plan.graph.steps().iter().map(|s| s.action.to_string()).collect();
        assert!(shown[0].starts_with("- vm     9001"), "{shown:?}");
        assert_eq!(plan.graph.steps()[1].after, vec![0]);
        // A linked clone of the outdated copy keeps it, refresh or not; prune keeps it too.
        s.vms.push(vm(1000, "pve3", "pc-a", false, json!({ "scsi0": "local-lvm:base-9001-disk-0/vm-1000-disk-0" })));
        let cat = Catalog::of(&s);
        let plan = sync(&s, &cat, &SyncRequest { refresh: true, nodes: vec!["pve3".into()], ..req }).unwrap();
        assert!(plan.graph.is_empty());
        assert!(plan.kept[0].contains("linked clones use it (1000)"), "{:?}", plan.kept);
        let pruned = prune(&s, &cat, &[], &[]).unwrap();
        let shown: Vec<String> = pruned.graph.steps().iter().map(|s| s.action.to_string()).collect();
        assert_eq!(shown, vec!["- vm     9000 alt on pve2"]);
        assert!(pruned.kept[0].contains("9001"));
    }

    #[test]
    fn bad_names_nodes_and_storages_are_refused_with_what_exists() {
        let s = snap();
        let cat = Catalog::of(&s);
        let err = sync(&s, &cat, &SyncRequest { names: vec!["alt-srv".into()], ..Default::default() }).unwrap_err();
        assert_eq!(err.to_string(), "template 'alt-srv' does not exist (templates: alt)");
        let err = sync(&s, &cat, &SyncRequest { nodes: vec!["pve9".into()], ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("online: pve1, pve2, pve3"));
        let err = sync(&s, &cat, &SyncRequest { storage: Some("nfs".into()), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("is shared"));
    }

    #[test]
    fn the_queues_say_what_a_sync_gains() {
        let s = snap();
        let clones: Vec<(u32, String, usize)> =
            (0..90).map(|i| (101, ["pve1", "pve2", "pve3"][i % 3].to_string(), 1)).collect();
        let q = CloneQueues::of(&s, &clones, 600);
        assert_eq!(q.now_s, 54.0);
        assert_eq!(q.synced_s, 18.0);
        assert!(q.advice().unwrap().contains("90 linked clones queue on shared storage nfs"));
    }
}
