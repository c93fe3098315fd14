//! The admin web pages, rendered on the server (no JavaScript needed): sign-in, status, the
//! channel mapping editor with a preview, SKU lookup, dead letters, and reconcile.
//!
//! Paths: `/admin/` (status), `/admin/login`, `/admin/logout`, and `/admin/ui/...`. They sit
//! beside the JSON API (`/admin/status`, `/admin/channels`, ...) without sharing a path, so a
//! JSON client never gets a page and a browser never needs the bearer token. Pages take the
//! session cookie only, the JSON API the bearer token only, so a cookie never authorises an API
//! call that a form could forge; every form that changes something carries the CSRF token.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use minijinja::Environment;
use serde::Serialize;
use serde_json::{json, Value};

use super::health::{age, now_ms, snapshot};
use super::lookup::{preview, sku_report, warehouse_tree, ShopSide};
use super::session;
use crate::channels::WarehouseRow;
use crate::config::{Channel, ConfigError, Policy};
use crate::state::AppState;
use crate::store::DeadTarget;
use crate::telemetry::error_chain;

/// The page templates, parsed once per server worker.
pub(crate) struct Pages {
    env: Environment<'static>,
}

impl Pages {
    fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("message.html", include_str!("templates/message.html")),
            ("status.html", include_str!("templates/status.html")),
            ("channels.html", include_str!("templates/channels.html")),
            ("sku.html", include_str!("templates/sku.html")),
            ("dead.html", include_str!("templates/dead.html")),
        ] {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, Refusal> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| Refusal::Broken(error_chain(&e)))
    }

    fn page(&self, status: StatusCode, name: &str, ctx: Value) -> Result<HttpResponse, Refusal> {
        Ok(html(status, self.render(name, ctx)?))
    }
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(body)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Why a page was not shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("sign in first")]
    SignIn,
    #[error("the admin pages are disabled: set server.admin_token (or SHOPRELAY_ADMIN_TOKEN)")]
    Disabled,
    #[error("this form has no valid security token (it may be from an old page): go back, reload the page and try again")]
    Csrf,
    #[error("{0}")]
    Bad(String),
    #[error("the page could not be made: {0}")]
    Broken(String),
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::Disabled | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Bad(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self, Self::SignIn) {
            return see_other("/admin/login");
        }
        let title = match self {
            Self::Csrf => "Form refused",
            Self::Disabled => "Admin pages disabled",
            _ => "Something went wrong",
        };
        // Plain and escaped by hand: this must work even when a template does not.
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        html(
            self.status_code(),
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · shoprelay admin</title></head><body><h1>{t}</h1><p id=\"message\">{m}</p><p><a href=\"/admin/\">Back to the status page</a></p></body></html>",
                t = esc(title),
                m = esc(&self.to_string())
            ),
        )
    }
}

/// A signed-in admin: the session and the CSRF token its forms carry.
struct Signed {
    csrf: String,
}

fn unix_secs() -> u64 {
    now_ms() / 1000
}

fn admin_token(state: &AppState) -> Result<&crate::config::Secret, Refusal> {
    state
        .settings
        .server
        .admin_token
        .as_ref()
        .ok_or(Refusal::Disabled)
}

fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Signed, Refusal> {
    let token = admin_token(state)?;
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
        .filter(|v| session::valid(token, v, unix_secs()))
        .ok_or(Refusal::SignIn)?;
    Ok(Signed {
        csrf: session::csrf(token, cookie),
    })
}

/// The fields of a url-encoded form, in order (a name may repeat).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A signed-in admin's form, its CSRF token checked.
fn signed_form(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Signed, Form), Refusal> {
    let signed = signed_in(req, state)?;
    let form = Form::parse(body);
    match form.get("csrf") {
        Some(given) if session::same(given, &signed.csrf) => Ok((signed, form)),
        _ => {
            tracing::warn!(
                path = req.path(),
                "admin form refused: missing or wrong CSRF token"
            );
            Err(Refusal::Csrf)
        }
    }
}

