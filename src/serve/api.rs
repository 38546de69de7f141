//! The JSON API behind the pages. Every answer holds only what PVE shows the caller; without
//! a session it is `401`, a stand they may not act on `403`, and every `POST` wants the
//! session's `X-CSRF-Token` header.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/stands` | `[{lab, user, node, vms: [{vmid, name, short, node, status, uptime_s, mem, maxmem, cpu, lock, nics}]}]` |
//! | `GET /api/labs` | `[{lab, teacher, student_reset, expires, baseline, stands, instructor}]` (labs with a stand the caller sees) |
//! | `GET /api/labs/{lab}/stands` | the caller's visible stands of one lab |
//! | `GET /api/labs/{lab}/grades` | the latest grades: every student's for the instructor, one's own for a student |
//! | `GET /api/operations` | `[{id, lab, user, vm, kind, by, state, steps, ended, errors}]` the caller started or that touch their stands |
//! | `POST /api/stands/{lab}/{user}/reset` | `202 {"operation": id}`; body `{"vm": "gw"}` for one VM |
//! | `POST /api/stands/{lab}/{user}/power/{on,off,shutdown,reboot}` | `202 {"operation": id}` (instructors) |

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::App;
use super::access::{Access, Caller};
use super::ops::{self, Kind, power_op};
use super::session::{Seen, csrf_ok};
use super::view::ClassView;

/// Why a request is refused.
pub enum Refusal {
    /// No session (or it ended): log in.
    SignIn,
    /// Refused with this status and message.
    Status(StatusCode, String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => {
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": "log in first: POST /login" }))).into_response()
            }
            Refusal::Status(status, message) => (status, Json(json!({ "error": message }))).into_response(),
        }
    }
}

fn forbidden(what: &str) -> Refusal {
    Refusal::Status(StatusCode::FORBIDDEN, what.to_string())
}

/// The caller, what PVE shows them, and the class now.
pub(super) async fn signed_in(app: &App, headers: &HeaderMap) -> Result<(Caller, Seen, ClassView), Refusal> {
    let caller = app.caller(headers).ok_or(Refusal::SignIn)?;
    let seen = match app.seen(&caller).await {
        Ok(Some(seen)) => seen,
        Ok(None) => return Err(Refusal::SignIn),
        Err(e) => return Err(Refusal::Status(StatusCode::BAD_GATEWAY, format!("the cluster did not answer: {e}"))),
    };
    let class = app
        .view
        .class()
        .await
        .map_err(|e| Refusal::Status(StatusCode::BAD_GATEWAY, format!("the cluster did not answer: {e}")))?;
    Ok((caller, seen, class))
}

