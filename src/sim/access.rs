//! Users, roles and privileges as pve-access-control computes them: built-in roles from
//! the privilege groups, ACL propagation (user entries over group entries, deeper paths over
//! shallower ones), pools as extra parents of their VMs, and token privilege separation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::state::SimState;
use crate::pve::ApiFailure;

/// Who a request is made by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `user@realm`.
    pub userid: String,
    /// Token id when authenticated by an API token.
    pub token: Option<String>,
}

impl Identity {
    /// A user (ticket or in-process).
    pub fn user(userid: &str) -> Self {
        Self { userid: userid.into(), token: None }
    }

    /// `user@realm` or `user@realm!token`, as in UPIDs and ACLs.
    pub fn auth_id(&self) -> String {
        match &self.token {
            Some(t) => format!("{}!{t}", self.userid),
            None => self.userid.clone(),
        }
    }

    /// `root@pam` itself (tokens of root are subject to privilege separation).
    pub fn is_root(&self) -> bool {
        self.userid == "root@pam" && self.token.is_none()
    }
}

/// A privilege category: (name, root, admin, user, audit) privileges.
type PrivGroup =
    (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str], &'static [&'static str]);

/// The privilege groups of pve-access-control.
const PRIV_GROUPS: &[PrivGroup] = &[
    (
        "VM",
        &[],
        &[
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.Migrate",
            "VM.Monitor",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
        ],
        &["VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.PowerMgmt"],
        &["VM.Audit"],
    ),
    (
        "Sys",
        &["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
        &["Sys.Console", "Sys.Syslog"],
        &[],
        &["Sys.Audit"],
    ),
    (
        "Datastore",
        &[],
        &["Datastore.Allocate", "Datastore.AllocateTemplate"],
        &["Datastore.AllocateSpace"],
        &["Datastore.Audit"],
    ),
    ("SDN", &[], &["SDN.Allocate", "SDN.Audit"], &["SDN.Use"], &["SDN.Audit"]),
    ("User", &["Realm.Allocate"], &["User.Modify", "Group.Allocate", "Realm.AllocateUser"], &[], &[]),
    ("Pool", &[], &["Pool.Allocate"], &["Pool.Audit"], &["Pool.Audit"]),
    ("Mapping", &[], &["Mapping.Modify"], &["Mapping.Use"], &["Mapping.Audit"]),
];

/// What PVE 9 changed in the VM group (pve-access-control 0706945 "privileges: drop
/// VM.Monitor", 922f710 "add VM.GuestAgent privileges", 5f7544f "add VM.Replicate
/// privilege"): (level, removed, added), level 0 admin, 1 user, 2 audit.
const PVE9_VM_CHANGES: &[(usize, &[&str], &[&str])] = &[
    (0, &["VM.Monitor"], &["VM.GuestAgent.Unrestricted", "VM.Replicate"]),
    (1, &[], &["VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite"]),
    (2, &[], &["VM.GuestAgent.Audit"]),
];

/// The built-in roles of PVE 8 or 9 with their privileges.
fn build_roles(pve9: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut all: BTreeSet<String> = BTreeSet::from(["Permissions.Modify".to_string()]);
    for (cat, root, admin, user, audit) in PRIV_GROUPS {
        let level = |i: usize, base: &[&str]| -> Vec<String> {
            let mut out: Vec<String> = base.iter().map(|p| p.to_string()).collect();
            if pve9 && *cat == "VM" {
                for (_, removed, added) in PVE9_VM_CHANGES.iter().filter(|(l, _, _)| *l == i) {
                    out.retain(|p| !removed.contains(&p.as_str()));
                    out.extend(added.iter().map(|p| p.to_string()));
                }
            }
            out
        };
        let (admin, user, audit) = (level(0, admin), level(1, user), level(2, audit));
        all.extend(root.iter().map(|p| p.to_string()));
        all.extend(admin.iter().chain(&user).chain(&audit).cloned());
        for p in admin.iter().chain(&user).chain(&audit) {
            roles.entry(format!("PVE{cat}Admin")).or_default().insert(p.clone());
            roles.entry("PVEAdmin".into()).or_default().insert(p.clone());
        }
        if !user.is_empty() {
            for p in user.iter().chain(&audit) {
                roles.entry(format!("PVE{cat}User")).or_default().insert(p.clone());
            }
        }
        for p in &audit {
            roles.entry("PVEAuditor".into()).or_default().insert(p.clone());
        }
    }
    if let Some(r) = roles.get_mut("PVEAdmin") {
        r.remove("Mapping.Modify");
    }
    roles.insert("PVETemplateUser".into(), ["VM.Clone", "VM.Audit"].iter().map(|s| s.to_string()).collect());
    roles.insert("NoAccess".into(), BTreeSet::new());
    roles.insert("Administrator".into(), all);
    roles
}

/// The built-in roles of PVE 8 with their privileges.
pub static BUILTIN_ROLES: LazyLock<BTreeMap<String, BTreeSet<String>>> = LazyLock::new(|| build_roles(false));

/// The built-in roles of PVE 9.
static BUILTIN_ROLES_9: LazyLock<BTreeMap<String, BTreeSet<String>>> = LazyLock::new(|| build_roles(true));

/// The built-in roles of the PVE `version` (`8.4.1`, `9.0.3`).
pub fn builtin_roles(version: &str) -> &'static BTreeMap<String, BTreeSet<String>> {
    if major_version(version) >= 9 { &BUILTIN_ROLES_9 } else { &BUILTIN_ROLES }
}

