//! `/access/*`: tickets, users, tokens, passwords, ACLs, roles, groups, permissions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::pve::ApiFailure;
use crate::sim::access::{builtin_roles, hash_password, hash_secret, normalize_path};
use crate::sim::context::Ctx;
use crate::sim::core::Reply;
use crate::sim::state::{Acl, Group, Token, User};

const REALMS: &[&str] = &["pam", "pve"];

pub(super) fn ticket(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let mut username = ctx.param("username").unwrap_or_default().to_string();
    if !username.contains('@')
        && let Some(r) = ctx.param("realm")
    {
        username = format!("{username}@{r}");
    }
    let password = ctx.param("password").unwrap_or_default();
    let now = ctx.st.unix(ctx.now);
    if let Some(user) = ctx.st.verify_ticket(password, now).filter(|u| *u == username && ctx.st.account_usable(u, now))
    {
        // Renewal: a valid ticket is accepted as the password.
        return Ok(ticket_reply(ctx, &user, now));
    }
    if !ctx.st.verify_password(&username, password, now) {
        return Err(ApiFailure::new(401, "authentication failure"));
    }
    Ok(ticket_reply(ctx, &username, now))
}

fn ticket_reply(ctx: &Ctx<'_>, user: &str, now: u64) -> Reply {
    json!({
        "username": user,
        "ticket": ctx.st.make_ticket(user, now),
        "CSRFPreventionToken": ctx.st.make_csrf(user, now),
        "clustername": ctx.st.cluster,
        "cap": { "vms": {}, "storage": {}, "access": {}, "nodes": {}, "dc": {}, "sdn": {}, "mapping": {} },
    })
    .into()
}

pub(super) fn permissions(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let mut who = ctx.who.clone();
    if let Some(u) = ctx.param("userid") {
        if u != who.auth_id() {
            ctx.st.check(&ctx.who, "/access", &["Sys.Audit"])?;
        }
        who = match u.split_once('!') {
            Some((user, tok)) => crate::sim::access::Identity { userid: user.into(), token: Some(tok.into()) },
            None => crate::sim::access::Identity::user(u),
        };
    }
    let mut paths: Vec<String> = match ctx.param("path") {
        Some(p) => vec![normalize_path(p).unwrap_or_else(|| p.to_string())],
        None => {
            let mut v: Vec<String> = ["/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            v.extend(ctx.st.acl.iter().map(|a| a.path.clone()));
            v
        }
    };
    paths.sort();
    paths.dedup();
    let mut out = serde_json::Map::new();
    for p in paths {
        let privs = ctx.st.privileges(&who, &p);
        if privs.is_empty() && ctx.param("path").is_none() {
            continue;
        }
        out.insert(p, Value::Object(privs.into_iter().map(|x| (x, json!(1))).collect()));
    }
    Ok(Value::Object(out).into())
}

fn user_json(ctx: &Ctx<'_>, id: &str, u: &User, full: bool) -> Value {
    let mut v = json!({ "userid": id, "enable": if u.enable { 1 } else { 0 }, "expire": u.expire, "realm-type": id.rsplit('@').next().unwrap_or("pve") });
    for (k, f) in [("comment", &u.comment), ("email", &u.email), ("firstname", &u.firstname), ("lastname", &u.lastname)]
    {
        if let Some(x) = f {
            v[k] = json!(x);
        }
    }
    if !u.groups.is_empty() {
        v["groups"] = json!(u.groups.iter().cloned().collect::<Vec<_>>().join(","));
    }
    if full {
        v["tokens"] = json!(
            u.tokens
                .iter()
                .map(
                    |(t, tok)| json!({ "tokenid": t, "privsep": if tok.privsep { 1 } else { 0 }, "expire": tok.expire })
                )
                .collect::<Vec<_>>()
        );
    }
    let _ = ctx;
    v
}

fn may_manage_user(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiFailure> {
    let realm = userid.rsplit('@').next().unwrap_or_default();
    ctx.st.check(&ctx.who, &format!("/access/realm/{realm}"), &["Realm.AllocateUser"])
}

pub(super) fn users(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let full = ctx.flag("full").unwrap_or(false);
    let all = ctx.st.has(&ctx.who, "/access/groups", "User.Modify") || ctx.st.has(&ctx.who, "/access", "Sys.Audit");
    let data: Vec<Value> = ctx
        .st
        .users
        .iter()
        .filter(|(id, _)| all || **id == ctx.who.userid)
        .filter(|(_, u)| ctx.flag("enabled").is_none_or(|e| e == u.enable))
        .map(|(id, u)| user_json(ctx, id, u, full))
        .collect();
    Ok(Value::Array(data).into())
}

pub(super) fn user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("userid").to_string();
    if id != ctx.who.userid {
        ctx.st.check_any(&ctx.who, "/access", &["Sys.Audit", "User.Modify"]).or_else(|_| may_manage_user(ctx, &id))?;
    }
    let u = ctx.st.users.get(&id).ok_or_else(|| ApiFailure::internal(format!("no such user ('{id}')")))?;
    Ok(user_json(ctx, &id, u, true).into())
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ';', ' ']).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