/// Checks the CSRF token and the caller's right to `kind` on the stand, then starts it.
pub(super) async fn act(
    app: &Arc<App>,
    headers: &HeaderMap,
    csrf: Option<&str>,
    lab: &str,
    user: &str,
    vm: Option<&str>,
    kind: Kind,
) -> Result<u64, Refusal> {
    let caller = app.caller(headers).ok_or(Refusal::SignIn)?;
    if !csrf_ok(&caller.session, csrf) {
        return Err(forbidden("missing or wrong CSRF token: reload the page"));
    }
    let (caller, seen, class) = signed_in(app, headers).await?;
    let access = Access::new(&caller.session.user, &seen, &class);
    let stand = class.stand(lab, user).filter(|s| access.sees(s)).ok_or_else(|| forbidden("not your stand"))?;
    let allowed = match kind {
        Kind::Reset => access.may_reset(stand),
        Kind::Power(_) | Kind::Uplinks(_) => access.may_power(stand),
    };
    if !allowed {
        return Err(forbidden(match kind {
            Kind::Reset => "resetting this stand is up to the instructor (lab setting student_reset)",
            Kind::Power(_) => "powering stands on and off is up to the instructor",
            Kind::Uplinks(_) => "cutting and restoring uplinks is up to the instructor",
        }));
    }
    if let Some(vm) = vm
        && !stand.vms.iter().any(|v| v.short == vm || v.name == vm)
    {
        return Err(Refusal::Status(StatusCode::NOT_FOUND, format!("the stand has no VM {vm}")));
    }
    ops::start(app, &caller.session, &class, stand, vm, kind).await.map_err(|e| match e {
        ops::OpError::Busy => Refusal::Status(StatusCode::CONFLICT, e.to_string()),
        other => Refusal::Status(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    })
}

/// Starts `kind` on every stand of `lab` the caller instructs (the class at once: an exam's
/// uplinks); returns the operations' ids, or why none could start.
pub(super) async fn act_on_lab(
    app: &Arc<App>,
    headers: &HeaderMap,
    csrf: Option<&str>,
    lab: &str,
    kind: Kind,
) -> Result<Vec<u64>, Refusal> {
    let caller = app.caller(headers).ok_or(Refusal::SignIn)?;
    if !csrf_ok(&caller.session, csrf) {
        return Err(forbidden("missing or wrong CSRF token: reload the page"));
    }
    let (caller, seen, class) = signed_in(app, headers).await?;
    let access = Access::new(&caller.session.user, &seen, &class);
    if !access.instructs(lab) {
        return Err(forbidden("the class's uplinks are up to its instructor"));
    }
    let stands: Vec<&crate::serve::view::StandView> =
        class.stands.iter().filter(|s| s.lab == lab && access.may_power(s)).collect();
    let mut started = Vec::new();
    for stand in stands {
        // A stand busy with another operation is left; the page shows which were started.
        if let Ok(id) = ops::start(app, &caller.session, &class, stand, None, kind).await {
            started.push(id);
        }
    }
    Ok(started)
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// `GET /api/stands`.
pub async fn stands(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match signed_in(&app, &headers).await {
        Ok((caller, seen, class)) => {
            Json(Access::new(&caller.session.user, &seen, &class).visible(&class)).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `GET /api/labs`.
pub async fn labs(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let access = Access::new(&caller.session.user, &seen, &class);
    let visible = access.visible(&class);
    let labs: Vec<_> = class
        .labs
        .values()
        .filter(|l| visible.iter().any(|s| s.lab == l.lab))
        .map(|l| {
            let mut v = json!(l);
            v["instructor"] = json!(access.instructs(&l.lab));
            v
        })
        .collect();
    Json(labs).into_response()
}

/// `GET /api/labs/{lab}/stands`.
pub async fn lab_stands(State(app): State<Arc<App>>, headers: HeaderMap, Path(lab): Path<String>) -> Response {
    match signed_in(&app, &headers).await {
        Ok((caller, seen, class)) => {
            let mut visible = Access::new(&caller.session.user, &seen, &class).visible(&class);
            visible.retain(|s| s.lab == lab);
            Json(visible).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `GET /api/labs/{lab}/grades`.
pub async fn grades(State(app): State<Arc<App>>, headers: HeaderMap, Path(lab): Path<String>) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let access = Access::new(&caller.session.user, &seen, &class);
    let own: Vec<String> = access.visible(&class).into_iter().filter(|s| s.lab == lab).map(|s| s.user).collect();
    let instructor = access.instructs(&lab) && !own.is_empty();
    let latest = app.grades.latest(&lab).await;
    let rows: Vec<_> = latest
        .iter()
        .filter(|l| instructor || (l.run.user == caller.session.user && own.contains(&l.run.user)))
        .collect();
    Json(rows).into_response()
}

/// `GET /api/operations`.
pub async fn operations(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let access = Access::new(&caller.session.user, &seen, &class);
    let user = caller.session.user.as_str();
    let list: Vec<_> =
        app.ops.list().into_iter().filter(|o| o.by == user || o.user == user || access.instructs(&o.lab)).collect();
    Json(list).into_response()
}

/// The optional body of a reset or power request.
#[derive(Default, Deserialize)]
pub struct ActBody {
    #[serde(default)]
    vm: Option<String>,
}

fn body(bytes: &[u8]) -> Result<ActBody, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActBody::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Refusal::Status(StatusCode::BAD_REQUEST, format!("the body must be {{\"vm\": \"name\"}}: {e}")))
}

/// Starts `kind` as the JSON API does: `202 {"operation": id}`, or the refusal.
async fn start_json(app: &Arc<App>, headers: &HeaderMap, lab: &str, user: &str, bytes: &[u8], kind: Kind) -> Response {
    let started = async {
        let b = body(bytes)?;
        act(app, headers, csrf_header(headers), lab, user, b.vm.as_deref(), kind).await
    };
    match started.await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "operation": id }))).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/stands/{lab}/{user}/reset`.
pub async fn reset(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Response {
    start_json(&app, &headers, &lab, &user, &bytes, Kind::Reset).await
}

/// `POST /api/stands/{lab}/{user}/power/{op}`.
pub async fn power(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user, op)): Path<(String, String, String)>,
    bytes: axum::body::Bytes,
) -> Response {
    match power_op(&op) {
        Some(op) => start_json(&app, &headers, &lab, &user, &bytes, Kind::Power(op)).await,
        None => {
            Refusal::Status(StatusCode::NOT_FOUND, "power operations: on, off, shutdown, reboot".into()).into_response()
        }
    }
}
