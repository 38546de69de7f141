//! The latest grades of each lab, read from `stand check`'s SQLite database at most every
//! few seconds (and off the async runtime), whatever the number of visitors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::grade::{History, Latest};

/// How long a read of the database is reused.
const FOR: Duration = Duration::from_secs(10);

/// A lab's latest grades and when they were read.
type Read = (Instant, Arc<Vec<Latest>>);

/// Cached reads of the grade history.
pub struct Grades {
    db: Option<PathBuf>,
    cluster: String,
    cache: Mutex<BTreeMap<String, Read>>,
}

impl Grades {
    /// Grades of `cluster` (`Pve::cluster_identity`) from the database at `db` (none without
    /// one): runs that graded another cluster are never shown.
    pub fn new(db: Option<PathBuf>, cluster: String) -> Grades {
        Grades { db, cluster, cache: Mutex::new(BTreeMap::new()) }
    }

    /// Each student's latest run of `lab` (empty when nothing was graded, or the database
    /// cannot be read: the page says so in the log, not to students).
    pub async fn latest(&self, lab: &str) -> Arc<Vec<Latest>> {
        if let Some((at, v)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(lab)
            && at.elapsed() < FOR
        {
            return v.clone();
        }
        let Some(db) = self.db.clone().filter(|p| p.exists()) else { return Arc::default() };
        let (lab_name, cluster) = (lab.to_string(), self.cluster.clone());
        let read =
            tokio::task::spawn_blocking(move || History::open(&db).and_then(|h| h.latest(&lab_name, &cluster))).await;
        let latest = match read {
            Ok(Ok(v)) => Arc::new(v),
            Ok(Err(e)) => {
                tracing::warn!("{e}");
                Arc::default()
            }
            Err(e) => {
                tracing::warn!("reading the grades failed: {e}");
                Arc::default()
            }
        };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(lab.to_string(), (Instant::now(), latest.clone()));
        latest
    }
}
