//! `lab(#{ capi: #{ .. } })`: what each student's Kubernetes cluster is made of and where its
//! machines' addresses come from.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The lab's Cluster API settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapiSettings {
    /// The machines' addresses, split into one range per student: a CIDR
    /// (`10.10.0.0/25`) or a range (`10.10.0.10-10.10.0.199`).
    pub addresses: String,
    /// The subnet's prefix length (default: the CIDR's).
    pub prefix: Option<u8>,
    /// The machines' gateway.
    pub gateway: Ipv4Addr,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The first student's control plane endpoint (kube-vip's address); the next student's is
    /// the next address, and none may fall in `addresses`.
    pub endpoint: Ipv4Addr,
    /// The API server's port.
    pub port: u16,
    /// The student's network the machines are on: an alias (`"lan"`) or a shared bridge.
    pub network: String,
    /// The cloud-init capable template the machines are cloned from (name or VMID).
    pub template: String,
    /// Control plane machines per student.
    pub control_planes: u32,
    /// Worker machines per student.
    pub workers: u32,
    /// Memory of a machine, MiB.
    pub memory: u32,
    /// Cores of a machine.
    pub cores: u32,
    /// The boot disk (`scsi0`) and its size, GB.
    pub disk: String,
    /// Boot disk size, GB.
    pub disk_gb: u32,
    /// Full clones (default: linked).
    pub full: bool,
    /// Target storage of full clones.
    pub storage: Option<String>,
    /// The Kubernetes version (`v1.31.4`).
    pub kubernetes: String,
    /// The namespace of the objects on the management cluster.
    pub namespace: String,
    /// The pods' network inside each cluster.
    pub pod_cidr: String,
    /// SSH keys for the machines' `root`.
    pub ssh_keys: Vec<String>,
    /// The storage CAPMOX uploads its cloud-init ISO to (it gets `PVEDatastoreAdmin` there).
    pub iso_storage: String,
    /// VMIDs of the machines, split per student, when set.
    pub vmids: Option<(u32, u32)>,
}

impl CapiSettings {
    /// Settings with these addresses and the defaults for the rest.
    pub fn new(addresses: &str, gateway: Ipv4Addr, endpoint: Ipv4Addr, network: &str, template: &str) -> CapiSettings {
        CapiSettings {
            addresses: addresses.to_string(),
            prefix: None,
            gateway,
            dns: vec![gateway],
            endpoint,
            port: 6443,
            network: network.to_string(),
            template: template.to_string(),
            control_planes: 1,
            workers: 2,
            memory: 4096,
            cores: 2,
            disk: "scsi0".into(),
            disk_gb: 20,
            full: false,
            storage: None,
            kubernetes: "v1.31.4".into(),
            namespace: "default".into(),
            pod_cidr: "192.168.0.0/16".into(),
            ssh_keys: Vec::new(),
            iso_storage: "local".into(),
            vmids: None,
        }
    }

    /// Machines one student's cluster may have at once: its control planes and workers,
    /// and one more of each while a rollout replaces them (`maxSurge: 1`).
    pub fn block(&self) -> u32 {
        self.control_planes + self.workers + 2
    }
}