/// The major number of a PVE version.
pub fn major_version(version: &str) -> u32 {
    version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(8)
}

/// Every valid privilege of the PVE `version`.
pub fn all_privileges(version: &str) -> &'static BTreeSet<String> {
    &builtin_roles(version)["Administrator"]
}

/// Normalizes an ACL path like PVE (`//a/b/` → `/a/b`); `None` if it has bad characters.
pub fn normalize_path(path: &str) -> Option<String> {
    let mut p = path.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/");
    p.insert(0, '/');
    p.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)).then_some(p)
}

impl SimState {
    /// Privileges of a role (built-in or custom).
    pub fn role_privs(&self, role: &str) -> Option<&BTreeSet<String>> {
        builtin_roles(&self.version).get(role).or_else(|| self.roles.get(role))
    }

    /// Roles of an auth id on a path, like `PVE::AccessControl::roles` (pools not considered).
    fn roles_on(&self, auth_id: &str, path: &str) -> BTreeSet<String> {
        let userid = auth_id.split('!').next().unwrap_or(auth_id);
        let groups = self.users.get(userid).map(|u| u.groups.clone()).unwrap_or_default();
        let is_token = auth_id.contains('!');
        let mut roles = BTreeSet::new();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for depth in 0..=segs.len() {
            let here = format!("/{}", segs[..depth].join("/"));
            let last = depth == segs.len();
            let pick = |kind: &str, who: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
                self.acl
                    .iter()
                    .filter(|a| a.path == here && a.kind == kind && who(&a.ugid) && (last || a.propagate))
                    .map(|a| a.role.clone())
                    .collect()
            };
            let tokens = pick("token", &|u| u == auth_id);
            if !tokens.is_empty() {
                roles = tokens;
                continue;
            }
            if is_token {
                continue;
            }
            let users = pick("user", &|u| u == auth_id);
            if !users.is_empty() {
                roles = users;
                continue;
            }
            let grp = pick("group", &|g| groups.contains(g));
            if !grp.is_empty() {
                roles = grp;
            }
        }
        if roles.contains("NoAccess") {
            return BTreeSet::from(["NoAccess".to_string()]);
        }
        roles
    }

    fn privs_of(&self, auth_id: &str, path: &str) -> BTreeSet<String> {
        let mut roles = self.roles_on(auth_id, path);
        if !roles.contains("NoAccess")
            && let Some(vmid) = path.strip_prefix("/vms/").and_then(|v| v.parse::<u32>().ok())
            && let Some(pool) = self.pool_of(vmid)
        {
            roles.extend(self.roles_on(auth_id, &format!("/pool/{pool}")));
        }
        roles.iter().filter_map(|r| self.role_privs(r)).flatten().cloned().collect()
    }

    /// Effective privileges of `who` on `path`, like `PVE::RPCEnvironment::permissions`.
    pub fn privileges(&self, who: &Identity, path: &str) -> BTreeSet<String> {
        if who.userid == "root@pam" && who.token.is_none() {
            return all_privileges(&self.version).clone();
        }
        let Some(user) = self.users.get(&who.userid) else { return BTreeSet::new() };
        if !user.enable {
            return BTreeSet::new();
        }
        let user_privs = if who.userid == "root@pam" {
            all_privileges(&self.version).clone()
        } else {
            self.privs_of(&who.userid, path)
        };
        match &who.token {
            None => user_privs,
            Some(t) => match user.tokens.get(t) {
                None => BTreeSet::new(),
                Some(tok) if !tok.privsep => user_privs,
                Some(_) => {
                    let token_privs = self.privs_of(&who.auth_id(), path);
                    user_privs.intersection(&token_privs).cloned().collect()
                }
            },
        }
    }

    /// Requires all of `privs` on `path`; else PVE's 403.
    pub fn check(&self, who: &Identity, path: &str, privs: &[&str]) -> Result<(), ApiFailure> {
        let have = self.privileges(who, path);
        match privs.iter().find(|p| !have.contains(**p)) {
            None => Ok(()),
            Some(p) => Err(ApiFailure::forbidden(format!("{path}, {p}"))),
        }
    }

    /// Requires any of `privs` on `path`; else PVE's 403.
    pub fn check_any(&self, who: &Identity, path: &str, privs: &[&str]) -> Result<(), ApiFailure> {
        let have = self.privileges(who, path);
        if privs.iter().any(|p| have.contains(*p)) {
            Ok(())
        } else {
            Err(ApiFailure::forbidden(format!("{path}, {}", privs.join("|"))))
        }
    }

    /// Whether `who` has `privilege` on `path`.
    pub fn has(&self, who: &Identity, path: &str, privilege: &str) -> bool {
        self.privileges(who, path).contains(privilege)
    }

    /// Whether `userid` may log in at `now_unix`: enabled and not past its `expire`
    /// (pve-access-control `check_user_enabled`, which `authenticate_user` calls before it
    /// checks the password, and ticket verification calls too).
    pub fn account_usable(&self, userid: &str, now_unix: u64) -> bool {
        self.users.get(userid).is_some_and(|u| u.enable && (u.expire == 0 || u.expire >= now_unix))
    }

    /// Checks a password login at `now_unix`.
    pub fn verify_password(&self, userid: &str, password: &str, now_unix: u64) -> bool {
        self.account_usable(userid, now_unix)
            && self
                .users
                .get(userid)
                .and_then(|u| u.password_hash.as_ref())
                .is_some_and(|h| *h == hash_password(userid, password))
    }

    /// Checks `USER@REALM!TOKENID=SECRET`.
    pub fn verify_token(&self, value: &str, now_unix: u64) -> Option<Identity> {
        let (tokenid, secret) = value.rsplit_once('=')?;
        let (userid, token) = tokenid.split_once('!')?;
        let user = self.users.get(userid)?;
        let tok = user.tokens.get(token)?;
        let ok = user.enable && (tok.expire == 0 || tok.expire > now_unix) && tok.secret_hash == hash_secret(secret);
        ok.then(|| Identity { userid: userid.into(), token: Some(token.into()) })
    }

    fn sign(&self, data: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.auth_key.as_bytes()).expect("HMAC takes any key length");
        mac.update(data.as_bytes());
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A ticket `PVE:<userid>:<HEXTIME>::<signature>`, as `PVE::Ticket` shapes it.
    pub fn make_ticket(&self, userid: &str, now_unix: u64) -> String {
        let data = format!("PVE:{userid}:{now_unix:08X}");
        format!("{data}::{}", self.sign(&data))
    }

    /// The user of a valid ticket younger than 2 h.
    pub fn verify_ticket(&self, ticket: &str, now_unix: u64) -> Option<String> {
        let (data, sig) = ticket.split_once("::")?;
        let mut parts = data.split(':');
        let (prefix, userid, time) = (parts.next()?, parts.next()?, parts.next()?);
        let t = u64::from_str_radix(time, 16).ok()?;
        let fresh = now_unix + 300 >= t && now_unix < t + 7200;
        (prefix == "PVE" && fresh && self.sign(data) == sig && self.users.get(userid).is_some_and(|u| u.enable))
            .then(|| userid.to_string())
    }

    /// A CSRF prevention token `<HEXTIME>:<signature>` for `userid`.
    pub fn make_csrf(&self, userid: &str, now_unix: u64) -> String {
        let time = format!("{now_unix:08X}");
        format!("{time}:{}", self.sign(&format!("{time}:{userid}")))
    }

    /// Whether a CSRF token is valid for `userid`.
    pub fn verify_csrf(&self, userid: &str, token: &str, now_unix: u64) -> bool {
        let Some((time, sig)) = token.split_once(':') else { return false };
        let Ok(t) = u64::from_str_radix(time, 16) else { return false };
        now_unix + 300 >= t && now_unix < t + 7200 && self.sign(&format!("{time}:{userid}")) == sig
    }
}