fn secure_cookie(state: &AppState) -> bool {
    state
        .settings
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.trim_start().to_ascii_lowercase().starts_with("https://"))
}

async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    admin_token(&state)?;
    if signed_in(&req, &state).is_ok() {
        return Ok(see_other("/admin/"));
    }
    pages.page(StatusCode::OK, "login.html", json!({}))
}

async fn login(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let token = admin_token(&state)?;
    let form = Form::parse(&body);
    let given = form.get("token").unwrap_or_default();
    if !session::same(given, token.expose()) {
        tracing::warn!("admin sign-in refused: wrong token");
        return pages.page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            json!({"error": "That is not the admin token."}),
        );
    }
    tracing::info!("admin signed in");
    let value = session::issue(token, unix_secs());
    let mut resp = see_other("/admin/");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(Some(&value), secure_cookie(&state)))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    signed_form(&req, &state, &body)?;
    let mut resp = see_other("/admin/login");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None, secure_cookie(&state))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

fn ago(now: u64, at: Option<u64>) -> String {
    match at {
        Some(t) => format!("{} ago", age(now.saturating_sub(t))),
        None => "none since the relay started".into(),
    }
}

fn queue_label(name: &str) -> &'static str {
    match name {
        "inbox" => "webhooks received, not yet processed",
        "dirty" => "items waiting for read-back from ERPNext",
        "dirty_documents" => "delivery notes and shipments waiting for read-back",
        "outbox" => "levels waiting for the shop",
        "shipment_outbox" => "shipments waiting for the shop",
        "dead" => "dead letters",
        _ => "other",
    }
}

/// A UTC timestamp `YYYY-MM-DD HH:MM:SS` for milliseconds since the epoch.
fn utc(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = crate::model::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        (t % 3600) / 60,
        t % 60
    )
}

async fn status_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let h = snapshot(&state)
        .await
        .map_err(|e| Refusal::Broken(error_chain(&e)))?;
    let now = h.now_ms;
    let mut problems = Vec::new();
    if !h.erpnext.reachable {
        problems.push("ERPNext is unreachable".to_string());
    }
    if !h.shop.reachable {
        problems.push("the shop is unreachable".to_string());
    }
    if h.dead_letters > 0 {
        problems.push(format!("{} dead letter(s)", h.dead_letters));
    }
    let running = h.reconcile.running.is_some() || h.reconcile.requested_ms.is_some();
    let (orders_owed, orders_dead) = state.store.order_depths();
    let queues: Vec<Value> = h
        .queues
        .iter()
        .map(|q| {
            json!({
                "label": queue_label(q.name),
                "depth": q.depth,
                "age": q.oldest_age_ms.map(age).unwrap_or_else(|| "-".into()),
            })
        })
        .collect();
    pages.page(
        StatusCode::OK,
        "status.html",
        json!({
            "csrf": signed.csrf,
            "nav": "status",
            "refresh": if running { Some(1) } else { None },
            "h": {
                "healthy": h.ok(),
                "problems": problems,
                "erpnext": h.erpnext,
                "shop": h.shop,
                "last_webhook": ago(now, h.last_webhook_ms),
                "last_push": ago(now, h.last_push_ms),
                "queues": queues,
                "dead_letters": h.dead_letters,
                "watermark": h.reconcile_watermark,
                "reconcile": h.reconcile,
                "last_pass_ago": h.reconcile.last.as_ref().map(|l| age(now.saturating_sub(l.finished_ms))),
                "checked": utc(now),
                "orders_owed": orders_owed,
                "orders_dead": orders_dead,
            },
        }),
    )
}

async fn reconcile(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let (_, form) = signed_form(&req, &state, &body)?;
    let full = form.get("full") == Some("on");
    state.monitor.pass_requested();
    state.reconcile.request(full);
    tracing::info!(full, "reconcile pass requested by an admin");
    Ok(see_other("/admin/"))
}

// ---- dead letters ----

