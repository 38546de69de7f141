//! Who is asking and what they may see and do. Nothing here re-implements PVE's
//! permissions: what a person sees is what PVE's `GET /cluster/resources` shows them with
//! their own ticket, being an administrator is PVE's answer for `/`, and every action runs
//! with their ticket, so PVE checks it once more.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use tokio::time::Instant;

use super::App;
use super::session::{SEEN_FOR, SESSION_COOKIE, Seen, Session, request_cookie};
use super::view::{ClassView, LabInfo, StandView};
use crate::pve::{PveError, PveExt};

/// A request's logged-in person.
pub struct Caller {
    /// Their session's cookie token.
    pub token: String,
    /// Their session.
    pub session: Session,
}

impl App {
    /// The session a request's cookie names, unless it ended.
    pub(super) fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let token = request_cookie(headers, SESSION_COOKIE)?;
        let session = self.sessions.get(&token)?;
        Some(Caller { token, session })
    }

    /// What PVE shows `caller`, asked with their ticket at most every few minutes. A ticket
    /// PVE no longer accepts ends the session (`None`).
    pub(super) async fn seen(&self, caller: &Caller) -> Result<Option<Seen>, PveError> {
        if caller.session.seen.at.is_some_and(|at| at.elapsed() < SEEN_FOR) {
            return Ok(Some(caller.session.seen.clone()));
        }
        let pve = &*caller.session.pve;
        let asked = async {
            let vmids = pve.resources(Some("vm")).await?.iter().filter_map(|r| r.vmid).collect();
            let root = pve.permissions(Some("/")).await?;
            let admin = root.get("/").and_then(|p| p.get("Permissions.Modify")).is_some_and(|v| v.as_i64() == Some(1));
            Ok::<_, PveError>(Seen { at: Some(Instant::now()), vmids, admin })
        };
        match asked.await {
            Ok(seen) => {
                self.sessions.remember(&caller.token, seen.clone());
                Ok(Some(seen))
            }
            Err(e) if e.status() == Some(401) => {
                self.sessions.end(&caller.token);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// What one person may see and do in one [`ClassView`].
pub struct Access<'a> {
    /// `user@realm`.
    pub user: &'a str,
    seen: &'a Seen,
    labs: &'a BTreeMap<String, LabInfo>,
}

impl<'a> Access<'a> {
    /// `user`'s access, from what PVE showed them.
    pub fn new(user: &'a str, seen: &'a Seen, class: &'a ClassView) -> Access<'a> {
        Access { user, seen, labs: &class.labs }
    }

    /// Whether PVE shows them any VM of `stand`.
    pub fn sees(&self, stand: &StandView) -> bool {
        stand.vms.iter().any(|v| self.seen.vmids.contains(&v.vmid))
    }

    /// Whether they teach `lab`: its `teacher`, or a PVE administrator.
    pub fn instructs(&self, lab: &str) -> bool {
        self.seen.admin || self.labs.get(lab).and_then(|l| l.teacher.as_deref()) == Some(self.user)
    }

    /// Whether they may reset `stand`: its instructor, or its student when the lab allows.
    pub fn may_reset(&self, stand: &StandView) -> bool {
        let student_may = stand.user == self.user && self.labs.get(&stand.lab).is_some_and(|l| l.student_reset);
        self.sees(stand) && (self.instructs(&stand.lab) || student_may)
    }

    /// Whether they may power `stand` on and off: its instructor.
    pub fn may_power(&self, stand: &StandView) -> bool {
        self.sees(stand) && self.instructs(&stand.lab)
    }

    /// The stands they see, each with only the VMs PVE shows them.
    pub fn visible(&self, class: &ClassView) -> Vec<StandView> {
        class
            .stands
            .iter()
            .filter(|s| self.sees(s))
            .map(|s| {
                let mut s = s.clone();
                s.vms.retain(|v| self.seen.vmids.contains(&v.vmid));
                s
            })
            .collect()
    }

    /// The labs they teach, among those with a stand they see.
    pub fn taught(&self, class: &ClassView) -> Vec<&'a LabInfo> {
        self.labs
            .values()
            .filter(|l| self.instructs(&l.lab) && class.stands.iter().any(|s| s.lab == l.lab && self.sees(s)))
            .collect()
    }
}