/// Salted hash of a user's password (the simulator never keeps passwords in clear).
pub fn hash_password(userid: &str, password: &str) -> String {
    hex::encode(Sha256::digest(format!("stand-sim:{userid}:{password}").as_bytes()))
}

/// Hash of a token secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_have_pves_privilege_lists() {
        let vmadmin = &BUILTIN_ROLES["PVEVMAdmin"];
        assert!(vmadmin.contains("VM.Clone") && vmadmin.contains("VM.PowerMgmt") && vmadmin.contains("VM.Audit"));
        assert!(!vmadmin.contains("Sys.Modify"));
        assert!(!BUILTIN_ROLES["PVEAdmin"].contains("Sys.Modify"), "Sys.Modify is a root-group privilege");
        assert!(!BUILTIN_ROLES["PVEAdmin"].contains("Permissions.Modify"));
        assert!(BUILTIN_ROLES["Administrator"].contains("Permissions.Modify"));
        assert_eq!(BUILTIN_ROLES["PVETemplateUser"].len(), 2);
        assert_eq!(BUILTIN_ROLES["PVEPoolUser"], BTreeSet::from(["Pool.Audit".to_string()]));
        assert!(BUILTIN_ROLES["PVESDNUser"].contains("SDN.Use"));
        assert!(!BUILTIN_ROLES.contains_key("PVEUserUser"), "no role for a group without user privileges");
    }

    #[test]
    fn pve9_splits_vm_monitor_into_guest_agent_privileges() {
        let (v8, v9) = (builtin_roles("8.4.1"), builtin_roles("9.0.3"));
        assert!(v8["PVEVMAdmin"].contains("VM.Monitor") && !v8["PVEVMAdmin"].contains("VM.GuestAgent.Audit"));
        assert!(!v9["PVEVMAdmin"].contains("VM.Monitor"));
        assert!(v9["PVEVMAdmin"].contains("VM.GuestAgent.Unrestricted"));
        assert!(
            v9["PVEVMUser"].contains("VM.GuestAgent.FileRead")
                && !v9["PVEVMUser"].contains("VM.GuestAgent.Unrestricted")
        );
        assert!(v9["PVEAuditor"].contains("VM.GuestAgent.Audit"));
        assert!(all_privileges("9.1").contains("VM.Replicate") && !all_privileges("8.4.1").contains("VM.Replicate"));
    }

    #[test]
    fn paths_normalize_like_pve() {
        assert_eq!(normalize_path("//pool/a/").as_deref(), Some("/pool/a"));
        assert_eq!(normalize_path("").as_deref(), Some("/"));
        assert_eq!(normalize_path("/vms/1 00"), None);
    }
}
