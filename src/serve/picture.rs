//! A stand's network as an SVG drawn on the server: its VMs in a row, each network a bus
//! below them, a line from each NIC to its network (dashed when its link is down). No
//! script, no layout engine: readable at any size, and in the page without JavaScript.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::view::StandView;

const BOX_W: usize = 132;
const GAP: usize = 24;
const BOX_H: usize = 48;
const TOP: usize = 12;
const BUS_TOP: usize = TOP + BOX_H + 40;
const BUS_GAP: usize = 34;
const LABEL_W: usize = 150;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A network's name in the picture: the stand's alias, `uplink` for `vmbr0`, else the bridge.
fn net_label(bridge: &str, alias: Option<&str>) -> String {
    match (alias, bridge) {
        (Some(a), b) => format!("{a} ({b})"),
        (None, "vmbr0") => "uplink (vmbr0)".into(),
        (None, b) => b.to_string(),
    }
}

fn status_class(status: &str) -> &'static str {
    match status {
        "running" => "up",
        "stopped" => "down",
        _ => "other",
    }
}

/// The SVG of `stand`'s network.
pub fn svg(stand: &StandView) -> String {
    let mut nets: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for vm in &stand.vms {
        for nic in &vm.nics {
            let next = nets.len();
            nets.entry(nic.bridge.as_str()).or_insert((next, net_label(&nic.bridge, nic.alias.as_deref())));
        }
    }
    let width = (stand.vms.len() * (BOX_W + GAP)).max(BOX_W + GAP) + LABEL_W;
    let height = BUS_TOP + nets.len().max(1) * BUS_GAP;
    let bus_end = width - LABEL_W + 6;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="net" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="network of {}">"#,
        esc(&stand.user)
    );
    for (row, label) in nets.values() {
        let y = BUS_TOP + row * BUS_GAP;
        let _ = write!(
            out,
            r#"<line class="bus" x1="{GAP}" y1="{y}" x2="{bus_end}" y2="{y}"/><text class="bus-label" x="{}" y="{}">{}</text>"#,
            bus_end + 6,
            y + 4,
            esc(label)
        );
    }
    for (i, vm) in stand.vms.iter().enumerate() {
        let x = GAP + i * (BOX_W + GAP);
        let nics = vm.nics.len().max(1);
        for (k, nic) in vm.nics.iter().enumerate() {
            let Some((row, _)) = nets.get(nic.bridge.as_str()) else { continue };
            let nx = x + (k + 1) * BOX_W / (nics + 1);
            let y = BUS_TOP + row * BUS_GAP;
            let class = if nic.link_down { "link down" } else { "link" };
            let _ = write!(
                out,
                r#"<line class="{class}" x1="{nx}" y1="{}" x2="{nx}" y2="{y}"><title>{} {}</title></line><circle class="port" cx="{nx}" cy="{y}" r="3.5"/>"#,
                TOP + BOX_H,
                esc(&nic.slot),
                if nic.link_down { "(link down)" } else { "" }
            );
        }
        let _ = write!(
            out,
            r#"<g class="vm {}"><rect x="{x}" y="{TOP}" width="{BOX_W}" height="{BOX_H}" rx="7"/><circle class="dot" cx="{}" cy="{}" r="4.5"/><text class="vm-name" x="{}" y="{}">{}</text><text class="vm-id" x="{}" y="{}">{} · {}</text></g>"#,
            status_class(&vm.status),
            x + 14,
            TOP + 18,
            x + 25,
            TOP + 22,
            esc(&vm.short),
            x + 12,
            TOP + 39,
            vm.vmid,
            esc(&vm.status)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::view::{Nic, VmView};

    fn vm(vmid: u32, short: &str, nics: &[(&str, Option<&str>, bool)]) -> VmView {
        VmView {
            vmid,
            name: format!("{short}-s"),
            short: short.into(),
            node: "pve1".into(),
            status: "running".into(),
            uptime_s: 5,
            mem: 0,
            maxmem: 1 << 30,
            cpu: 0.0,
            lock: None,
            nics: nics
                .iter()
                .enumerate()
                .map(|(i, (b, a, down))| Nic {
                    slot: format!("net{i}"),
                    bridge: b.to_string(),
                    alias: a.map(str::to_string),
                    link_down: *down,
                    cut: *down,
                })
                .collect(),
        }
    }

    #[test]
    fn every_vm_and_network_is_drawn_names_are_escaped_and_cut_links_dashed() {
        let stand = StandView {
            lab: "lab3".into(),
            user: "петрова@pve".into(),
            name: None,
            node: "pve1".into(),
            vms: vec![
                vm(3001, "gw", &[("vmbr0", None, true), ("vmbr1000", Some("<lan>"), false)]),
                vm(3002, "pc", &[("vmbr1000", Some("<lan>"), false)]),
            ],
        };
        let s = svg(&stand);
        assert_eq!(s.matches("<g class=\"vm up\">").count(), 2);
        assert_eq!(s.matches("class=\"bus\"").count(), 2, "two networks: {s}");
        assert!(s.contains("&lt;lan&gt; (vmbr1000)") && !s.contains("<lan>"));
        assert!(s.contains("uplink (vmbr0)"));
        assert_eq!(s.matches("class=\"link down\"").count(), 1);
        assert!(s.contains("петрова@pve"));
    }
}
