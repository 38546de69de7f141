//! `stand graph LAB.rhai`: the topology of one stand, and the lab's layout over the nodes,
//! as Graphviz DOT or Mermaid.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::plan::{Plan, VmPlan};
use crate::pve::NetDevice;

/// Picture formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// Mermaid (Markdown, GitLab, GitHub).
    Mermaid,
}

/// One NIC: (VM name, label `net1` / `net1 tag 100`, bridge, link down).
type Link = (String, String, String, bool);

fn links(vms: &[&VmPlan]) -> Vec<Link> {
    let mut out = Vec::new();
    for vm in vms {
        for (i, nic) in vm.nets.iter().enumerate() {
            let Some(dev) = nic.as_deref().and_then(|n| n.parse::<NetDevice>().ok()) else { continue };
            if let Some(bridge) = dev.bridge {
                let mut label = match dev.tag {
                    Some(t) => format!("net{i} tag {t}"),
                    None => format!("net{i}"),
                };
                // EcoRouter's management port is cabled but down.
                if dev.link_down {
                    label.push_str(", link down");
                }
                out.push((vm.spec_name.clone(), label, bridge, dev.link_down));
            }
        }
    }
    out
}

/// A bridge's label in the picture: the alias for private ones, the name for others.
fn bridge_label(plan: &Plan, node: &str, iface: &str) -> String {
    match plan.bridges.iter().find(|b| b.node == node && b.iface == iface) {
        Some(b) => match &b.alias {
            Some(a) => format!("{a} ({iface})"),
            None => iface.to_string(),
        },
        None if iface == "vmbr0" => "uplink (vmbr0)".to_string(),
        None => iface.to_string(),
    }
}

fn id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Renders the stand of `user` (default: the first) and the per-node layout of the lab.
pub fn render(plan: &Plan, user: Option<&str>, format: Format) -> Result<String, String> {
    let user = match user {
        Some(u) => plan.users.iter().find(|p| p.userid == u).ok_or_else(|| {
            let students: Vec<&str> = plan.users.iter().map(|p| p.userid.as_str()).collect();
            let hint = super::suggest::did_you_mean(u, students.iter().copied())
                .map(|m| format!(" (did you mean '{m}'?)"))
                .unwrap_or_default();
            format!("--student: the lab has no student {u}{hint}; students: {}", students.join(", "))
        })?,
        None => plan.users.first().ok_or("the lab has no students")?,
    };
    let vms: Vec<&VmPlan> = plan.vms.iter().filter(|v| v.user == user.userid).collect();
    let node = vms.first().map(|v| v.node.clone()).or_else(|| user.node.clone()).unwrap_or_default();
    let links = links(&vms);
    let mut bridges: Vec<&str> = links.iter().map(|l| l.2.as_str()).collect();
    bridges.sort();
    bridges.dedup();
    let mut per_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for u in &plan.users {
        per_node.entry(u.node.as_deref().unwrap_or("?")).or_default().push(&u.userid);
    }
    let mut out = String::new();
    match format {
        Format::Dot => {
            let _ = writeln!(out, "graph \"{}\" {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];", plan.lab_name());
            let _ = writeln!(out, "  subgraph cluster_stand {{\n    label=\"stand of {} on {node}\";", user.userid);
            for vm in &vms {
                let _ = writeln!(
                    out,
                    "    vm_{} [shape=box, style=rounded, label=\"{}\\n{}\"];",
                    id(&vm.spec_name),
                    vm.spec_name,
                    vm.vmid
                );
            }
            for b in &bridges {
                let shape = if *b == "vmbr0" { "doubleoctagon" } else { "ellipse" };
                let _ = writeln!(out, "    br_{} [shape={shape}, label=\"{}\"];", id(b), bridge_label(plan, &node, b));
            }
            for (vm, label, b, down) in &links {
                let style = if *down { ", style=dashed" } else { "" };
                let _ = writeln!(out, "    vm_{} -- br_{} [label=\"{label}\"{style}];", id(vm), id(b));
            }
            let _ = writeln!(
                out,
                "  }}\n  subgraph cluster_layout {{\n    label=\"lab {} over the nodes\";",
                plan.lab_name()
            );
            for (n, users) in &per_node {
                let _ = writeln!(out, "    node_{} [shape=folder, label=\"{n}\\n{} stands\"];", id(n), users.len());
            }
            let _ = writeln!(out, "  }}\n}}");
        }
        Format::Mermaid => {
            let _ = writeln!(out, "flowchart LR");
            let _ = writeln!(out, "  subgraph stand[\"stand of {} on {node}\"]", user.userid);
            for vm in &vms {
                let _ = writeln!(out, "    vm_{}[\"{}<br/>{}\"]", id(&vm.spec_name), vm.spec_name, vm.vmid);
            }
            for b in &bridges {
                let _ = writeln!(out, "    br_{}((\"{}\"))", id(b), bridge_label(plan, &node, b));
            }
            for (vm, label, b, down) in &links {
                let edge = if *down { "-.-" } else { "---" };
                let _ = writeln!(out, "    vm_{} {edge}|{label}| br_{}", id(vm), id(b));
            }
            let _ = writeln!(out, "  end\n  subgraph layout[\"lab {} over the nodes\"]", plan.lab_name());
            for (n, users) in &per_node {
                let _ = writeln!(out, "    node_{}[\"{n}: {} stands\"]", id(n), users.len());
            }
            let _ = writeln!(out, "  end");
        }
    }
    Ok(out)
}
