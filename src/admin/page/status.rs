//! The status page (`GET /admin/`): health, queues with their ages, the reconcile passes, shop
//! orders owed and dead; and its button that requests a reconcile pass
//! (`POST /admin/ui/reconcile`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{see_other, signed_form, signed_in, utc, Pages, Refusal};
use crate::admin::ops::health::{age, snapshot};
use crate::admin::ops::request_reconcile;
use crate::state::AppState;
use crate::telemetry::error_chain;

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

pub(super) async fn status_page(
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

pub(super) async fn reconcile(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let (_, form) = signed_form(&req, &state, &body)?;
    let full = form.get("full") == Some("on");
    request_reconcile(&state, full);
    tracing::info!(full, "reconcile pass requested by an admin");
    Ok(see_other("/admin/"))
}
