//! `<lab>-credentials.csv`: the students' logins, readable only by the instructor.
//!
//! Rows of earlier runs are kept: a run that sets passwords for three new students must not
//! lose the other students' passwords.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Credential;
use crate::sim::write_private;

/// A credentials file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing the file failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// `read` or `write`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A row is not CSV.
    #[error("{path}: row {row} is not CSV ({message}); move the file away and run `stand up --reset-passwords`")]
    Malformed {
        /// The file.
        path: String,
        /// The row (the header is row 1).
        row: usize,
        /// What the CSV reader said.
        message: String,
    },
}

/// The default file of a lab, in the working directory.
pub fn default_path(lab: &str) -> PathBuf {
    PathBuf::from(format!("{lab}-credentials.csv"))
}

const HEADER: [&str; 5] = ["user", "password", "node", "vms", "name"];

/// The students' credentials in `path`, by user; none when there is no file. Files of
/// earlier versions (without `name`) read too.
pub fn read(path: &Path) -> Result<Vec<Credential>, CredentialsError> {
    Ok(read_rows(path)?.into_values().collect())
}

fn read_rows(path: &Path) -> Result<BTreeMap<String, Credential>, CredentialsError> {
    let mut rows = BTreeMap::new();
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rows),
        Err(source) => return Err(CredentialsError::Io { what: "read", path: shown, source }),
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
    for (i, rec) in reader.records().enumerate() {
        let rec =
            rec.map_err(|e| CredentialsError::Malformed { path: shown.clone(), row: i + 2, message: e.to_string() })?;
        let field = |n: usize| rec.get(n).unwrap_or_default().to_string();
        let c = Credential {
            user: field(0),
            password: field(1),
            node: field(2),
            vms: field(3).split_whitespace().map(str::to_string).collect(),
            name: Some(field(4)).filter(|n| !n.is_empty()),
        };
        rows.insert(c.user.clone(), c);
    }
    Ok(rows)
}

/// Writes `creds` into `path` (mode 0600), replacing rows of the same users and keeping
/// the others. Returns how many rows the file has.
pub fn save(path: &Path, creds: &[Credential]) -> Result<usize, CredentialsError> {
    let mut rows = read_rows(path)?;
    for c in creds {
        rows.insert(c.user.clone(), c.clone());
    }
    write_rows(path, &rows)
}

/// Gives the rows of these `(user, name)` their new name (a roster corrected); rows of
/// other users, and a file without these users, stay as they are.
pub fn rename(path: &Path, names: &[(String, String)]) -> Result<(), CredentialsError> {
    let mut rows = read_rows(path)?;
    let mut changed = false;
    for (user, name) in names {
        if let Some(row) = rows.get_mut(user).filter(|r| r.name.as_ref() != Some(name)) {
            row.name = Some(name.clone());
            changed = true;
        }
    }
    if changed {
        write_rows(path, &rows)?;
    }
    Ok(())
}

fn write_rows(path: &Path, rows: &BTreeMap<String, Credential>) -> Result<usize, CredentialsError> {
    let io = |source| CredentialsError::Io { what: "write", path: path.display().to_string(), source };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut put = |record: &[&str]| writer.write_record(record).map_err(|e| io(std::io::Error::other(e)));
    put(&HEADER)?;
    for c in rows.values() {
        put(&[&c.user, &c.password, &c.node, &c.vms.join(" "), c.name.as_deref().unwrap_or_default()])?;
    }
    let bytes = writer.into_inner().map_err(|e| io(e.into_error()))?;
    write_private(path, &bytes).map_err(io)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(user: &str, password: &str) -> Credential {
        Credential {
            user: user.into(),
            password: password.into(),
            node: "pve1".into(),
            vms: vec!["a".into()],
            name: Some("Иванов Пётр".into()),
        }
    }

    #[test]
    fn later_runs_keep_earlier_students_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab-credentials.csv");
        assert_eq!(save(&path, &[cred("s1@pve", "one"), cred("s2@pve", "two,\"quoted\"")]).unwrap(), 2);
        assert_eq!(save(&path, &[cred("s2@pve", "new"), cred("s3@pve", "three")]).unwrap(), 3);
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows["s1@pve"].password, "one");
        assert_eq!(rows["s2@pve"], cred("s2@pve", "new"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_of_an_earlier_version_reads_without_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.csv");
        std::fs::write(&path, "user,password,node,vms\ns1@pve,pw,pve1,gw pc\n").unwrap();
        let rows = read(&path).unwrap();
        assert_eq!((rows[0].name.as_deref(), rows[0].vms.len()), (None, 2));
        assert!(read(&dir.path().join("none.csv")).unwrap().is_empty());
    }
}
