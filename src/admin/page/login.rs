//! The sign-in page (`GET`/`POST /admin/login`: the admin token, compared in constant time,
//! issues the session cookie) and signing out (`POST /admin/logout`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{admin_token, see_other, signed_form, signed_in, unix_secs, Form, Pages, Refusal};
use crate::admin::session;
use crate::state::AppState;

fn secure_cookie(state: &AppState) -> bool {
    state
        .settings
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.trim_start().to_ascii_lowercase().starts_with("https://"))
}

pub(super) async fn login_page(
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

pub(super) async fn login(
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

pub(super) async fn logout(
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
