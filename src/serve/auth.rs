//! Logging in with one's own Proxmox VE account (`POST /access/ticket` against the
//! cluster), and out. The password goes to PVE once and is dropped; the session keeps the
//! ticket. A failed login answers after 3 s, as pveproxy does (pve-http-server,
//! `PVE::APIServer::AnyEvent`: unauthorized calls are delayed by 3 seconds).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tokio::time::Instant;

use super::App;
use super::pages::{redirect, render_login};
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, TICKET_LIFETIME, cookie, csrf_ok, random_token, request_cookie};
use crate::pve::{Credentials, PveExt, Secret};

/// How long a failed login takes at least.
const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(3);

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    realm: Option<String>,
}

/// The CSRF form of a logged-in page.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: Option<String>,
    /// A VM of the stand (reset one VM).
    #[serde(default)]
    pub vm: Option<String>,
}

/// `GET /login`: the form, with a CSRF token bound to a fresh cookie.
pub async fn login_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if app.caller(&headers).is_some() {
        return redirect("/");
    }
    login_page(&app, StatusCode::OK, None).await
}

/// The login page with a new CSRF pair, and `error` when there is one.
async fn login_page(app: &App, status: StatusCode, error: Option<&str>) -> Response {
    let nonce = random_token();
    let token = app.sessions.login_token(&nonce);
    let realms = app
        .realms
        .get_or_try_init(|| app.backend.pve.realms())
        .await
        .cloned()
        .unwrap_or_else(|_| vec!["pve".into(), "pam".into()]);
    let body = render_login(app, &token, &realms, error);
    let set = cookie(LOGIN_COOKIE, &nonce, Duration::from_secs(3600), app.config.tls, "/login");
    (status, [(SET_COOKIE, set), (CACHE_CONTROL, "no-store".to_string())], Html(body)).into_response()
}

/// `POST /login`: `username` (`user@realm`, or a name and `realm`), `password`, `csrf`.
pub async fn login(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let started = Instant::now();
    let LoginForm { username, password, csrf, realm } = form;
    let password = Secret::new(password);
    if !request_cookie(&headers, LOGIN_COOKIE).is_some_and(|n| app.sessions.login_token_ok(&n, &csrf)) {
        return login_page(&app, StatusCode::FORBIDDEN, Some("The form expired: log in again.")).await;
    }
    let username = username.trim();
    let user = match (username.contains('@'), realm.as_deref().filter(|r| !r.is_empty())) {
        (false, Some(r)) => format!("{username}@{r}"),
        (false, None) => format!("{username}@pve"),
        (true, _) => username.to_string(),
    };
    let client = (app.backend.client_as)(Credentials::Password { user: user.clone(), password });
    match client.issue_ticket().await {
        Ok(ticket) => {
            let token = app.sessions.start(&user, (app.backend.client_as)(ticket));
            tracing::info!("{user} logged in");
            let mut resp = redirect("/");
            let headers = resp.headers_mut();
            for c in [
                cookie(SESSION_COOKIE, &token, TICKET_LIFETIME, app.config.tls, "/"),
                cookie(LOGIN_COOKIE, "", Duration::ZERO, app.config.tls, "/login"),
            ] {
                if let Ok(v) = c.parse() {
                    headers.append(SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) if e.status() == Some(401) => {
            tracing::warn!("failed login for {user}");
            tokio::time::sleep_until(started + FAILED_LOGIN_DELAY).await;
            login_page(&app, StatusCode::UNAUTHORIZED, Some("Login failed: wrong user name, realm or password.")).await
        }
        Err(e) => {
            tracing::warn!("login of {user} could not reach the cluster: {e}");
            login_page(&app, StatusCode::BAD_GATEWAY, Some("The cluster did not answer; try again in a moment.")).await
        }
    }
}

/// `POST /logout` (form field `csrf`): ends the session.
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let Some(caller) = app.caller(&headers) else { return redirect("/login") };
    if !csrf_ok(&caller.session, form.csrf.as_deref()) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    app.sessions.end(&caller.token);
    let mut resp = redirect("/login");
    if let Ok(v) = cookie(SESSION_COOKIE, "", Duration::ZERO, app.config.tls, "/").parse() {
        resp.headers_mut().append(SET_COOKIE, v);
    }
    resp
}
