//! The documents a Cluster API management cluster with CAPMOX applies for one student: the
//! core objects in cluster-api's `v1beta1` shapes and CAPMOX's in its stored `v1alpha2`,
//! as in CAPMOX's own cluster templates (`templates/cluster-template.yaml` of
//! ionos-cloud/cluster-api-provider-proxmox), with `stand`'s labels.

use serde_json::{Value, json};

use super::addresses::Range;
use super::settings::CapiSettings;

const CORE: &str = "cluster.x-k8s.io/v1beta1";
const CONTROL_PLANE: &str = "controlplane.cluster.x-k8s.io/v1beta1";
const BOOTSTRAP: &str = "bootstrap.cluster.x-k8s.io/v1beta1";
const INFRA: &str = "infrastructure.cluster.x-k8s.io/v1alpha2";

/// What one student's cluster is made of, decided by the export.
#[derive(Clone, Debug, PartialEq)]
pub struct StudentCluster {
    /// The lab.
    pub lab: String,
    /// `name@realm`.
    pub user: String,
    /// The student's name key (`ivanov-ps`), a label value.
    pub key: String,
    /// The cluster's name on the management cluster (`lab3-ivanov-ps`).
    pub name: String,
    /// The student's pool: the machines go there.
    pub pool: String,
    /// The nodes of the student's stand.
    pub nodes: Vec<String>,
    /// The bridge or VNet of the student's network.
    pub bridge: String,
    /// The template's node and VMID (its copy on the stand's node, when there is one).
    pub source_node: String,
    /// The template's VMID.
    pub template_id: u32,
    /// The student's machine addresses.
    pub addresses: Range,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// kube-vip's address.
    pub endpoint: std::net::Ipv4Addr,
    /// The student's VMIDs, when the lab sets them.
    pub vmids: Option<(u32, u32)>,
    /// The Secret with CAPMOX's credentials, when made.
    pub credentials: Option<String>,
}

