//! Every `stand check` run, kept in an embedded SQLite database (rusqlite, SQLite bundled;
//! schema versions by rusqlite_migration): which criteria each student met, when.

use std::path::Path;

use rusqlite::{Connection, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use super::sheet::GradeSheet;

/// The schema, one step per version; a database of an older `stand` is brought up to date
/// when opened.
const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        lab TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TABLE stands (
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        user TEXT NOT NULL,
        node TEXT NOT NULL,
        total REAL NOT NULL,
        max REAL NOT NULL,
        error TEXT,
        PRIMARY KEY (run, user)
    );
    CREATE TABLE results (
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        lab TEXT NOT NULL,
        user TEXT NOT NULL,
        criterion TEXT NOT NULL,
        passed INTEGER NOT NULL,
        points REAL NOT NULL,
        max_points REAL NOT NULL,
        reason TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (run, user, criterion)
    );
    CREATE INDEX results_by_student ON results (lab, user);",
    ),
    // The hint a failed criterion gives the student (shown on `stand serve`'s page).
    M::up("ALTER TABLE results ADD COLUMN hint TEXT;"),
    // The cluster a run graded (`Pve::cluster_identity`): `stand serve` shows only its own's;
    // runs recorded before it have none.
    M::up("ALTER TABLE runs ADD COLUMN cluster TEXT;"),
];

/// A database that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite refused.
    #[error("grade history {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error("grade history {path}: {source}")]
    Migration {
        /// The database file.
        path: String,
        /// Cause.
        source: rusqlite_migration::Error,
    },
    /// Its folder could not be made.
    #[error("grade history {path}: {source}")]
    Folder {
        /// The database file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// One student in one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// The run.
    pub run: i64,
    /// When it ran (RFC 3339, UTC).
    pub at: String,
    /// The cluster it graded (none for runs recorded before clusters were).
    pub cluster: Option<String>,
    /// The student.
    pub user: String,
    /// Points earned.
    pub total: f64,
    /// Points possible.
    pub max: f64,
    /// Criteria met.
    pub passed: Vec<String>,
    /// Criteria not met.
    pub failed: Vec<String>,
    /// Why some of them could not be checked (a guest read that failed), by criterion.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reasons: std::collections::BTreeMap<String, String>,
    /// Why the check stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One criterion of a student's latest run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatestMark {
    /// The criterion.
    pub criterion: String,
    /// Met.
    pub passed: bool,
    /// Points earned.
    pub points: f64,
    /// Points possible.
    pub max_points: f64,
    /// What to do, when it failed and the script gave a hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why it was not graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A student's latest run, criterion by criterion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latest {
    /// The run, as [`Progress`] has it.
    #[serde(flatten)]
    pub run: Progress,
    /// Its criteria, in the order `check` graded them.
    pub marks: Vec<LatestMark>,
}

/// The grade history database.
pub struct History {
    conn: Connection,
    path: String,
}

impl History {
    /// Opens (or creates, readable by its owner only) the database at `path`.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Folder { path: shown.clone(), source })?;
        }
        let fresh = !path.exists();
        let sqlite = |source| HistoryError::Sqlite { path: shown.clone(), source };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        if fresh {
            restrict(path);
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|source| HistoryError::Migration { path: shown.clone(), source })?;
        Ok(History { conn, path: shown })
    }

    fn sqlite(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite { path: self.path.clone(), source }
    }

    /// Records a run of `sheet` made at `at` (RFC 3339) on `cluster`; returns its id.
    pub fn record(&mut self, sheet: &GradeSheet, at: &str, cluster: &str) -> Result<i64, HistoryError> {
        let path = self.path.clone();
        let sqlite = |source| HistoryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let run = (|| {
            tx.execute("INSERT INTO runs (lab, at, cluster) VALUES (?1, ?2, ?3)", params![sheet.lab, at, cluster])?;
            let run = tx.last_insert_rowid();
            for row in &sheet.stands {
                tx.execute(
                    "INSERT INTO stands (run, user, node, total, max, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![run, row.user, row.node, row.total, row.max, row.error],
                )?;
                for (mark, c) in row.marks.iter().zip(&sheet.criteria) {
                    tx.execute(
                        "INSERT INTO results (run, lab, user, criterion, passed, points, max_points, reason, at, hint)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            run,
                            sheet.lab,
                            row.user,
                            mark.title,
                            mark.passed,
                            mark.points,
                            c.points,
                            mark.reason,
                            at,
                            mark.hint
                        ],
                    )?;
                }
            }
            Ok(run)
        })()
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(run)
    }

    /// Each run of `lab` for each student (or those in `only`), oldest first; with
    /// `cluster`, only the runs that graded that cluster.
    pub fn progress(&self, lab: &str, only: &[String], cluster: Option<&str>) -> Result<Vec<Progress>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.run, r.at, s.user, s.total, s.max, s.error, r.cluster FROM stands s JOIN runs r ON r.id = s.run
                 WHERE r.lab = ?1 AND (?2 IS NULL OR r.cluster = ?2) ORDER BY s.user, s.run",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map(params![lab, cluster], |r| {
                Ok(Progress {
                    run: r.get(0)?,
                    at: r.get(1)?,
                    cluster: r.get(6)?,
                    user: r.get(2)?,
                    total: r.get(3)?,
                    max: r.get(4)?,
                    passed: Vec::new(),
                    failed: Vec::new(),
                    reasons: std::collections::BTreeMap::new(),
                    error: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sqlite(e))?;
        let mut marks = self
            .conn
            .prepare("SELECT criterion, passed, reason FROM results WHERE run = ?1 AND user = ?2 ORDER BY rowid")
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for mut p in rows.into_iter().filter(|p| only.is_empty() || only.contains(&p.user)) {
            let list = marks
                .query_map(params![p.run, p.user], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sqlite(e))?;
            for (criterion, passed, reason) in list {
                if let Some(reason) = reason {
                    p.reasons.insert(criterion.clone(), reason);
                }
                if passed { p.passed.push(criterion) } else { p.failed.push(criterion) }
            }
            out.push(p);
        }
        Ok(out)
    }
}