pub(super) fn create_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.param("userid").unwrap_or_default().to_string();
    may_manage_user(ctx, &id)?;
    let groups = ctx.param("groups").map(split_list).unwrap_or_default();
    for g in &groups {
        ctx.st.check(&ctx.who, &format!("/access/groups/{g}"), &["User.Modify"])?;
        if !ctx.st.groups.contains_key(g) {
            return Err(ApiFailure::internal(format!("create user failed: no such group '{g}'")));
        }
    }
    let realm = id.rsplit('@').next().unwrap_or_default();
    if !REALMS.contains(&realm) {
        return Err(ApiFailure::internal(format!("create user failed: domain '{realm}' does not exist")));
    }
    if ctx.st.users.contains_key(&id) {
        return Err(ApiFailure::internal(format!("create user failed: user '{id}' already exists")));
    }
    let user = User {
        password_hash: ctx.param("password").map(|p| hash_password(&id, p)),
        enable: ctx.flag("enable").unwrap_or(true),
        expire: ctx.param("expire").and_then(|e| e.parse().ok()).unwrap_or(0),
        comment: ctx.param("comment").map(str::to_string),
        email: ctx.param("email").map(str::to_string),
        firstname: ctx.param("firstname").map(str::to_string),
        lastname: ctx.param("lastname").map(str::to_string),
        groups: groups.into_iter().collect(),
        tokens: BTreeMap::new(),
    };
    ctx.st.users.insert(id, user);
    Ok(Value::Null.into())
}

pub(super) fn update_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("userid").to_string();
    may_manage_user(ctx, &id)?;
    let groups = ctx.param("groups").map(split_list);
    if let Some(gs) = &groups {
        for g in gs {
            if !ctx.st.groups.contains_key(g) {
                return Err(ApiFailure::internal(format!("update user failed: no such group '{g}'")));
            }
        }
    }
    let append = ctx.flag("append").unwrap_or(false);
    let (enable, expire) = (ctx.flag("enable"), ctx.param("expire").and_then(|e| e.parse().ok()));
    let text = |k: &str| ctx.param(k).map(str::to_string);
    let (comment, email, first, last) = (text("comment"), text("email"), text("firstname"), text("lastname"));
    let u = ctx
        .st
        .users
        .get_mut(&id)
        .ok_or_else(|| ApiFailure::internal(format!("update user failed: no such user ('{id}')")))?;
    if let Some(gs) = groups {
        if !append {
            u.groups.clear();
        }
        u.groups.extend(gs);
    }
    if let Some(e) = enable {
        u.enable = e;
    }
    if let Some(e) = expire {
        u.expire = e;
    }
    for (slot, val) in
        [(&mut u.comment, comment), (&mut u.email, email), (&mut u.firstname, first), (&mut u.lastname, last)]
    {
        if val.is_some() {
            *slot = val;
        }
    }
    Ok(Value::Null.into())
}

pub(super) fn delete_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("userid").to_string();
    may_manage_user(ctx, &id)?;
    if id == "root@pam" {
        return Err(ApiFailure::internal("delete user failed: cannot delete 'root@pam'"));
    }
    if ctx.st.users.remove(&id).is_none() {
        return Err(ApiFailure::internal(format!("delete user failed: no such user ('{id}')")));
    }
    let prefix = format!("{id}!");
    ctx.st.acl.retain(|a| a.ugid != id && !a.ugid.starts_with(&prefix));
    Ok(Value::Null.into())
}

fn may_manage_tokens(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiFailure> {
    if ctx.who.userid == userid && ctx.who.token.is_none() {
        return Ok(());
    }
    ctx.st.check(&ctx.who, "/access/groups", &["User.Modify"])
}

pub(super) fn token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (id, tid) = (ctx.var("userid").to_string(), ctx.var("tokenid").to_string());
    may_manage_tokens(ctx, &id)?;
    let tok = ctx
        .st
        .users
        .get(&id)
        .and_then(|u| u.tokens.get(&tid))
        .ok_or_else(|| ApiFailure::internal(format!("no such token '{tid}' for user '{id}'")))?;
    Ok(json!({ "privsep": if tok.privsep { 1 } else { 0 }, "expire": tok.expire, "comment": tok.comment }).into())
}

