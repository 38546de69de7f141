//! The server-rendered pages: login, the student's stands, the instructor's class, the
//! confirmation of a reset. Templates and assets are compiled into the binary; pages work
//! without JavaScript (`app.js` only refreshes the page in place).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};

use super::access::{Access, Caller};
use super::api::{Refusal, act};
use super::auth::CsrfForm;
use super::logins::{by_name, logins_page};
use super::ops::{Kind, OpView, power_op};
use super::picture;
use super::view::{ClassView, StandView, VmView};
use super::{App, session::Seen};
use crate::apply::Credential;
use crate::grade::Latest;

/// The page templates, parsed once.
pub struct Templates(Environment<'static>);

impl Templates {
    /// Loads the templates shipped in the binary.
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.add_filter("points", |n: f64| crate::grade::number(n));
        env.add_filter("when", |at: String| when(&at));
        for (name, source) in [
            ("base.html", include_str!("assets/base.html")),
            ("login.html", include_str!("assets/login.html")),
            ("home.html", include_str!("assets/home.html")),
            ("confirm.html", include_str!("assets/confirm.html")),
            ("error.html", include_str!("assets/error.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!("template {name}: {e}");
            }
        }
        Templates(env)
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        self.0.get_template(name).and_then(|t| t.render(ctx)).unwrap_or_else(|e| {
            tracing::error!("rendering {name}: {e:#}");
            "<!doctype html><title>stand</title><p>This page could not be rendered; the server log says why.".into()
        })
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// A `303 See Other` to `to`.
pub fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

/// An HTML page that is never cached (it shows one person's data).
fn page(status: StatusCode, body: String) -> Response {
    (status, [(CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

/// The error page.
pub fn error_page(app: &App, status: StatusCode, message: &str) -> Response {
    page(status, app.pages.render("error.html", context! { message, status => status.as_u16() }))
}

/// The login page's HTML.
pub fn render_login(app: &App, csrf: &str, realms: &[String], error: Option<&str>) -> String {
    app.pages.render("login.html", context! { csrf, realms, error })
}

/// An RFC 3339 time as people read it, `2026-12-07 21:08 UTC`; the page's script shows it
/// in the reader's own time zone (`<time datetime=..>`).
fn when(at: &str) -> String {
    match time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        }
        Err(_) => at.to_string(),
    }
}

/// A VM as a page row.
#[derive(Serialize)]
struct VmRow<'a> {
    #[serde(flatten)]
    vm: &'a VmView,
    uptime: String,
    console: String,
    memory: String,
}

/// A stand as a page card.
#[derive(Serialize)]
struct StandCard<'a> {
    lab: &'a str,
    user: &'a str,
    name: Option<&'a str>,
    node: &'a str,
    running: usize,
    total: usize,
    vms: Vec<VmRow<'a>>,
    picture: String,
    may_reset: bool,
    may_power: bool,
    busy: bool,
    uplinks_cut: bool,
    grades: Option<Latest>,
}

/// One lab an instructor teaches.
#[derive(Serialize)]
struct LabSection<'a> {
    lab: &'a str,
    expires: Option<&'a str>,
    student_reset: bool,
    stands: Vec<StandCard<'a>>,
    running: usize,
    vms: usize,
    cut: usize,
    criteria: Vec<String>,
    credentials: bool,
    operations: Vec<OpView>,
}

fn console_url(console: &str, vm: &VmView) -> String {
    format!(
        "{}/?console=kvm&novnc=1&vmid={}&vmname={}&node={}&resize=off&cmd=",
        console.trim_end_matches('/'),
        vm.vmid,
        urlencoding::encode(&vm.name),
        urlencoding::encode(&vm.node)
    )
}

impl App {
    fn card<'s>(&self, s: &'s StandView, access: &Access, grades: &BTreeMap<String, Latest>) -> StandCard<'s> {
        StandCard {
            lab: &s.lab,
            user: &s.user,
            name: s.name.as_deref(),
            node: &s.node,
            running: s.running(),
            total: s.vms.len(),
            vms: s
                .vms
                .iter()
                .map(|vm| VmRow {
                    vm,
                    uptime: if vm.status == "running" { crate::out::uptime(vm.uptime_s) } else { String::new() },
                    console: console_url(&self.backend.console, vm),
                    memory: format!("{} MiB", vm.maxmem >> 20),
                })
                .collect(),
            picture: picture::svg(s),
            may_reset: access.may_reset(s),
            may_power: access.may_power(s),
            busy: self.ops.running(&s.lab, &s.user),
            uplinks_cut: s.uplinks_cut(),
            grades: grades.get(&s.user).cloned(),
        }
    }

    async fn grades_of(&self, lab: &str) -> BTreeMap<String, Latest> {
        self.grades.latest(lab).await.iter().map(|l| (l.run.user.clone(), l.clone())).collect()
    }
}