impl History {
    /// Each student's latest run of `lab` on `cluster`, by user.
    pub fn latest(&self, lab: &str, cluster: &str) -> Result<Vec<Latest>, HistoryError> {
        let mut last: std::collections::BTreeMap<String, Progress> = std::collections::BTreeMap::new();
        for p in self.progress(lab, &[], Some(cluster))? {
            last.insert(p.user.clone(), p);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT criterion, passed, points, max_points, hint, reason FROM results
                 WHERE run = ?1 AND user = ?2 ORDER BY rowid",
            )
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for (_, run) in last {
            let marks = stmt
                .query_map(params![run.run, run.user], |r| {
                    Ok(LatestMark {
                        criterion: r.get(0)?,
                        passed: r.get(1)?,
                        points: r.get(2)?,
                        max_points: r.get(3)?,
                        hint: r.get(4)?,
                        reason: r.get(5)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sqlite(e))?;
            out.push(Latest { run, marks });
        }
        Ok(out)
    }
}

/// Grades are personal data: the database is the owner's only.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::run::StandOutcome;
    use crate::script::Grade;

    #[test]
    fn runs_add_up_to_a_students_progress_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/stand.db");
        let g = |t: &str, passed| Grade {
            title: t.into(),
            points: 1.0,
            passed,
            hint: None,
            reason: None,
            unreached: false,
        };
        let sheet = |passed| {
            GradeSheet::new(
                "lab3",
                &[StandOutcome {
                    user: "петрова@pve".into(),
                    node: "pve1".into(),
                    grades: vec![g("hostname", true), g("nginx", passed)],
                    error: None,
                    defined: Vec::new(),
                }],
            )
        };
        History::open(&path).unwrap().record(&sheet(false), "2026-11-23T10:00:00Z", "lab-cluster").unwrap();
        let mut h = History::open(&path).unwrap();
        h.record(&sheet(true), "2026-11-23T11:00:00Z", "lab-cluster").unwrap();
        // The same lab graded on another cluster: a run of its own, never the class page's.
        h.record(&sheet(false), "2026-11-23T12:00:00Z", "other-cluster").unwrap();
        let p = h.progress("lab3", &[], Some("lab-cluster")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].total, p[0].failed.clone()), (1.0, vec!["nginx".to_string()]));
        assert_eq!((p[1].total, p[1].passed.len(), p[1].at.as_str()), (2.0, 2, "2026-11-23T11:00:00Z"));
        assert_eq!(h.progress("lab3", &[], None).unwrap().len(), 3, "every cluster's runs");
        assert!(h.progress("lab3", &["other@pve".into()], None).unwrap().is_empty());
        assert!(h.progress("lab4", &[], None).unwrap().is_empty());
        let latest = h.latest("lab3", "lab-cluster").unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!((latest[0].run.total, latest[0].marks.len()), (2.0, 2));
        assert!(latest[0].marks.iter().all(|m| m.passed && m.max_points == 1.0));
        let other = h.latest("lab3", "other-cluster").unwrap();
        assert_eq!((other[0].run.total, other[0].run.cluster.as_deref()), (1.0, Some("other-cluster")));
        assert!(h.latest("lab3", "a-third-cluster").unwrap().is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
