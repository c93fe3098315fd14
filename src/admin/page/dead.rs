//! The dead letters page (`GET /admin/ui/dead-letters`): what the shop refused, with its
//! answer; and its form (`POST`) that retries or discards one letter or all of them.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{see_other, signed_form, signed_in, utc, Pages, Refusal};
use crate::admin::ops::{settle_dead, OpError};
use crate::state::AppState;
use crate::store::DeadTarget;
use crate::telemetry::error_chain;

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

pub(super) async fn dead_page(
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

pub(super) async fn dead_action(
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
    let done = settle_dead(&state, id, requeue)
        .await
        .map_err(|e| match e {
            // An unknown id is the form's fault; a store that fails is the relay's.
            OpError::NotFound(_) => Refusal::Bad(e.to_string()),
            other => Refusal::Broken(error_chain(&other)),
        })?;
    Ok(see_other(&format!(
        "/admin/ui/dead-letters?done={}&n={}",
        if requeue { "retry" } else { "discard" },
        done.len()
    )))
}
