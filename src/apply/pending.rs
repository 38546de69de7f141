//! Reading a node's pending network diff (`interfaces` → `interfaces.new`): which
//! interfaces it adds or removes, and the owner the `stand` marker in each one's stanza
//! comment names.

use crate::plan::{Owner, Snapshot};

/// One interface a pending diff adds or removes.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingIface {
    /// Interface name.
    pub iface: String,
    /// Added (`+iface`) or removed (`-iface`).
    pub added: bool,
    /// The owner of its stanza's comment (`#stand: ...`), if any.
    pub owner: Option<Owner>,
}

/// The interfaces `diff` adds or removes, in order.
pub fn pending_ifaces(diff: &str) -> Vec<PendingIface> {
    let mut out: Vec<PendingIface> = Vec::new();
    for line in diff.lines() {
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let (sign, rest) = match line.chars().next() {
            Some(c @ ('+' | '-')) => (c, &line[1..]),
            _ => continue,
        };
        if let Some(def) = rest.strip_prefix("iface ") {
            if let Some(name) = def.split_whitespace().next() {
                out.push(PendingIface { iface: name.to_string(), added: sign == '+', owner: None });
            }
        } else if let Some(comment) = rest.strip_prefix('#')
            && let Some(last) = out.last_mut().filter(|l| l.added == (sign == '+'))
        {
            last.owner = last.owner.take().or_else(|| Owner::of_bridge(comment));
        }
    }
    out
}

/// The interfaces whose pending changes on `node` are someone else's: not in `ours`, and
/// without a `stand` marker (in the diff or on the staged bridge). Changes made by `stand`,
/// for this lab or by another instructor's run at this moment, are safe to apply.
pub fn foreign_pending(snap: &Snapshot, node: &str, ours: &[&str]) -> Vec<String> {
    let made_by_stand = |iface: &str| snap.bridge(node, iface).is_some_and(|b| b.owner.is_some());
    snap.pending
        .get(node)
        .map(|d| {
            pending_ifaces(d)
                .into_iter()
                .filter(|p| !ours.contains(&p.iface.as_str()) && p.owner.is_none() && !made_by_stand(&p.iface))
                .map(|p| p.iface)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_interfaces_and_the_markers_of_their_stanzas() {
        let d = "--- /etc/network/interfaces\n+++ /etc/network/interfaces.new\n@@ -1 +1,5 @@\n+auto vmbr1000\n+iface vmbr1000 inet manual\n+\tbridge-ports none\n+#stand: alias=lan lab=a user=s@pve\n-iface vmbr7 inet manual\n-#lab switch\n-iface vmbr1003 inet manual\n-#stand: alias=dmz lab=b user=t@pve\n";
        let p = pending_ifaces(d);
        assert_eq!(
            p.iter().map(|i| (i.iface.as_str(), i.added)).collect::<Vec<_>>(),
            [("vmbr1000", true), ("vmbr7", false), ("vmbr1003", false)]
        );
        assert!(p[0].owner.as_ref().is_some_and(|o| o.has_lab("a")));
        assert!(p[1].owner.is_none(), "a comment that is not a stand marker");
        assert!(p[2].owner.as_ref().is_some_and(|o| o.has_lab("b") && o.user() == Some("t@pve")));
    }
}
