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

    /// Every lab the marker names: `lab=` and the `labs=` list.
    pub fn all_labs(&self) -> std::collections::BTreeSet<String> {
        self.labs().into_iter().chain(self.get("lab").map(str::to_string)).collect()
    }

    /// The `labs=a,b` list.
    pub fn labs(&self) -> Vec<String> {
        self.get("labs")
            .map(|l| l.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
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
}