fn describe_dead(target: &DeadTarget) -> String {
    match target {
        DeadTarget::Levels { channel, levels } => {
            let shown: Vec<String> = levels
                .iter()
                .take(10)
                .map(|(sku, v)| format!("{sku} = {v}"))
                .collect();
            let more = levels.len().saturating_sub(10);
            format!(
                "levels on channel {channel}: {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        }
        DeadTarget::Shipment { op } => format!(
            "shipment {} of order {} ({})",
            op.shipment_id,
            op.order_id,
            if op.is_cancelled() {
                "cancelled"
            } else {
                "shipped"
            }
        ),
    }
}

async fn dead_page(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let letters: Vec<Value> = state
        .store
        .dead_letters()
        .await
        .map_err(|e| Refusal::Broken(error_chain(&e)))?
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "when": utc(d.at_ms),
                "what": describe_dead(&d.target),
                "status": d.status.map_or_else(|| "no answer".to_string(), |s| s.to_string()),
                "response": d.response,
                "attempts": d.attempts,
            })
        })
        .collect();
    let done = match (query.get("done").map(String::as_str), query.get("n")) {
        (Some("retry"), Some(n)) => Some(format!("{n} dead letter(s) queued again for the shop.")),
        (Some("discard"), Some(n)) => Some(format!("{n} dead letter(s) discarded.")),
        _ => None,
    };
    pages.page(
        StatusCode::OK,
        "dead.html",
        json!({"csrf": signed.csrf, "nav": "dead", "letters": letters, "done": done}),
    )
}

async fn dead_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let (_, form) = signed_form(&req, &state, &body)?;
    let requeue = match form.get("action") {
        Some("retry") => true,
        Some("discard") => false,
        _ => return Err(Refusal::Bad("action must be retry or discard".into())),
    };
    let id = match form.get("id") {
        Some("all") => None,
        Some(n) => Some(
            n.parse::<u64>()
                .map_err(|_| Refusal::Bad(format!("`{n}` is not a dead letter id")))?,
        ),
        None => return Err(Refusal::Bad("name a dead letter (id) or all".into())),
    };
    let done = super::settle_dead(&state, id, requeue)
        .await
        .map_err(|e| match e {
            // An unknown id is the form's fault; a store that fails is the relay's.
            super::AdminError::NotFound(_) => Refusal::Bad(e.to_string()),
            other => Refusal::Broken(error_chain(&other)),
        })?;
    Ok(see_other(&format!(
        "/admin/ui/dead-letters?done={}&n={}",
        if requeue { "retry" } else { "discard" },
        done.len()
    )))
}

// ---- SKU lookup ----

fn shop_text(side: &ShopSide) -> String {
    match side {
        ShopSide::NeverSent => "nothing yet".into(),
        ShopSide::Sent { value } => format!("{value} (accepted)"),
        ShopSide::Waiting { value } => format!("{value} waiting to be sent"),
        ShopSide::DeadLetter { value, dead_letter } => {
            format!("{value} refused by the shop (dead letter {dead_letter})")
        }
    }
}

async fn sku_page(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let sku = query
        .get("sku")
        .map(|s| s.trim())
        .unwrap_or_default()
        .to_owned();
    let (report, error) = if sku.is_empty() {
        (None, None)
    } else {
        match sku_report(&state, &sku).await {
            Ok(r) => {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                if let Some(list) = v["channels"].as_array_mut() {
                    for (c, r) in list.iter_mut().zip(&r.channels) {
                        c["shop_text"] = json!(shop_text(&r.shop));
                    }
                }
                (Some(v), None)
            }
            Err(e) => (None, Some(error_chain(&e))),
        }
    };
    pages.page(
        StatusCode::OK,
        "sku.html",
        json!({"csrf": signed.csrf, "nav": "sku", "sku": sku, "r": report, "error": error}),
    )
}

// ---- channels ----

