//! `create_user`: the student, their pool, ACLs and group, checked against what exists.

use std::collections::BTreeSet;

use super::{PlanError, Planner, invalid};
use crate::plan::marker::Marker;
use crate::plan::model::UserPlan;
use crate::plan::names::{dns_safe, valid_userid};
use crate::plan::owner::Owner;

impl Planner {
    /// `create_user(userid)`: the user, their pool `<lab>-<name>` and the ACL on it.
    pub fn add_user(&mut self, userid: &str) -> Result<UserPlan, PlanError> {
        self.locked_settings = true;
        if !valid_userid(userid) {
            return Err(invalid(format!(
                "'{userid}' is not a Proxmox userid: write it as name@realm, e.g. student1@pve"
            )));
        }
        if self.user_at.contains_key(userid) {
            return Err(invalid(format!("user '{userid}' is listed twice")));
        }
        let (name, realm) = userid.split_once('@').unwrap_or((userid, "pve"));
        if !self.snap.realms.is_empty() && !self.snap.realms.iter().any(|r| r == realm) {
            return Err(invalid(format!(
                "'{userid}': the realm '{realm}' does not exist (realms: {}); add it in Datacenter → Permissions → Realms, or fix the userid",
                self.snap.realms.join(", ")
            )));
        }
        // Pool ids and VM names are ASCII: names are transliterated (`дмитрий` → `dmitrii`).
        if dns_safe(name).is_empty() {
            return Err(invalid(format!(
                "'{userid}' has no letters or digits to name its pool and VMs: rename the student"
            )));
        }
        let base = format!("{}-{}", self.lab(), dns_safe(name));
        let pool = if realm == "pve" { base } else { format!("{base}-{}", dns_safe(realm)) };
        let key = dns_safe(name);
        let same = self.pool_at.get(&pool).or_else(|| self.key_at.get(&key));
        if let Some(other) = same.map(|&i| &self.users[i]) {
            return Err(invalid(format!(
                "students '{}' and '{userid}' would share the name '{}' (pool '{pool}', VMs '<name>-{}'): rename one of them",
                other.userid,
                dns_safe(name),
                dns_safe(name)
            )));
        }
        let lab = self.lab().to_string();
        let existing = self.snap.user(userid);
        let owner = existing.and_then(|u| u.owner.as_ref());
        let exists = existing.is_some();
        let ours = !exists || owner.is_some();
        let mut labs: BTreeSet<String> = owner.map(Owner::labs).unwrap_or_default();
        let comment_update = ours && exists && !labs.contains(&lab);
        labs.insert(lab.clone());
        // The account lasts as long as the last of its labs (never, if one has no date).
        let dates: Vec<Option<String>> = labs
            .iter()
            .map(|l| if *l == lab { self.settings.expires.clone() } else { self.snap.lab_expires(l) })
            .collect();
        let expire = crate::plan::expiry::account_expire_of(dates.iter().map(Option::as_deref));
        let comment = if ours {
            Marker::new(&[("labs", &labs.into_iter().collect::<Vec<_>>().join(","))]).to_string()
        } else {
            existing.and_then(|u| u.comment.clone()).unwrap_or_default()
        };
        if let Some(p) = self.snap.pool(&pool) {
            let mine = p.owner.as_ref().is_some_and(|o| o.is_stand_of(&lab, userid));
            if !mine {
                return Err(invalid(format!(
                    "pool '{pool}' exists and is not this lab's stand of {userid}: remove or rename it, or rename the lab"
                )));
            }
        }
        let groupid = self.group_id();
        if let Some(g) = self.snap.groups.iter().find(|g| g.groupid == groupid)
            && !g.owner.as_ref().is_some_and(|o| o.has_lab(self.lab()))
        {
            return Err(invalid(format!(
                "group '{groupid}' exists and is not this lab's: rename the lab, or remove or rename the group"
            )));
        }
        let acl_exists = self
            .snap
            .acl
            .iter()
            .any(|a| a.path == format!("/pool/{pool}") && a.ugid == userid && a.roleid == self.settings.role);
        let new_password = !exists || (self.reset_passwords && ours);
        let full_name = self.full_names.get(userid).cloned();
        let name_update =
            ours && exists && full_name.is_some() && existing.and_then(|u| u.name.as_ref()) != full_name.as_ref();
        let user = UserPlan {
            userid: userid.to_string(),
            name: name.to_string(),
            pool: pool.clone(),
            node: None,
            new_password,
            password: None,
            exists,
            ours,
            comment,
            comment_update,
            full_name,
            name_update,
            pool_exists: self.snap.pool(&pool).is_some(),
            acl_exists,
            sdn_acls: Vec::new(),
            in_group: existing.is_some_and(|u| u.groups.contains(&self.group_id())),
            expire: if ours { expire } else { existing.map(|u| u.expire).unwrap_or(0) },
            expire_update: ours && existing.is_some_and(|u| u.expire != expire),
            teacher_acl: self.settings.teacher.clone().filter(|t| {
                !self
                    .snap
                    .acl
                    .iter()
                    .any(|a| a.path == format!("/pool/{pool}") && a.ugid == *t && a.roleid == self.settings.role)
            }),
        };
        let at = self.users.len();
        self.user_at.insert(user.userid.clone(), at);
        self.pool_at.insert(user.pool.clone(), at);
        self.key_at.insert(key, at);
        self.users.push(user.clone());
        Ok(user)
    }

    /// Where this user's stand already is: a VM with our marker, a VM in the user's pool
    /// (known even when its node is offline and its config unreadable), or a private
    /// bridge made for the user (a run that stopped before cloning).
    pub(super) fn existing_stand_node(&self, userid: &str) -> Option<String> {
        let lab = self.lab();
        let pool = self.users.iter().find(|u| u.userid == userid).map(|u| u.pool.as_str());
        let by_vm = self.snap.vms.iter().find(|v| {
            v.owner().is_some_and(|o| o.is_stand_of(lab, userid))
                || (!v.template && pool.is_some() && v.pool.as_deref() == pool)
        });
        if let Some(v) = by_vm {
            return Some(v.node.clone());
        }
        self.snap.bridges.iter().find_map(|(node, bridges)| {
            bridges
                .iter()
                .any(|b| matches!(&b.owner, Some(o @ Owner::Private { .. }) if o.is_stand_of(lab, userid)))
                .then(|| node.clone())
        })
    }
}