/// The session, what PVE shows it, and the class now; or the page that ends the request.
pub(super) async fn signed_in(app: &App, headers: &HeaderMap) -> Result<(Caller, Seen, ClassView), Response> {
    super::api::signed_in(app, headers).await.map_err(|r| refused(app, r))
}

/// `GET /`: the student's stands, or the instructor's labs (and their own stands).
pub async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let user = caller.session.user.as_str();
    let access = Access::new(user, &seen, &class);
    let visible = access.visible(&class);
    let taught = access.taught(&class);
    let operations = app.ops.list();
    let mut labs = Vec::new();
    for info in &taught {
        let grades = app.grades_of(&info.lab).await;
        let stands: Vec<StandCard> =
            visible.iter().filter(|s| s.lab == info.lab).map(|s| app.card(s, &access, &grades)).collect();
        let mut criteria: Vec<String> = Vec::new();
        for l in grades.values() {
            for m in &l.marks {
                if !criteria.contains(&m.criterion) {
                    criteria.push(m.criterion.clone());
                }
            }
        }
        labs.push(LabSection {
            lab: &info.lab,
            expires: info.expires.as_deref(),
            student_reset: info.student_reset,
            running: stands.iter().map(|s| s.running).sum(),
            vms: stands.iter().map(|s| s.total).sum(),
            cut: stands.iter().filter(|s| s.uplinks_cut).count(),
            stands,
            criteria,
            credentials: app.config.credentials_dir.join(format!("{}-credentials.csv", info.lab)).is_file(),
            operations: operations.iter().filter(|o| o.lab == info.lab).cloned().collect(),
        });
    }
    let mut own = Vec::new();
    for s in visible.iter().filter(|s| !access.instructs(&s.lab)) {
        let grades = app.grades_of(&s.lab).await;
        own.push(app.card(s, &access, &grades));
    }
    let mine: Vec<OpView> = operations.into_iter().filter(|o| o.user == user || o.by == user).collect();
    let busy = own.iter().any(|s| s.busy) || labs.iter().any(|l| l.operations.iter().any(|o| o.state == "running"));
    let body = app.pages.render(
        "home.html",
        context! { user, csrf => &caller.session.csrf, labs, stands => own, operations => mine, busy },
    );
    page(StatusCode::OK, body)
}

/// `?vm=NAME`: one VM of the stand.
#[derive(Deserialize)]
pub struct VmQuery {
    #[serde(default)]
    vm: Option<String>,
}

/// `GET /stands/{lab}/{user}/reset[?vm=NAME]`: asks to confirm.
pub async fn confirm_reset(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user)): Path<(String, String)>,
    Query(q): Query<VmQuery>,
) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let access = Access::new(&caller.session.user, &seen, &class);
    let Some(stand) = class.stand(&lab, &user).filter(|s| access.may_reset(s)) else {
        return error_page(&app, StatusCode::FORBIDDEN, "You may not reset this stand.");
    };
    if let Some(vm) = &q.vm
        && !stand.vms.iter().any(|v| &v.short == vm || &v.name == vm)
    {
        return error_page(&app, StatusCode::NOT_FOUND, &format!("The stand has no VM {vm}."));
    }
    let baseline = class.labs.get(&lab).map(|l| l.baseline.clone()).unwrap_or_default();
    let body = app.pages.render(
        "confirm.html",
        context! { user => &caller.session.user, csrf => &caller.session.csrf, lab, owner => user, vm => q.vm, baseline },
    );
    page(StatusCode::OK, body)
}

fn refused(app: &App, r: Refusal) -> Response {
    match r {
        Refusal::SignIn => redirect("/login"),
        Refusal::Status(status, message) => error_page(app, status, &message),
    }
}

/// `POST /stands/{lab}/{user}/reset` (form: `csrf`, `vm`): resets, back to the page.
pub async fn reset(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match act(&app, &headers, form.csrf.as_deref(), &lab, &user, form.vm.as_deref(), Kind::Reset).await {
        Ok(_) => redirect("/"),
        Err(r) => refused(&app, r),
    }
}

/// `POST /stands/{lab}/{user}/power/{op}` (form: `csrf`): on, off, shutdown, reboot.
pub async fn power(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user, op)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(op) = power_op(&op) else {
        return error_page(&app, StatusCode::NOT_FOUND, "Power operations are on, off, shutdown and reboot.");
    };
    match act(&app, &headers, form.csrf.as_deref(), &lab, &user, form.vm.as_deref(), Kind::Power(op)).await {
        Ok(_) => redirect("/"),
        Err(r) => refused(&app, r),
    }
}

