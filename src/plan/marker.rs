//! Ownership markers: the cluster itself is `stand`'s state. VMs carry the tags `stand` and
//! `lab-<lab>` and a description line `stand: lab=<lab> user=<user> name=<name>`; pools,
//! users and bridges carry the same kind of line in their comment.

use std::collections::BTreeMap;

/// The tag every VM made by `stand` carries.
pub const STAND_TAG: &str = "stand";

/// The tag of a lab's VMs.
pub fn lab_tag(lab: &str) -> String {
    format!("lab-{lab}")
}

/// A parsed `stand: k=v ...` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marker(pub BTreeMap<String, String>);

impl Marker {
    /// A marker with these fields.
    pub fn new(fields: &[(&str, &str)]) -> Marker {
        Marker(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// Finds the marker line in a description or comment.
    pub fn parse(text: &str) -> Option<Marker> {
        let line = text.lines().map(str::trim).find(|l| l.starts_with("stand:"))?;
        let fields = line["stand:".len()..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Marker(fields))
    }

    /// A field.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Sets a field; an empty value removes it.
    pub fn set(&mut self, k: &str, v: &str) {
        if v.is_empty() {
            self.0.remove(k);
        } else {
            self.0.insert(k.to_string(), v.to_string());
        }
    }

    /// A comma-separated list field (`cut=net0,net2`).
    pub fn list(&self, k: &str) -> Vec<String> {
        self.get(k).map(|l| l.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
    }

    /// `text` with its marker line replaced by this marker (appended when it had none);
    /// every other line stays as it was.
    pub fn replace_in(&self, text: &str) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut replaced = false;
        for line in text.lines() {
            if !replaced && line.trim().starts_with("stand:") {
                lines.push(self.to_string());
                replaced = true;
            } else {
                lines.push(line.to_string());
            }
        }
        if !replaced {
            lines.push(self.to_string());
        }
        lines.join("\n")
    }

    /// Every lab the marker names: `lab=` and the `labs=` list.
    pub fn all_labs(&self) -> std::collections::BTreeSet<String> {
        self.labs().into_iter().chain(self.get("lab").map(str::to_string)).collect()
    }

    /// The `labs=a,b` list.
    pub fn labs(&self) -> Vec<String> {
        self.list("labs")
    }
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stand:")?;
        for (k, v) in &self.0 {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_inside_other_text() {
        let m = Marker::new(&[("lab", "lab3"), ("user", "s1@pve"), ("name", "web")]);
        let text = format!("Web server of the student.\n{m}\n");
        let back = Marker::parse(&text).unwrap();
        assert_eq!(back, m);
        assert!(back.all_labs().contains("lab3") && !back.all_labs().contains("lab1"));
        assert!(Marker::parse("just a comment").is_none());
        assert!(Marker::parse("stand: labs=lab1,lab3").unwrap().all_labs().contains("lab1"));
    }

    #[test]
    fn a_marker_is_replaced_in_place_and_the_rest_of_the_text_kept() {
        let mut m = Marker::parse("Router.\nstand: lab=lab3 name=gw user=s1@pve\nNotes").unwrap();
        m.set("cut", "net0,net2");
        let text = m.replace_in("Router.\nstand: lab=lab3 name=gw user=s1@pve\nNotes");
        assert_eq!(text, "Router.\nstand: cut=net0,net2 lab=lab3 name=gw user=s1@pve\nNotes");
        assert_eq!(Marker::parse(&text).unwrap().list("cut"), ["net0", "net2"]);
        m.set("cut", "");
        assert_eq!(Marker::parse(&m.replace_in(&text)).unwrap().get("cut"), None);
    }
}