const POLICIES: [(&str, &str); 3] = [
    ("actual_minus_reserved", "actual minus reserved (default)"),
    ("actual", "actual"),
    ("projected", "projected"),
];

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::ActualMinusReserved => "actual_minus_reserved",
        Policy::Actual => "actual",
        Policy::Projected => "projected",
    }
}

/// One channel as the form shows it.
#[derive(Debug, Clone, Default, Serialize)]
struct Row {
    index: usize,
    new: bool,
    name: String,
    warehouses: BTreeSet<String>,
    other: String,
    policy: String,
    buffer: String,
    delete: bool,
    errors: BTreeMap<&'static str, String>,
}

fn blank_row(index: usize) -> Row {
    Row {
        index,
        new: true,
        policy: "actual_minus_reserved".into(),
        buffer: "0".into(),
        ..Row::default()
    }
}

/// A warehouse option: the tree, depth first, each name indented by its depth.
#[derive(Debug, Clone, Serialize)]
struct TreeOption {
    name: String,
    indent: String,
    group: bool,
}

fn tree_options(tree: &[WarehouseRow]) -> Vec<TreeOption> {
    let names: BTreeSet<&str> = tree.iter().map(|w| w.name.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&WarehouseRow>> = BTreeMap::new();
    for w in tree {
        let parent = w
            .parent_warehouse
            .as_deref()
            .filter(|p| names.contains(p) && *p != w.name);
        children.entry(parent).or_default().push(w);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(&WarehouseRow, usize)> = children
        .get(&None)
        .map(|l| l.iter().rev().map(|w| (*w, 0)).collect())
        .unwrap_or_default();
    while let Some((w, depth)) = stack.pop() {
        if !seen.insert(w.name.as_str()) {
            continue; // a cycle in a broken tree
        }
        out.push(TreeOption {
            name: w.name.clone(),
            indent: "\u{a0}\u{a0}\u{a0}".repeat(depth),
            group: w.is_group == 1,
        });
        if let Some(kids) = children.get(&Some(w.name.as_str())) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    out
}

fn rows_in_force(channels: &[Channel], tree: &BTreeSet<&str>) -> Vec<Row> {
    let mut rows: Vec<Row> = channels
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let (picked, other): (Vec<&String>, Vec<&String>) =
                c.warehouses.iter().partition(|w| tree.contains(w.as_str()));
            Row {
                index,
                new: false,
                name: c.name.clone(),
                warehouses: picked.into_iter().cloned().collect(),
                other: other
                    .into_iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
                policy: policy_name(c.policy).into(),
                buffer: c.buffer.to_string(),
                delete: false,
                errors: BTreeMap::new(),
            }
        })
        .collect();
    rows.push(blank_row(rows.len()));
    rows
}

/// The rows of a posted form.
fn rows_posted(form: &Form) -> Vec<Row> {
    let n = form
        .get("rows")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(200);
    (0..n)
        .map(|i| {
            let f = |k: &str| {
                form.get(&format!("ch{i}.{k}"))
                    .unwrap_or_default()
                    .to_owned()
            };
            Row {
                index: i,
                new: false,
                name: f("name").trim().to_owned(),
                warehouses: form.all(&format!("ch{i}.wh")).map(str::to_owned).collect(),
                other: f("wh_other"),
                policy: f("policy"),
                buffer: f("buffer").trim().to_owned(),
                delete: f("delete") == "on",
                errors: BTreeMap::new(),
            }
        })
        .collect()
}

/// A row nobody filled in (the blank "add a channel" row left empty).
fn untouched(r: &Row) -> bool {
    r.name.is_empty() && r.warehouses.is_empty() && r.other.trim().is_empty()
}

/// Turns the rows into channels, writing each problem next to its field. Returns the channels
/// when there is no problem.
fn channels_of(rows: &mut [Row]) -> Result<Vec<Channel>, Option<String>> {
    let mut channels = Vec::new();
    let mut origin = Vec::new();
    let mut bad = false;
    for r in rows.iter_mut() {
        if r.delete || untouched(r) {
            continue;
        }
        let policy = match r.policy.as_str() {
            "actual_minus_reserved" | "" => Policy::ActualMinusReserved,
            "actual" => Policy::Actual,
            "projected" => Policy::Projected,
            other => {
                r.errors
                    .insert("policy", format!("`{other}` is not a policy"));
                bad = true;
                Policy::ActualMinusReserved
            }
        };
        let buffer = if r.buffer.is_empty() {
            0.0
        } else {
            match r.buffer.parse::<f64>() {
                Ok(b) => b,
                Err(_) => {
                    r.errors
                        .insert("buffer", "must be a number of 0 or more".into());
                    bad = true;
                    0.0
                }
            }
        };
        let mut warehouses: Vec<String> = r.warehouses.iter().cloned().collect();
        for w in r.other.lines().map(str::trim).filter(|w| !w.is_empty()) {
            if !warehouses.iter().any(|x| x == w) {
                warehouses.push(w.to_owned());
            }
        }
        channels.push(Channel {
            name: r.name.clone(),
            warehouses,
            policy,
            buffer,
        });
        origin.push(r.index);
    }
    if let Err(ConfigError::Invalid { key, reason }) = crate::config::validate_channels(&channels) {
        // `channels[i].field`: put the reason next to that field of that row.
        let place = key
            .strip_prefix("channels[")
            .and_then(|k| k.split_once("]."))
            .and_then(|(i, field)| Some((i.parse::<usize>().ok()?, field)));
        match place {
            Some((i, field)) if i < origin.len() => {
                let field: &'static str = match field {
                    "name" => "name",
                    "warehouses" => "warehouses",
                    "policy" => "policy",
                    _ => "buffer",
                };
                if let Some(row) = rows.iter_mut().find(|r| r.index == origin[i]) {
                    row.errors.entry(field).or_insert(reason);
                }
            }
            _ => return Err(Some(format!("{key} {reason}"))),
        }
        return Err(None);
    }
    if bad {
        Err(None)
    } else {
        Ok(channels)
    }
}

