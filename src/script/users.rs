//! Student lists: deploy-stand's `users_list.yml`, a CSV or text file, or an array.

use std::path::Path;

use crate::plan::valid_userid;

/// A list that cannot be used, with where and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct UsersError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Reads userids from `path`: YAML (`users: [a@pve, ...]` or a list), else one per line
/// (first CSV column; `#` comments and a `userid`/`user` header skipped). Checked and de-duplicated.
pub fn read_users(path: &Path) -> Result<Vec<String>, UsersError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| UsersError {
        file: file.clone(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    let entries: Vec<(Option<usize>, String)> = if is_yaml {
        let v: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| UsersError {
            file: file.clone(),
            line: e.location().map(|l| l.line()),
            message: format!("not valid YAML: {e}"),
        })?;
        let list = match &v {
            serde_yaml::Value::Mapping(m) => m.get("users").cloned(),
            serde_yaml::Value::Sequence(_) => Some(v.clone()),
            _ => None,
        };
        let Some(serde_yaml::Value::Sequence(items)) = list else {
            return Err(UsersError {
                file,
                line: None,
                message: "expected `users:` with a list of name@realm (deploy-stand's users_list.yml)".into(),
            });
        };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            match it.as_str() {
                Some(s) => out.push((None, s.trim().to_string())),
                None => {
                    return Err(UsersError {
                        file,
                        line: None,
                        message: format!("users[{i}] is not a string: write each user as name@realm"),
                    });
                }
            }
        }
        out
    } else {
        first_column(&text).map_err(|(line, message)| UsersError { file: file.clone(), line, message })?
    };
    check_users(&file, entries)
}

/// A userid and the line it is on.
type Entry = (Option<usize>, String);

/// The first column of a CSV (`,`, `;` or tab, as the first line has them) or of a plain
/// list, with line numbers; `#` comments, empty lines and a `userid`/`user` header skipped.
fn first_column(text: &str) -> Result<Vec<Entry>, (Option<usize>, String)> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_default();
    let delimiter = [b';', b'\t', b','].into_iter().find(|d| first.contains(char::from(*d))).unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            (e.position().map(|p| p.line() as usize), format!("not valid CSV: {e}; quote fields with \"..\""))
        })?;
        let line = record.position().map(|p| p.line() as usize);
        let user = record.get(0).unwrap_or_default().to_string();
        if !user.is_empty() && !matches!(user.to_ascii_lowercase().as_str(), "userid" | "user" | "users") {
            out.push((line, user));
        }
    }
    Ok(out)
}

/// Checks userids (format, duplicates).
pub fn check_users(file: &str, entries: Vec<(Option<usize>, String)>) -> Result<Vec<String>, UsersError> {
    let mut out: Vec<String> = Vec::new();
    for (line, u) in entries {
        if !valid_userid(&u) {
            return Err(UsersError {
                file: file.into(),
                line,
                message: format!("'{u}' is not a Proxmox userid: write name@realm, e.g. student1@pve"),
            });
        }
        if out.contains(&u) {
            return Err(UsersError { file: file.into(), line, message: format!("'{u}' is listed twice") });
        }
        out.push(u);
    }
    if out.is_empty() {
        return Err(UsersError { file: file.into(), line: None, message: "no users in the list".into() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deploy_stand_yaml_and_text_lists() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("users_list.yml");
        std::fs::write(&y, "users:\n  - user1@pve\n  - user2@pve\n").unwrap();
        assert_eq!(read_users(&y).unwrap(), vec!["user1@pve", "user2@pve"]);
        let t = dir.path().join("group.csv");
        std::fs::write(&t, "userid,name\n# first year\ns1@pve,Ann\ns2@pam,Bob\n").unwrap();
        assert_eq!(read_users(&t).unwrap(), vec!["s1@pve", "s2@pam"]);
        std::fs::write(&t, "user;name\n\"s1@pve\";\"Иванов; Иван\"\n\ns2@pve;Петрова\n").unwrap();
        assert_eq!(read_users(&t).unwrap(), vec!["s1@pve", "s2@pve"], "a spreadsheet's CSV with ; and quotes");
        std::fs::write(&t, "s1@pve\ns1\n").unwrap();
        let e = read_users(&t).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:2: 's1' is not a Proxmox userid: write name@realm, e.g. student1@pve", t.display())
        );
        std::fs::write(&t, "s1@pve\ns1@pve\n").unwrap();
        assert!(read_users(&t).unwrap_err().to_string().ends_with(":2: 's1@pve' is listed twice"));
        std::fs::write(&y, "users: {a: 1}\n").unwrap();
        assert!(read_users(&y).unwrap_err().message.contains("expected `users:`"));
    }
}