impl StudentCluster {
    fn metadata(&self, s: &CapiSettings, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": s.namespace,
            "labels": {
                "cluster.x-k8s.io/cluster-name": self.name,
                "stand/lab": self.lab,
                "stand/student": self.key,
            },
            "annotations": { "stand/user": self.user },
        })
    }

    fn machine_template(&self, s: &CapiSettings, name: &str) -> Value {
        let mut spec = json!({
            "sourceNode": self.source_node,
            "templateID": self.template_id,
            "full": s.full,
            "pool": self.pool,
            "allowedNodes": self.nodes,
            "numSockets": 1,
            "numCores": s.cores,
            "memoryMiB": s.memory,
            "disks": { "bootVolume": { "disk": s.disk, "sizeGb": s.disk_gb } },
            "network": {
                "networkDevices": [{ "name": "net0", "bridge": self.bridge, "model": "virtio", "defaultIPv4": true }],
            },
            "tags": ["stand", format!("lab-{}", self.lab)],
        });
        if let Some(storage) = s.storage.as_ref().filter(|_| s.full) {
            spec["storage"] = json!(storage);
        }
        if let Some((start, end)) = self.vmids {
            spec["vmIDRange"] = json!({ "start": start, "end": end });
        }
        json!({
            "apiVersion": INFRA,
            "kind": "ProxmoxMachineTemplate",
            "metadata": self.metadata(s, name),
            "spec": { "template": { "spec": spec } },
        })
    }

    /// The kubelet learns its provider ID from the cloud-init data CAPMOX writes.
    fn node_registration() -> Value {
        json!({ "kubeletExtraArgs": { "provider-id": "proxmox://'{{ ds.meta_data.instance_id }}'" } })
    }

    /// `root` with the lab's SSH keys; nothing without keys.
    fn with_users(mut spec: Value, s: &CapiSettings) -> Value {
        if !s.ssh_keys.is_empty() {
            spec["users"] = json!([{ "name": "root", "sshAuthorizedKeys": s.ssh_keys }]);
        }
        spec
    }

    /// The student's documents, in the order they are applied.
    pub fn documents(&self, s: &CapiSettings) -> Vec<Value> {
        let cp = format!("{}-control-plane", self.name);
        let workers = format!("{}-workers", self.name);
        let mut infra = json!({
            "apiVersion": INFRA,
            "kind": "ProxmoxCluster",
            "metadata": self.metadata(s, &self.name),
            "spec": {
                "controlPlaneEndpoint": { "host": self.endpoint.to_string(), "port": s.port },
                "ipv4Config": {
                    "addresses": [self.addresses.to_string()],
                    "prefix": self.prefix,
                    "gateway": s.gateway.to_string(),
                },
                "dnsServers": s.dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "allowedNodes": self.nodes,
            },
        });
        if let Some(secret) = &self.credentials {
            infra["spec"]["credentialsRef"] = json!({ "name": secret, "namespace": s.namespace });
        }
        vec![
            json!({
                "apiVersion": CORE,
                "kind": "Cluster",
                "metadata": self.metadata(s, &self.name),
                "spec": {
                    "clusterNetwork": { "pods": { "cidrBlocks": [s.pod_cidr] } },
                    "controlPlaneRef": { "apiVersion": CONTROL_PLANE, "kind": "KubeadmControlPlane", "name": cp },
                    "infrastructureRef": { "apiVersion": INFRA, "kind": "ProxmoxCluster", "name": self.name },
                },
            }),
            infra,
            json!({
                "apiVersion": CONTROL_PLANE,
                "kind": "KubeadmControlPlane",
                "metadata": self.metadata(s, &cp),
                "spec": {
                    "replicas": s.control_planes,
                    "version": s.kubernetes,
                    "machineTemplate": {
                        "infrastructureRef": { "apiVersion": INFRA, "kind": "ProxmoxMachineTemplate", "name": cp },
                    },
                    "kubeadmConfigSpec": Self::with_users(json!({
                        "files": [{
                            "path": "/etc/kubernetes/manifests/kube-vip.yaml",
                            "owner": "root:root",
                            "content": kube_vip(self.endpoint, s.port),
                        }],
                        // kubeadm init (from 1.29) gives admin.conf its rights only once
                        // the API server answers: kube-vip, which must answer first, starts
                        // with super-admin.conf on the first control plane (kube-vip#684).
                        "preKubeadmCommands": [
                            "if [ -f /run/kubeadm/kubeadm.yaml ]; then sed -i 's#path: /etc/kubernetes/admin.conf#path: /etc/kubernetes/super-admin.conf#' /etc/kubernetes/manifests/kube-vip.yaml; fi",
                        ],
                        "initConfiguration": { "nodeRegistration": Self::node_registration() },
                        "joinConfiguration": { "nodeRegistration": Self::node_registration() },
                    }), s),
                },
            }),
            self.machine_template(s, &cp),
            json!({
                "apiVersion": CORE,
                "kind": "MachineDeployment",
                "metadata": self.metadata(s, &workers),
                "spec": {
                    "clusterName": self.name,
                    "replicas": s.workers,
                    "selector": { "matchLabels": {} },
                    "template": {
                        "metadata": { "labels": { "cluster.x-k8s.io/cluster-name": self.name, "stand/student": self.key } },
                        "spec": {
                            "clusterName": self.name,
                            "version": s.kubernetes,
                            "bootstrap": {
                                "configRef": { "apiVersion": BOOTSTRAP, "kind": "KubeadmConfigTemplate", "name": workers },
                            },
                            "infrastructureRef": { "apiVersion": INFRA, "kind": "ProxmoxMachineTemplate", "name": workers },
                        },
                    },
                },
            }),
            self.machine_template(s, &workers),
            json!({
                "apiVersion": BOOTSTRAP,
                "kind": "KubeadmConfigTemplate",
                "metadata": self.metadata(s, &workers),
                "spec": {
                    "template": {
                        "spec": Self::with_users(json!({
                            "joinConfiguration": { "nodeRegistration": Self::node_registration() },
                        }), s),
                    },
                },
            }),
        ]
    }
}

/// kube-vip as a static pod on the control planes: it holds the endpoint address (ARP,
/// leader election among the control planes).
fn kube_vip(endpoint: std::net::Ipv4Addr, port: u16) -> String {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "kube-vip", "namespace": "kube-system" },
        "spec": {
            "hostNetwork": true,
            "hostAliases": [{ "ip": "127.0.0.1", "hostnames": ["localhost", "kubernetes"] }],
            "containers": [{
                "name": "kube-vip",
                "image": "ghcr.io/kube-vip/kube-vip:v0.8.9",
                "args": ["manager"],
                "env": [
                    { "name": "cp_enable", "value": "true" },
                    { "name": "vip_arp", "value": "true" },
                    { "name": "vip_leaderelection", "value": "true" },
                    { "name": "address", "value": endpoint.to_string() },
                    { "name": "port", "value": port.to_string() },
                ],
                "securityContext": { "capabilities": { "add": ["NET_ADMIN", "NET_RAW"] } },
                "volumeMounts": [{ "mountPath": "/etc/kubernetes/admin.conf", "name": "kubeconfig" }],
            }],
            "volumes": [{ "name": "kubeconfig", "hostPath": { "path": "/etc/kubernetes/admin.conf", "type": "FileOrCreate" } }],
        },
    });
    serde_yaml::to_string(&pod).unwrap_or_default()
}

/// The Secret CAPMOX reads a cluster's credentials from (`credentialsRef`).
pub fn secret(name: &str, namespace: &str, url: &str, token: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { "platform.ionos.com/secret-type": "proxmox-credentials" },
        },
        "stringData": { "url": url, "token": token, "secret": value },
    })
}

/// Documents as one multi-document YAML stream.
pub fn to_yaml(docs: &[Value]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(d)?);
    }
    Ok(out)
}