/// `POST /labs/{lab}/uplinks/{off,on}` (form: `csrf`): an exam's uplinks for the whole class.
pub async fn uplinks(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, op)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let on = match op.as_str() {
        "off" => false,
        "on" => true,
        _ => return error_page(&app, StatusCode::NOT_FOUND, "Uplinks are cut (off) or restored (on)."),
    };
    match super::api::act_on_lab(&app, &headers, form.csrf.as_deref(), &lab, Kind::Uplinks(on)).await {
        Ok(_) => redirect("/"),
        Err(r) => refused(&app, r),
    }
}

/// `GET /stands/{lab}/{user}/network.svg`: the stand's network picture.
pub async fn network(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((lab, user)): Path<(String, String)>,
) -> Response {
    let (caller, seen, class) = match signed_in(&app, &headers).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let access = Access::new(&caller.session.user, &seen, &class);
    match access.visible(&class).into_iter().find(|s| s.lab == lab && s.user == user) {
        Some(stand) => {
            ([(CONTENT_TYPE, "image/svg+xml"), (CACHE_CONTROL, "no-store")], picture::svg(&stand)).into_response()
        }
        None => error_page(&app, StatusCode::FORBIDDEN, "You may not see this stand."),
    }
}

/// The signed-in caller and the class, when the caller teaches `lab` (its teacher or an
/// administrator); else the page that says `refusal` (403), or the login.
async fn instructor_of(
    app: &App,
    headers: &HeaderMap,
    lab: &str,
    refusal: &str,
) -> Result<(Caller, ClassView), Response> {
    let (caller, seen, class) = signed_in(app, headers).await?;
    let teaches = Access::new(&caller.session.user, &seen, &class).taught(&class).iter().any(|l| l.lab == lab);
    if !teaches {
        return Err(error_page(app, StatusCode::FORBIDDEN, refusal));
    }
    Ok((caller, class))
}

/// `GET /labs/{lab}/credentials.csv`: the students' logins, for the lab's instructor.
pub async fn credentials(State(app): State<Arc<App>>, headers: HeaderMap, Path(lab): Path<String>) -> Response {
    let refusal = "Only the lab's instructor may download its credentials.";
    let caller = match instructor_of(&app, &headers, &lab, refusal).await {
        Ok((caller, _)) => caller,
        Err(resp) => return resp,
    };
    let path = app.config.credentials_dir.join(format!("{lab}-credentials.csv"));
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            tracing::info!("{} downloaded the credentials of {lab}", caller.session.user);
            (
                [
                    (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (CONTENT_DISPOSITION, format!("attachment; filename=\"{lab}-credentials.csv\"")),
                    (CACHE_CONTROL, "no-store".to_string()),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => error_page(&app, StatusCode::NOT_FOUND, &format!("No {lab}-credentials.csv next to the server.")),
    }
}

/// `GET /labs/{lab}/logins`: one slip per student to print (name, login, password, this
/// page's address), for the lab's instructor; from the credentials file `stand up` wrote.
pub async fn logins(State(app): State<Arc<App>>, headers: HeaderMap, Path(lab): Path<String>) -> Response {
    let (caller, class) =
        match instructor_of(&app, &headers, &lab, "Only the lab's instructor may print its logins.").await {
            Ok(x) => x,
            Err(resp) => return resp,
        };
    let path = app.config.credentials_dir.join(format!("{lab}-credentials.csv"));
    let rows = match crate::apply::credentials::read(&path) {
        Ok(rows) if !rows.is_empty() => rows,
        Ok(_) => {
            let msg = format!("No {lab}-credentials.csv with students next to the server: `stand up` writes it.");
            return error_page(&app, StatusCode::NOT_FOUND, &msg);
        }
        Err(e) => {
            tracing::error!("{e}");
            return error_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The credentials file cannot be read; the server log says why.",
            );
        }
    };
    // The lab's students now, named as PVE knows them when the file does not say.
    let students: Vec<&StandView> = class.stands.iter().filter(|s| s.lab == lab).collect();
    let slips: Vec<Credential> = rows
        .into_iter()
        .filter_map(|mut c| {
            let stand = students.iter().find(|s| s.user == c.user)?;
            c.name = c.name.or_else(|| stand.name.clone());
            Some(c)
        })
        .collect();
    let missing = students.len() - slips.len();
    let scheme = if app.config.tls { "https" } else { "http" };
    let url = headers.get(HOST).and_then(|h| h.to_str().ok()).map(|host| format!("{scheme}://{host}/"));
    tracing::info!("{} printed the logins of {lab}", caller.session.user);
    match logins_page(&lab, &by_name(slips), url.as_deref(), missing) {
        Ok(html) => ([(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-store")], html).into_response(),
        Err(e) => {
            tracing::error!("rendering the logins of {lab}: {e:#}");
            error_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be rendered; the server log says why.",
            )
        }
    }
}

/// `GET /assets/{file}`: the stylesheet and the small script.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", include_str!("assets/style.css")),
        "app.js" => ("text/javascript; charset=utf-8", include_str!("assets/app.js")),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "max-age=3600")], body).into_response()
}
