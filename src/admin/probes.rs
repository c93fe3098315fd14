//! The probes a supervisor and a scraper use, open to anyone who reaches the listener:
//! `/healthz` (alive), `/readyz` (ready for traffic), both answered by probing the store, and
//! `/metrics` (the Prometheus text).

use actix_web::{web, HttpResponse};

use crate::state::AppState;
use crate::telemetry::error_chain;

/// Alive unless the store cannot take a write and a flush (a passed probe answers for a second,
/// see [`crate::limits::PROBE_REUSE`]): a relay whose store failed and does not recover in
/// place answers 503 here, so a supervisor restarts it.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    probe_answer(&state, "ok", "store_failing").await
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    probe_answer(&state, "ready", "unavailable").await
}

/// Probes the store: 200 with status `up`, or 503 with status `down` and why.
async fn probe_answer(state: &AppState, up: &str, down: &str) -> HttpResponse {
    let probed = state
        .limits
        .probe
        .get(|| async {
            state.metrics.store_probed();
            state.store.probe().await.map_err(|e| error_chain(&e))
        })
        .await;
    match probed {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": up})),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": down, "error": e}))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.order_depths(state.store.order_depths());
    state
        .metrics
        .body_bytes_in_flight(state.limits.bodies.in_flight());
    match state.metrics.prometheus(&state.store.depths()) {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => HttpResponse::InternalServerError()
            .json(serde_json::json!({"error": format!("the metrics could not be encoded: {e}")})),
    }
}

/// Registers `/healthz`, `/readyz` and `/metrics`.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}