pub(super) fn create_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (id, tid) = (ctx.var("userid").to_string(), ctx.var("tokenid").to_string());
    may_manage_tokens(ctx, &id)?;
    let privsep = ctx.flag("privsep").unwrap_or(true);
    let expire = ctx.param("expire").and_then(|e| e.parse().ok()).unwrap_or(0);
    let comment = ctx.param("comment").map(str::to_string);
    let u = ctx.st.users.get_mut(&id).ok_or_else(|| ApiFailure::internal(format!("no such user ('{id}')")))?;
    if u.tokens.contains_key(&tid) {
        return Err(ApiFailure::internal("Token already exists."));
    }
    let secret = uuid::Uuid::new_v4().to_string();
    u.tokens
        .insert(tid.clone(), Token { secret_hash: hash_secret(&secret), privsep, expire, comment: comment.clone() });
    Ok(json!({ "full-tokenid": format!("{id}!{tid}"), "info": { "privsep": if privsep { 1 } else { 0 }, "expire": expire, "comment": comment }, "value": secret }).into())
}

pub(super) fn delete_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let (id, tid) = (ctx.var("userid").to_string(), ctx.var("tokenid").to_string());
    may_manage_tokens(ctx, &id)?;
    let removed = ctx.st.users.get_mut(&id).and_then(|u| u.tokens.remove(&tid));
    if removed.is_none() {
        return Err(ApiFailure::internal(format!("no such token '{tid}' for user '{id}'")));
    }
    let full = format!("{id}!{tid}");
    ctx.st.acl.retain(|a| a.ugid != full);
    Ok(Value::Null.into())
}

pub(super) fn password(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.param("userid").unwrap_or_default().to_string();
    if id != ctx.who.userid {
        may_manage_user(ctx, &id)?;
    }
    let pw = ctx.param("password").unwrap_or_default().to_string();
    let u = ctx.st.users.get_mut(&id).ok_or_else(|| ApiFailure::internal(format!("no such user ('{id}')")))?;
    u.password_hash = Some(hash_password(&id, &pw));
    Ok(Value::Null.into())
}

pub(super) fn acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let data: Vec<Value> = ctx
        .st
        .acl
        .iter()
        .filter(|a| ctx.st.has(&ctx.who, &a.path, "Permissions.Modify") || ctx.st.has(&ctx.who, &a.path, "Sys.Audit"))
        .map(|a| json!({ "path": a.path, "type": a.kind, "ugid": a.ugid, "roleid": a.role, "propagate": if a.propagate { 1 } else { 0 } }))
        .collect();
    Ok(Value::Array(data).into())
}

fn valid_acl_path(p: &str) -> bool {
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [] => true,
        ["access"] | ["access", "groups" | "realm"] | ["access", "groups" | "realm", _] => true,
        ["nodes"] | ["nodes", _] | ["pool"] | ["pool", _] | ["storage"] | ["storage", _] => true,
        ["vms"] => true,
        ["vms", id] => id.parse::<u32>().is_ok_and(|n| n >= 100),
        ["sdn"] | ["sdn", "zones"] | ["sdn", "zones", _] | ["sdn", "zones", _, _] => true,
        ["sdn", "zones", _, _, tag] => tag.parse::<u16>().is_ok_and(|t| (1..=4094).contains(&t)),
        ["mapping"] | ["mapping", _] | ["mapping", _, _] => true,
        _ => false,
    }
}

