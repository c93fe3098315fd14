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
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let token = admin_token(&state)?;
    let client = req.peer_addr().map(|a| a.ip());
    if let Err(wait) = state.limits.auth.check(client) {
        let secs = wait.as_secs().max(1);
        let mut resp = pages.page(
            StatusCode::TOO_MANY_REQUESTS,
            "login.html",
            json!({"error": format!("Too many wrong tokens from this address: try again in {secs} s.")}),
        )?;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let form = Form::parse(&body);
    let given = form.get("token").unwrap_or_default();
    if !session::same(given, token.expose()) {
        state.limits.auth.failed(client);
        tracing::warn!(client = ?client, "admin sign-in refused: wrong token");
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
    let (signed, _) = signed_form(&req, &state, &body)?;
    // The cookie is signed, not stored: remember it as signed out (in the store too, so a
    // restart does not let it back in) until it would have expired.
    if let Some((id, expires)) = session::id_and_expiry(&signed.session) {
        let saved = state.limits.signed_out.add(id, expires, unix_secs());
        state
            .store
            .set_meta(crate::limits::SIGNED_OUT_META, &saved)
            .await
            .map_err(|e| Refusal::Broken(crate::telemetry::error_chain(&e)))?;
    }
    tracing::info!("admin signed out");
    let mut resp = see_other("/admin/login");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None, secure_cookie(&state))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
