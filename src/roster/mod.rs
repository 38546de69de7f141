//! Rosters: the students as schools export them, read into people with a login, a name and
//! a group. A CSV or text file in any of the field's delimiters and encodings, or the first
//! sheet of a spreadsheet; headers in Russian or English name the columns: a login column
//! gives the logins, else they are made from the names (`Иванов Пётр Сергеевич` →
//! `ivanov-ps@pve`).

mod columns;
mod decode;
mod names;
mod sheet;

use std::path::Path;

pub use columns::{Column, Columns, classify};
pub use names::{FullName, Logins};

/// One student of a roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// `name@realm`.
    pub userid: String,
    /// Their name, when the roster gives one.
    pub name: Option<FullName>,
    /// Their group or class, when the roster has a group column.
    pub group: Option<String>,
    /// The row they are on.
    pub row: usize,
}

/// The students of a roster file, and what of it was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// The file it was read from.
    pub file: String,
    /// In the file's order.
    pub people: Vec<Person>,
    /// Rows skipped, each with why (`row 31 (a total: Итого 25)`), for the instructor to see.
    pub skipped: Vec<String>,
    /// What the file was read as (`a CSV/text file in windows-1251`).
    pub read_as: String,
}

/// A roster that cannot be used: the file, the row and column when known, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}{}: {message}", row.map(|r| format!(", row {r}")).unwrap_or_default(), column.as_ref().map(|c| format!(", column «{c}»")).unwrap_or_default())]
pub struct RosterError {
    /// The file.
    pub file: String,
    /// The row (1-based), when the error is in one.
    pub row: Option<usize>,
    /// The column's header, when the error is in one.
    pub column: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Words that start a total row at the end of a school's list.
const TOTALS: [&str; 5] = ["итого", "всего", "total", "итог", "sum"];

/// Reads the roster at `path`; logins made from names get `@realm`. `Ok(None)` when the file
/// has no header naming logins or names within its first rows (a plain list of userids, for
/// the caller to read as one).
pub fn read(path: &Path, realm: &str) -> Result<Option<Roster>, RosterError> {
    let file = path.display().to_string();
    let err = |row: Option<usize>, column: Option<&str>, message: String| RosterError {
        file: file.clone(),
        row,
        column: column.map(str::to_string),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(None, None, format!("cannot read: {e}")))?;
    let (rows, read_as) = sheet::rows(path, &bytes).map_err(|m| err(None, None, m))?;
    // The header: the first row naming logins or names (rows above it are a title).
    let Some((at, columns)) = rows.iter().take(10).enumerate().find_map(|(i, r)| Columns::of(&r.cells).map(|c| (i, c)))
    else {
        return Ok(None);
    };
    let header = &rows[at].cells;
    let name_of = |i: Option<usize>| i.and_then(|i| header.get(i)).map(String::as_str);
    let mut roster = Roster { file: file.clone(), read_as, ..Roster::default() };
    if at > 0 {
        roster.skipped.push(format!("rows 1–{} (a title above the header)", rows[at].number - 1));
    }
    let mut logins = Logins::default();
    let mut row_of: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let body = &rows[at + 1..];
    for (i, row) in body.iter().enumerate() {
        let get = |c: Option<usize>| c.and_then(|c| row.cells.get(c)).map(String::as_str).unwrap_or_default();
        if row.cells.iter().all(String::is_empty) {
            roster.skipped.push(format!("row {} (empty)", row.number));
            continue;
        }
        let first = row.cells.iter().find(|c| !c.is_empty()).map(|c| c.to_lowercase()).unwrap_or_default();
        let total = TOTALS.iter().any(|t| first.starts_with(t))
            || row.cells.iter().filter(|c| !c.is_empty()).all(|c| c.parse::<f64>().is_ok());
        if total && body[i + 1..].iter().all(|r| r.cells.iter().all(String::is_empty)) {
            roster.skipped.push(format!("row {} (a total: {})", row.number, row.cells.join(" ").trim()));
            continue;
        }
        let name = match (columns.full_name, columns.surname) {
            (Some(c), _) if !get(Some(c)).is_empty() => {
                let russian_header =
                    name_of(Some(c)).is_some_and(|h| h.chars().any(|ch| ch.is_alphabetic() && !ch.is_ascii()));
                Some(FullName::parse(get(Some(c)), russian_header))
            }
            (_, Some(c)) if !get(Some(c)).is_empty() => Some(FullName {
                surname: get(Some(c)).to_string(),
                first: get(columns.first_name).to_string(),
                patronymic: get(columns.patronymic).to_string(),
            }),
            _ => None,
        };
        let userid = match columns.login {
            Some(c) if !get(Some(c)).is_empty() => {
                let login = get(Some(c));
                if login.contains('@') { login.to_string() } else { format!("{login}@{realm}") }
            }
            Some(c) if name.is_none() => {
                return Err(err(
                    Some(row.number),
                    name_of(Some(c)),
                    "no login and no name: fill it in, or delete the row".into(),
                ));
            }
            _ => {
                let column = name_of(columns.full_name.or(columns.surname));
                let Some(name) = &name else {
                    return Err(err(Some(row.number), column, "no name: fill it in, or delete the row".into()));
                };
                logins.make(name, realm).ok_or_else(|| {
                    err(Some(row.number), column, format!("'{}' has no letters to make a login of", name.display()))
                })?
            }
        };
        if !crate::plan::valid_userid(&userid) {
            return Err(err(
                Some(row.number),
                name_of(columns.login),
                format!("'{userid}' is not a Proxmox userid: write name@realm, e.g. student1@pve"),
            ));
        }
        if let Some(other) = row_of.insert(userid.clone(), row.number) {
            return Err(err(
                Some(row.number),
                name_of(columns.login),
                format!("'{userid}' is on row {other} too: each student once"),
            ));
        }
        let group = Some(get(columns.group).to_string()).filter(|g| !g.is_empty());
        roster.people.push(Person { userid, name, group, row: row.number });
    }
    if roster.people.is_empty() {
        return Err(err(None, None, "has a header but no students under it".into()));
    }
    Ok(Some(roster))
}

impl Roster {
    /// The students of group `group` (case and spaces aside); an error naming the groups the
    /// roster has when none is.
    pub fn only_group(mut self, group: &str) -> Result<Roster, String> {
        let want = |g: &str| g.trim().to_lowercase() == group.trim().to_lowercase();
        let groups: std::collections::BTreeSet<String> = self.people.iter().filter_map(|p| p.group.clone()).collect();
        if groups.is_empty() {
            return Err(format!("group '{group}': the roster has no group column (Группа, group)"));
        }
        self.people.retain(|p| p.group.as_deref().is_some_and(want));
        if self.people.is_empty() {
            let list: Vec<&str> = groups.iter().map(String::as_str).collect();
            return Err(format!("no student of group '{group}'; its groups: {}", list.join(", ")));
        }
        Ok(self)
    }
}