pub(super) fn update_acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let raw = ctx.param("path").unwrap_or_default();
    let path = normalize_path(raw)
        .filter(|p| valid_acl_path(p))
        .ok_or_else(|| ApiFailure::internal(format!("invalid ACL path '{raw}'")))?;
    ctx.st.check(&ctx.who, &path, &["Permissions.Modify"])?;
    let delete = ctx.flag("delete").unwrap_or(false);
    let propagate = ctx.flag("propagate").unwrap_or(true);
    let roles = ctx.param("roles").map(split_list).unwrap_or_default();
    for r in &roles {
        if ctx.st.role_privs(r).is_none() {
            return Err(ApiFailure::internal(format!("role '{r}' does not exist")));
        }
    }
    let mut entries = Vec::new();
    for u in ctx.param("users").map(split_list).unwrap_or_default() {
        if !delete && !ctx.st.users.contains_key(&u) {
            return Err(ApiFailure::internal(format!("user '{u}' does not exist")));
        }
        entries.push(("user", u));
    }
    for g in ctx.param("groups").map(split_list).unwrap_or_default() {
        if !delete && !ctx.st.groups.contains_key(&g) {
            return Err(ApiFailure::internal(format!("group '{g}' does not exist")));
        }
        entries.push(("group", g));
    }
    for t in ctx.param("tokens").map(split_list).unwrap_or_default() {
        let exists =
            t.split_once('!').is_some_and(|(u, id)| ctx.st.users.get(u).is_some_and(|u| u.tokens.contains_key(id)));
        if !delete && !exists {
            return Err(ApiFailure::internal(format!("no such token '{t}'")));
        }
        entries.push(("token", t));
    }
    for (kind, ugid) in entries {
        for role in &roles {
            ctx.st.acl.retain(|a| !(a.path == path && a.kind == kind && a.ugid == ugid && a.role == *role));
            if !delete {
                ctx.st.acl.insert(Acl {
                    path: path.clone(),
                    kind: kind.into(),
                    ugid: ugid.clone(),
                    role: role.clone(),
                    propagate,
                });
            }
        }
    }
    Ok(Value::Null.into())
}

pub(super) fn roles(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let mut data: Vec<Value> = builtin_roles(&ctx.st.version)
        .iter()
        .map(|(id, p)| json!({ "roleid": id, "privs": p.iter().cloned().collect::<Vec<_>>().join(","), "special": 1 }))
        .collect();
    data.extend(
        ctx.st
            .roles
            .iter()
            .map(|(id, p)| json!({ "roleid": id, "privs": p.iter().cloned().collect::<Vec<_>>().join(",") })),
    );
    Ok(Value::Array(data).into())
}

pub(super) fn groups(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let data: Vec<Value> = ctx
        .st
        .groups
        .iter()
        .filter(|(g, _)| {
            ctx.st.has(&ctx.who, &format!("/access/groups/{g}"), "Sys.Audit")
                || ctx.st.has(&ctx.who, &format!("/access/groups/{g}"), "Group.Allocate")
        })
        .map(|(g, grp)| {
            let members: Vec<String> =
                ctx.st.users.iter().filter(|(_, u)| u.groups.contains(g)).map(|(id, _)| id.clone()).collect();
            let mut v = json!({ "groupid": g, "users": members.join(",") });
            if let Some(c) = &grp.comment {
                v["comment"] = json!(c);
            }
            v
        })
        .collect();
    Ok(Value::Array(data).into())
}

pub(super) fn create_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let g = ctx.param("groupid").unwrap_or_default().to_string();
    ctx.st.check(&ctx.who, "/access/groups", &["Group.Allocate"])?;
    if ctx.st.groups.contains_key(&g) {
        return Err(ApiFailure::internal(format!("create group failed: group '{g}' already exists")));
    }
    let comment = ctx.param("comment").map(str::to_string);
    ctx.st.groups.insert(g, Group { comment });
    Ok(Value::Null.into())
}

/// `PUT /access/groups/{groupid}`: the comment (pve-access-control `update_group`:
/// `Group.Allocate` on `/access/groups`, "group '..' does not exist").
pub(super) fn update_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let g = ctx.var("groupid").to_string();
    ctx.st.check(&ctx.who, "/access/groups", &["Group.Allocate"])?;
    let comment = ctx.param("comment").map(str::to_string);
    let Some(group) = ctx.st.groups.get_mut(&g) else {
        return Err(ApiFailure::internal(format!("group '{g}' does not exist")));
    };
    if comment.is_some() {
        group.comment = comment;
    }
    Ok(Value::Null.into())
}

pub(super) fn delete_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let g = ctx.var("groupid").to_string();
    ctx.st.check(&ctx.who, "/access/groups", &["Group.Allocate"])?;
    if ctx.st.groups.remove(&g).is_none() {
        return Err(ApiFailure::internal(format!("delete group failed: group '{g}' does not exist")));
    }
    for u in ctx.st.users.values_mut() {
        u.groups.remove(&g);
    }
    ctx.st.acl.retain(|a| !(a.kind == "group" && a.ugid == g));
    Ok(Value::Null.into())
}

/// `GET /access/domains`: the realms (readable by anyone logged in, like PVE).
pub(super) fn domains() -> Result<Reply, ApiFailure> {
    let list: Vec<_> = REALMS
        .iter()
        .map(|r| {
            let comment =
                if *r == "pam" { "Linux PAM standard authentication" } else { "Proxmox VE authentication server" };
            json!({ "realm": r, "type": r, "comment": comment })
        })
        .collect();
    Ok(json!(list).into())
}
