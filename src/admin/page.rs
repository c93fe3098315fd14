//! The admin web pages, rendered on the server (no JavaScript needed): sign-in, status, the
//! channel mapping editor with a preview, SKU lookup, dead letters, and reconcile.
//!
//! Paths: `/admin/` (status), `/admin/login`, `/admin/logout`, and `/admin/ui/...`. They sit
//! beside the JSON API (`/admin/status`, `/admin/channels`, ...) without sharing a path, so a
//! JSON client never gets a page and a browser never needs the bearer token. Pages take the
//! session cookie only, the JSON API the bearer token only, so a cookie never authorises an API
//! call that a form could forge; every form that changes something carries the CSRF token.
//!
//! This file holds what every page shares (the templates, the signed-in check, forms and their
//! CSRF token, the refusal page); each page is a file of its own: `login`, `status`, `channels`,
//! `sku`, `dead`.

mod channels;
mod dead;
mod login;
mod sku;
mod status;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use minijinja::Environment;
use serde_json::Value;

use crate::admin::session;
use crate::config::Secret;
use crate::model::now_ms;
use crate::state::AppState;
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
        env.set_formatter(|out, state, value| {
            if let Some(text) = value.as_str().filter(|_| !value.is_safe()) {
                if let std::borrow::Cow::Owned(shown) = visible(text) {
                    return minijinja::escape_formatter(out, state, &minijinja::Value::from(shown));
                }
            }
            minijinja::escape_formatter(out, state, value)
        });
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

/// `text` with the characters that would show wrongly or hide text written as `[U+XXXX]`:
/// NUL and other control characters (but tab and line breaks) and the bidirectional
/// overrides, embeddings and isolates, which could turn an item name or an error around.
pub(crate) fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    format!("[U+{:04X}]", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
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
            visible(s)
                .replace('&', "&amp;")
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
    session: String,
    csrf: String,
}

fn unix_secs() -> u64 {
    now_ms() / 1000
}

fn admin_token(state: &AppState) -> Result<&Secret, Refusal> {
    state
        .settings
        .server
        .admin_token
        .as_ref()
        .ok_or(Refusal::Disabled)
}

fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Signed, Refusal> {
    let token = admin_token(state)?;
    let now = unix_secs();
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(session::from_cookie_header)
        .find(|v| {
            session::valid(token, v, now)
                && session::id_and_expiry(v)
                    .is_some_and(|(id, _)| !state.limits.signed_out.contains(id))
        })
        .ok_or(Refusal::SignIn)?;
    Ok(Signed {
        session: cookie.to_owned(),
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

async fn to_status() -> HttpResponse {
    see_other("/admin/")
}

/// Registers the pages. Each server worker parses the templates once.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    match Pages::new() {
        Ok(pages) => {
            cfg.app_data(web::Data::new(pages));
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "the admin page templates do not parse")
        }
    }
    cfg.route("/admin", web::get().to(to_status))
        .route("/admin/", web::get().to(status::status_page))
        .route("/admin/login", web::get().to(login::login_page))
        .route("/admin/login", web::post().to(login::login))
        .route("/admin/logout", web::post().to(login::logout))
        .route("/admin/ui/reconcile", web::post().to(status::reconcile))
        .route("/admin/ui/channels", web::get().to(channels::channels_page))
        .route(
            "/admin/ui/channels",
            web::post().to(channels::channels_post),
        )
        .route("/admin/ui/sku", web::get().to(sku::sku_page))
        .route("/admin/ui/dead-letters", web::get().to(dead::dead_page))
        .route("/admin/ui/dead-letters", web::post().to(dead::dead_action));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        assert!(Pages::new().is_ok());
    }

    #[test]
    fn bidi_and_nul_characters_are_shown_not_obeyed() {
        let pages = Pages::new().expect("pages");
        let html = pages
            .render(
                "login.html",
                serde_json::json!({"error": "SKU \u{202e}gpj.exe\u{0000} <b>"}),
            )
            .expect("render");
        assert!(
            html.contains("SKU [U+202E]gpj.exe[U+0000] &lt;b&gt;"),
            "{html}"
        );
        assert!(!html.contains('\u{202e}') && !html.contains('\u{0}'));
        assert_eq!(visible("plain\ttext"), "plain\ttext");
    }

    #[test]
    fn utc_times_read_as_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_764_410_700_000), "2025-11-29 10:05:00");
    }
}
