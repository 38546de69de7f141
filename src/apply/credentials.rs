//! `<lab>-credentials.csv`: the students' logins, readable only by the instructor.
//!
//! Rows of earlier runs are kept: a run that sets passwords for three new students must not
//! lose the other students' passwords.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::apply::Credential;
use crate::sim::write_private;

/// The default file of a lab, in the working directory.
pub fn default_path(lab: &str) -> PathBuf {
    PathBuf::from(format!("{lab}-credentials.csv"))
}

const HEADER: [&str; 4] = ["user", "password", "node", "vms"];

/// Reads the rows of an earlier run, by user.
fn read_rows(path: &Path) -> anyhow::Result<BTreeMap<String, [String; 4]>> {
    let mut rows = BTreeMap::new();
    let mut reader = match csv::Reader::from_path(path) {
        Ok(r) => r,
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) => {
            return Ok(rows);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {} is not CSV; move the file away", path.display(), i + 2))?;
        let field = |n: usize| rec.get(n).unwrap_or_default().to_string();
        rows.insert(field(0), [field(0), field(1), field(2), field(3)]);
    }
    Ok(rows)
}

/// Writes `creds` into `path` (mode 0600), replacing rows of the same users and keeping
/// the others. Returns how many rows the file has.
pub fn save(path: &Path, creds: &[Credential]) -> anyhow::Result<usize> {
    let mut rows = read_rows(path)?;
    for c in creds {
        rows.insert(c.user.clone(), [c.user.clone(), c.password.clone(), c.node.clone(), c.vms.join(" ")]);
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for row in rows.values() {
        writer.write_record(row)?;
    }
    let bytes = writer.into_inner().context("cannot encode the credentials")?;
    write_private(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(user: &str, password: &str) -> Credential {
        Credential { user: user.into(), password: password.into(), node: "pve1".into(), vms: vec!["a".into()] }
    }

    #[test]
    fn later_runs_keep_earlier_students_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab-credentials.csv");
        assert_eq!(save(&path, &[cred("s1@pve", "one"), cred("s2@pve", "two,\"quoted\"")]).unwrap(), 2);
        assert_eq!(save(&path, &[cred("s2@pve", "new"), cred("s3@pve", "three")]).unwrap(), 3);
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows["s1@pve"][1], "one");
        assert_eq!(rows["s2@pve"][1], "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
