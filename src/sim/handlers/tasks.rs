//! `/nodes/{node}/tasks`: list, status and log, in PVE's shapes.

use serde_json::{Value, json};

use crate::pve::{ApiFailure, Upid};
use crate::sim::context::Ctx;
use crate::sim::core::Reply;
use crate::sim::state::Task;

fn find<'a>(ctx: &'a Ctx<'_>) -> Result<&'a Task, ApiFailure> {
    let raw = ctx.var("upid");
    let upid: Upid = raw.parse().map_err(|_| ApiFailure::param("upid", "unable to parse worker upid"))?;
    let task = ctx.st.tasks.iter().find(|t| t.upid == raw).ok_or_else(|| ApiFailure::param("upid", "no such task"))?;
    if upid.node != ctx.var("node") {
        return Err(ApiFailure::param("upid", "no such task"));
    }
    let own = task.user == ctx.who.auth_id() || task.user.split('!').next() == Some(ctx.who.userid.as_str());
    if !own {
        ctx.st.check(&ctx.who, &format!("/nodes/{}", task.node), &["Sys.Audit"])?;
    }
    Ok(task)
}

fn running(ctx: &Ctx<'_>, t: &Task) -> bool {
    ctx.now < t.end_ms
}

pub(super) fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let t = find(ctx)?;
    let upid: Upid = t.upid.parse().map_err(|_| ApiFailure::param("upid", "unable to parse worker upid"))?;
    let (user, token) = upid.user_and_token();
    let mut v = json!({
        "upid": t.upid, "node": t.node, "pid": upid.pid, "pstart": upid.pstart, "starttime": upid.starttime,
        "type": t.kind, "id": t.id, "user": user, "status": if running(ctx, t) { "running" } else { "stopped" },
    });
    if let Some(tok) = token {
        v["tokenid"] = json!(tok);
    }
    if !running(ctx, t) {
        v["exitstatus"] = json!(t.exit);
    }
    Ok(v.into())
}

pub(super) fn index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    find(ctx)?;
    Ok(json!([{ "name": "log" }, { "name": "status" }]).into())
}

pub(super) fn log(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let t = find(ctx)?;
    let mut lines = t.log.clone();
    if !running(ctx, t) {
        lines.push(if t.exit == "OK" { "TASK OK".to_string() } else { format!("TASK ERROR: {}", t.exit) });
    }
    let start = ctx.param("start").and_then(|s| s.parse().ok()).unwrap_or(0usize);
    let limit = ctx.param("limit").and_then(|s| s.parse().ok()).unwrap_or(50usize);
    let total = lines.len();
    let data: Vec<Value> =
        lines.into_iter().enumerate().skip(start).take(limit).map(|(i, l)| json!({ "n": i + 1, "t": l })).collect();
    let mut reply = Reply::from(Value::Array(data));
    reply.extra.insert("total".into(), json!(total));
    Ok(reply)
}

pub(super) fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiFailure> {
    let node = ctx.var("node").to_string();
    let audit = ctx.st.has(&ctx.who, &format!("/nodes/{node}"), "Sys.Audit");
    let limit = ctx.param("limit").and_then(|s| s.parse().ok()).unwrap_or(50usize);
    let start = ctx.param("start").and_then(|s| s.parse().ok()).unwrap_or(0usize);
    let errors_only = ctx.flag("errors").unwrap_or(false);
    let vmid = ctx.param("vmid").map(str::to_string);
    let typefilter = ctx.param("typefilter").map(str::to_string);
    let running_filter = ctx.param("source") == Some("active");
    let mut items: Vec<&Task> = ctx
        .st
        .tasks
        .iter()
        .filter(|t| t.node == node)
        .filter(|t| audit || t.user.split('!').next() == Some(ctx.who.userid.as_str()))
        .filter(|t| vmid.as_deref().is_none_or(|v| t.id == v))
        .filter(|t| typefilter.as_deref().is_none_or(|f| t.kind == f))
        .filter(|t| !errors_only || (!running(ctx, t) && t.exit != "OK"))
        .filter(|t| !running_filter || running(ctx, t))
        .collect();
    items.sort_by_key(|t| std::cmp::Reverse(t.start_ms));
    let total = items.len();
    let data: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(limit)
        .filter_map(|t| {
            let u: Upid = t.upid.parse().ok()?;
            // pve-manager Tasks.pm: a token's task lists its user and `tokenid` apart.
            let (user, token) = u.user_and_token();
            let mut v = json!({
                "upid": t.upid, "node": t.node, "pid": u.pid, "pstart": u.pstart, "starttime": u.starttime,
                "type": t.kind, "id": t.id, "user": user,
            });
            if let Some(tok) = token {
                v["tokenid"] = json!(tok);
            }
            if !running(ctx, t) {
                v["status"] = json!(t.exit);
                v["endtime"] = json!(ctx.st.unix(t.end_ms));
            }
            Some(v)
        })
        .collect();
    let mut reply = Reply::from(Value::Array(data));
    reply.extra.insert("total".into(), json!(total));
    Ok(reply)
}