async fn channels_context(state: &AppState, csrf: &str, rows: &[Row], extra: Value) -> Value {
    let tree = tree_options(&warehouse_tree(state).await.unwrap_or_default());
    let overridden = state.channels.overridden().await.unwrap_or(false);
    let mut ctx = json!({
        "csrf": csrf,
        "nav": "channels",
        "rows": rows,
        "select_size": tree.len().clamp(1, 10),
        "tree": tree,
        "policies": POLICIES,
        "source": if overridden { "admin" } else { "file" },
    });
    if let (Some(c), Some(e)) = (ctx.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    ctx
}

async fn channels_page(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
) -> Result<HttpResponse, Refusal> {
    let signed = signed_in(&req, &state)?;
    let tree = warehouse_tree(&state).await.unwrap_or_default();
    let names: BTreeSet<&str> = tree.iter().map(|w| w.name.as_str()).collect();
    let rows = rows_in_force(&state.channels.configured(), &names);
    let saved = match query.get("saved").map(String::as_str) {
        Some("now") => Some("Saved. A full reconcile pass is re-pricing every item.".to_string()),
        Some("later") => Some(
            "Saved. ERPNext did not answer, so the mapping is resolved and re-priced once it does."
                .to_string(),
        ),
        _ => None,
    };
    let ctx = channels_context(&state, &signed.csrf, &rows, json!({"saved": saved})).await;
    pages.page(StatusCode::OK, "channels.html", ctx)
}

async fn channels_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let (signed, form) = signed_form(&req, &state, &body)?;
    let mut rows = rows_posted(&form);
    let preview_items: Vec<String> = form
        .get("preview")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .take(20)
        .map(str::to_owned)
        .collect();
    let parsed = channels_of(&mut rows);
    // The blank row stays the "add a channel" row when it was left empty.
    for r in rows.iter_mut() {
        r.new = untouched(r)
            && r.index + 1 == form.get("rows").and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    let mut extra = json!({"preview_items": preview_items.join(" ")});
    match (parsed, form.get("action")) {
        (Ok(channels), Some("save")) => {
            let applied = super::put_in_force(&state, Some(channels))
                .await
                .map_err(|e| Refusal::Broken(error_chain(&e)))?;
            return Ok(see_other(if applied.is_ok() {
                "/admin/ui/channels?saved=now"
            } else {
                "/admin/ui/channels?saved=later"
            }));
        }
        (Ok(channels), _) => match preview(&state, &channels, &preview_items).await {
            Ok(p) if p.is_empty() => {
                extra["preview_error"] = json!("Name one or more items to see their levels.")
            }
            Ok(p) => extra["preview"] = json!(p),
            Err(e) => extra["preview_error"] = json!(format!("no preview: {}", error_chain(&e))),
        },
        (Err(general), _) => {
            extra["general_error"] = json!(general.unwrap_or_else(|| {
                "Nothing was saved: correct the fields marked below.".into()
            }));
        }
    }
    let status = if extra.get("general_error").is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = channels_context(&state, &signed.csrf, &rows, extra).await;
    pages.page(status, "channels.html", ctx)
}

async fn to_status() -> HttpResponse {
    see_other("/admin/")
}

/// Registers the pages. Each server worker parses the templates once.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    match Pages::new() {
        Ok(pages) => {
            cfg.app_data(web::Data::new(pages));
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "the admin page templates do not parse")
        }
    }
    cfg.route("/admin", web::get().to(to_status))
        .route("/admin/", web::get().to(status_page))
        .route("/admin/login", web::get().to(login_page))
        .route("/admin/login", web::post().to(login))
        .route("/admin/logout", web::post().to(logout))
        .route("/admin/ui/reconcile", web::post().to(reconcile))
        .route("/admin/ui/channels", web::get().to(channels_page))
        .route("/admin/ui/channels", web::post().to(channels_post))
        .route("/admin/ui/sku", web::get().to(sku_page))
        .route("/admin/ui/dead-letters", web::get().to(dead_page))
        .route("/admin/ui/dead-letters", web::post().to(dead_action));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        assert!(Pages::new().is_ok());
    }

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn problems_are_written_next_to_their_field() {
        let f = form(&[
            ("rows", "3"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch0.buffer", "two"),
            ("ch1.name", "web"),
            ("ch1.wh_other", "Transit - ACME"),
            ("ch2.name", ""),
        ]);
        let mut rows = rows_posted(&f);
        assert_eq!(channels_of(&mut rows), Err(None));
        assert_eq!(
            rows[0].errors.get("buffer").map(String::as_str),
            Some("must be a number of 0 or more")
        );
        let mut rows = rows_posted(&form(&[
            ("rows", "2"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch1.name", "web"),
            ("ch1.wh_other", "Transit - ACME"),
        ]));
        assert_eq!(channels_of(&mut rows), Err(None));
        assert!(
            rows[1].errors["name"].contains("used by two channels"),
            "{:?}",
            rows[1].errors
        );
    }

    #[test]
    fn deleted_and_blank_rows_are_left_out() {
        let mut rows = rows_posted(&form(&[
            ("rows", "3"),
            ("ch0.name", "web"),
            ("ch0.wh", "Stores - ACME"),
            ("ch0.wh", "Finished Goods - ACME"),
            ("ch0.policy", "actual"),
            ("ch0.buffer", "1.5"),
            ("ch1.name", "old"),
            ("ch1.wh", "Stores - ACME"),
            ("ch1.delete", "on"),
            ("ch2.name", ""),
        ]));
        let channels = channels_of(&mut rows).expect("valid");
        assert_eq!(channels.len(), 1);
        assert_eq!(
            channels[0].warehouses,
            vec!["Finished Goods - ACME", "Stores - ACME"]
        );
        assert_eq!(
            (channels[0].policy, channels[0].buffer),
            (Policy::Actual, 1.5)
        );
    }

    #[test]
    fn utc_times_read_as_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_764_410_700_000), "2025-11-29 10:05:00");
    }
}
