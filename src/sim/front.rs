//! The simulator's HTTP front, shared by `stand sim serve` (over HTTPS) and the in-process
//! transport of `--sim`: query and form (or JSON) parameters, the request log, latency,
//! injected connection faults, ticket + CSRF and API-token authentication, and PVE's
//! answer shapes (`{"data": ...}`, the error text in the reason phrase and in `message`).

use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::access::Identity;
use super::core::Sim;
use super::faults::TransportFault;
use crate::pve::{ApiFailure, Method, Params, Transport, TransportError, WireRequest, WireResponse};

/// The front dropped the connection instead of answering (an injected reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped;

/// Answers one HTTP exchange as `pveproxy` would.
pub async fn answer(sim: &Sim, req: WireRequest) -> Result<WireResponse, Dropped> {
    let (parts, body) = req.into_parts();
    let method = match parts.method.as_str() {
        "GET" | "HEAD" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => return Ok(failure_reply(&ApiFailure::new(501, format!("Method '{other}' not implemented")))),
    };
    let raw_path = parts.uri.path().to_string();
    let mut params: Params = parts.uri.query().map(|q| pairs(q.as_bytes())).unwrap_or_default();
    let is_json =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    params.extend(if is_json { json_params(&body) } else { pairs(&body) });
    sim.log_request(method, &raw_path, &params);
    tracing::debug!(%method, path = %raw_path, "request");

    let Some(path) =
        raw_path.strip_prefix("/api2/json").map(|p| if p.is_empty() { "/".to_string() } else { p.to_string() })
    else {
        return Ok(reply(404, Some("Not Found"), json!({ "data": null })));
    };
    // Half the round trip on the way in, half on the way out.
    let latency = sim.request_latency() / 2;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    sim.pass_hold(method, &path).await;
    let fault = sim.roll_transport_fault(method, &path, &params);
    match fault {
        Some(TransportFault::Busy(status)) => {
            let msg = if status == 596 { "Broken pipe" } else { "proxy handler failed: node busy" };
            return Ok(failure_reply(&ApiFailure::new(status, msg)));
        }
        Some(TransportFault::ResetBefore) => return Err(Dropped),
        _ => {}
    }
    let who = match authenticate(sim, &parts.headers, method) {
        Auth::Ok(id) => Some(id),
        Auth::Anonymous => None,
        Auth::Failed(msg) => return Ok(refused(sim, &ApiFailure::new(401, msg)).await),
    };
    let result = sim.handle(who.as_ref(), method, &path, &params);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if fault == Some(TransportFault::ResetAfter) {
        return Err(Dropped);
    }
    Ok(match result {
        Ok(r) => reply(200, None, r.into_body()),
        Err(f) if f.status == 401 => refused(sim, &f).await,
        Err(f) => failure_reply(&f),
    })
}

/// A failed login answers after a delay, as `pveproxy` does against guessing.
async fn refused(sim: &Sim, f: &ApiFailure) -> WireResponse {
    let delay = Duration::from_secs_f64(3.0 * sim.options().time_scale.min(1.0));
    tokio::time::sleep(delay).await;
    failure_reply(f)
}

/// The simulator as a [`Transport`] in this process: every exchange goes through
/// [`answer`], without sockets or TLS.
pub struct InProcess {
    sim: Sim,
}

impl InProcess {
    /// A transport to `sim`.
    pub fn new(sim: Sim) -> Self {
        InProcess { sim }
    }
}

#[async_trait]
impl Transport for InProcess {
    async fn send(&self, req: WireRequest) -> Result<WireResponse, TransportError> {
        answer(&self.sim, req)
            .await
            .map_err(|Dropped| TransportError::Failed { message: "connection reset by peer".into(), maybe_sent: true })
    }

    fn endpoint(&self) -> String {
        "simulator".into()
    }
}

fn reply(status: u16, reason: Option<&str>, body: Value) -> WireResponse {
    let mut resp = http::Response::new(body.to_string().into_bytes());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json;charset=UTF-8"));
    resp.headers_mut().insert(header::SERVER, header::HeaderValue::from_static("pve-api-daemon/3.0"));
    if let Some(r) = reason {
        let first_line = r.lines().next().unwrap_or_default().to_string();
        if let Ok(rp) = hyper::ext::ReasonPhrase::try_from(first_line.into_bytes()) {
            resp.extensions_mut().insert(rp);
        }
    }
    resp
}

fn failure_reply(f: &ApiFailure) -> WireResponse {
    let mut body = json!({ "data": null, "message": format!("{}\n", f.message.trim_end()) });
    if !f.errors.is_empty() {
        body["errors"] = json!(f.errors);
    }
    reply(f.status, Some(&f.message), body)
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body); a repeated
/// key is a list (pve-http-server `decode_urlencoded`).
fn pairs(bytes: &[u8]) -> Params {
    let mut params = Params::new();
    for (k, v) in form_urlencoded::parse(bytes).into_owned() {
        crate::pve::push_param(&mut params, k, v);
    }
    params
}

fn json_params(bytes: &[u8]) -> Params {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                            .collect::<Vec<_>>()
                            .join(&crate::pve::LIST_SEP.to_string()),
                        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| urlencoding::decode(v).map(|s| s.into_owned()).unwrap_or_else(|_| v.to_string()))
    })
}

enum Auth {
    Anonymous,
    Ok(Identity),
    Failed(&'static str),
}

fn authenticate(sim: &Sim, headers: &HeaderMap, method: Method) -> Auth {
    let now = { sim.state().unix(sim.now_ms()) };
    let authz = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if let Some(i) = authz.find("PVEAPIToken") {
        let rest = &authz[i + "PVEAPIToken".len()..];
        let value = rest.trim_start_matches(['=', ' ']).split(';').next().unwrap_or_default();
        let value = urlencoding::decode(value).map(|s| s.into_owned()).unwrap_or_else(|_| value.to_string());
        return match sim.state().verify_token(&value, now) {
            Some(id) => Auth::Ok(id),
            None => Auth::Failed("Authentication failed!"),
        };
    }
    let ticket = cookie(headers, "PVEAuthCookie").or_else(|| {
        authz.strip_prefix("PVEAuthCookie=").map(|t| urlencoding::decode(t).map(|s| s.into_owned()).unwrap_or_default())
    });
    let Some(ticket) = ticket else { return Auth::Anonymous };
    let st = sim.state();
    let Some(user) = st.verify_ticket(&ticket, now) else { return Auth::Failed("Authentication failed!") };
    if !method.is_read() {
        let csrf = headers.get("CSRFPreventionToken").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !st.verify_csrf(&user, csrf, now) {
            return Auth::Failed("Permission denied - invalid csrf token");
        }
    }
    Auth::Ok(Identity::user(&user))
}
