//! `/pools`: resource pools and their members.

use serde_json::{Value, json};

use super::cluster::vm_resource;
use crate::pve::ApiFailure;
use crate::sim::context::Ctx;
use crate::sim::core::Reply;

fn members(ctx: &Ctx<'_>, id: &str) -> Vec<Value> {
    let Some(p) = ctx.st.pools.get(id) else { return Vec::new() };
    let mut out: Vec<Value> = p.vms.iter().filter_map(|v| vm_resource(ctx.st, *v)).collect();
    out.extend(p.storages.iter().map(|s| json!({ "id": format!("storage/{s}"), "type": "storage", "storage": s })));
    out
}

pub(super) fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let only = ctx.param("poolid").map(str::to_string);
    let data: Vec<Value> = ctx
        .st
        .pools
        .iter()
        .filter(|(id, _)| only.as_deref().is_none_or(|o| o == *id))
        .filter(|(id, _)| ctx.st.has(&ctx.who, &format!("/pool/{id}"), "Pool.Audit"))
        .map(|(id, p)| {
            let mut v = json!({ "poolid": id });
            if let Some(c) = &p.comment {
                v["comment"] = json!(c);
            }
            if only.is_some() {
                v["members"] = json!(members(ctx, id));
            }
            v
        })
        .collect();
    Ok(Value::Array(data).into())
}

pub(super) fn get(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.var("poolid").to_string();
    ctx.st.check(&ctx.who, &format!("/pool/{id}"), &["Pool.Audit"])?;
    let p = ctx.st.pools.get(&id).ok_or_else(|| ApiFailure::internal(format!("pool '{id}' does not exist")))?;
    // PVE omits empty keys (`comment`) and names the pool (`poolid`).
    let mut v = json!({ "poolid": id, "members": members(ctx, &id) });
    if let Some(c) = &p.comment {
        v["comment"] = json!(c);
    }
    Ok(v.into())
}

pub(super) fn create(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let id = ctx.param("poolid").unwrap_or_default().to_string();
    ctx.st.check(&ctx.who, &format!("/pool/{id}"), &["Pool.Allocate"])?;
    if ctx.st.pools.contains_key(&id) {
        return Err(ApiFailure::internal(format!("create pool failed: pool '{id}' already exists")));
    }
    let comment = ctx.param("comment").map(str::to_string);
    ctx.st.pools.insert(id, crate::sim::state::Pool { comment, ..Default::default() });
    Ok(Value::Null.into())
}

pub(super) fn update(ctx: &mut Ctx<'_>, id: Option<String>) -> Result<Reply, ApiFailure> {
    let id = id.or_else(|| ctx.param("poolid").map(str::to_string)).unwrap_or_default();
    ctx.st.check(&ctx.who, &format!("/pool/{id}"), &["Pool.Allocate"])?;
    if !ctx.st.pools.contains_key(&id) {
        return Err(ApiFailure::internal(format!("pool '{id}' does not exist")));
    }
    let delete = ctx.flag("delete").unwrap_or(false);
    let vms: Vec<u32> =
        ctx.param("vms").map(|v| v.split([',', ';', ' ']).filter_map(|x| x.parse().ok()).collect()).unwrap_or_default();
    let storages: Vec<String> = ctx
        .param("storage")
        .map(|v| v.split([',', ';', ' ']).filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    for vmid in &vms {
        ctx.st.check(&ctx.who, &format!("/vms/{vmid}"), &["VM.Allocate"])?;
        if !ctx.st.vms.contains_key(vmid) {
            return Err(ApiFailure::internal(format!("no such VM ('{vmid}')")));
        }
        if !delete
            && !ctx.flag("allow-move").unwrap_or(false)
            && let Some(other) = ctx.st.pool_of(*vmid).filter(|p| *p != id)
        {
            return Err(ApiFailure::internal(format!(
                "VM {vmid} belongs already to pool '{other}' and 'allow-move' is not set"
            )));
        }
    }
    for s in &storages {
        ctx.st.check(&ctx.who, &format!("/storage/{s}"), &["Datastore.Allocate"])?;
    }
    if !delete {
        for p in ctx.st.pools.values_mut() {
            for v in &vms {
                p.vms.remove(v);
            }
        }
    }
    let comment = ctx.param("comment").map(str::to_string);
    let pool = ctx.st.pools.get_mut(&id).ok_or_else(|| ApiFailure::internal(format!("pool '{id}' does not exist")))?;
    if comment.is_some() {
        pool.comment = comment;
    }
    for v in vms {
        if delete {
            pool.vms.remove(&v);
        } else {
            pool.vms.insert(v);
        }
    }
    for s in storages {
        if delete {
            pool.storages.remove(&s);
        } else {
            pool.storages.insert(s);
        }
    }
    Ok(Value::Null.into())
}

pub(super) fn delete(ctx: &mut Ctx<'_>, id: Option<String>) -> Result<Reply, ApiFailure> {
    let id = id.or_else(|| ctx.param("poolid").map(str::to_string)).unwrap_or_default();
    ctx.st.check(&ctx.who, &format!("/pool/{id}"), &["Pool.Allocate"])?;
    let p = ctx
        .st
        .pools
        .get(&id)
        .ok_or_else(|| ApiFailure::internal(format!("delete pool failed: pool '{id}' does not exist")))?;
    if !p.vms.is_empty() || !p.storages.is_empty() {
        return Err(ApiFailure::internal(format!("delete pool failed: pool '{id}' is not empty")));
    }
    ctx.st.pools.remove(&id);
    let path = format!("/pool/{id}");
    ctx.st.acl.retain(|a| a.path != path);
    Ok(Value::Null.into())
}
