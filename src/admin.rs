//! Health, readiness, Prometheus metrics, and the admin API (bearer `admin_token`): status,
//! dead letters listed, retried and discarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use subtle::ConstantTimeEq;

use crate::inbound::InboundError;
use crate::startup::AppState;
use crate::store::{Ingested, StoreError};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Counters of what the relay did since it started. Owned by the application, not global.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected_signature: AtomicU64,
    rejected_malformed: AtomicU64,
    rejected_too_large: AtomicU64,
    rejected_unknown: AtomicU64,
    store_failures: AtomicU64,
    levels_pushed: AtomicU64,
    push_failures: AtomicU64,
    dead_letters: AtomicU64,
    processor_errors: AtomicU64,
    shipments_pushed: AtomicU64,
    returns_skipped: AtomicU64,
    rows_without_order: AtomicU64,
    items_without_sku: AtomicU64,
    documents_failed: AtomicU64,
    last_event_ms: AtomicU64,
    last_push_ms: AtomicU64,
}

impl Metrics {
    pub(crate) fn count_inbound(&self, result: &Result<Ingested, InboundError>) {
        let counter = match result {
            Ok(Ingested::New) => {
                self.last_event_ms.store(now_ms(), Ordering::Relaxed);
                &self.accepted
            }
            Ok(Ingested::Duplicate) => &self.duplicates,
            Err(InboundError::Signature(_)) => &self.rejected_signature,
            Err(InboundError::Malformed(_) | InboundError::Read(_)) => &self.rejected_malformed,
            Err(InboundError::TooLarge { .. }) => &self.rejected_too_large,
            Err(InboundError::Unprocessable(_)) => &self.rejected_unknown,
            Err(InboundError::Store(_)) => &self.store_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn pushed(&self, levels: usize) {
        self.levels_pushed
            .fetch_add(levels as u64, Ordering::Relaxed);
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn shipment_pushed(&self) {
        self.shipments_pushed.fetch_add(1, Ordering::Relaxed);
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn return_skipped(&self) {
        self.returns_skipped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn rows_without_order(&self, n: usize) {
        self.rows_without_order
            .fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn document_failed(&self) {
        self.documents_failed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn items_without_sku(&self, n: usize) {
        self.items_without_sku
            .fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn push_failed(&self) {
        self.push_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn processor_error(&self) {
        self.processor_errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Webhooks accepted (new) since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Levels the shop accepted since start.
    pub fn levels_pushed(&self) -> u64 {
        self.levels_pushed.load(Ordering::Relaxed)
    }

    fn prometheus(&self, state: &AppState) -> String {
        let d = state.store.depths();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, labels: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
            ));
        };
        line(
            "shoprelay_webhooks_accepted_total",
            "counter",
            "ERPNext deliveries stored.",
            "",
            g(&self.accepted),
        );
        line(
            "shoprelay_webhooks_duplicate_total",
            "counter",
            "Repeated deliveries answered without effect.",
            "",
            g(&self.duplicates),
        );
        for (reason, c) in [
            ("signature", &self.rejected_signature),
            ("malformed", &self.rejected_malformed),
            ("too_large", &self.rejected_too_large),
            ("unknown_event", &self.rejected_unknown),
            ("storage", &self.store_failures),
        ] {
            line(
                "shoprelay_webhooks_rejected_total",
                "counter",
                "Deliveries refused, by reason.",
                &format!("{{reason=\"{reason}\"}}"),
                g(c),
            );
        }
        line(
            "shoprelay_levels_pushed_total",
            "counter",
            "Levels the shop accepted.",
            "",
            g(&self.levels_pushed),
        );
        line(
            "shoprelay_shipments_pushed_total",
            "counter",
            "Shipment PUTs and DELETEs the shop accepted.",
            "",
            g(&self.shipments_pushed),
        );
        line(
            "shoprelay_returns_skipped_total",
            "counter",
            "Return delivery notes (not shipments).",
            "",
            g(&self.returns_skipped),
        );
        line(
            "shoprelay_rows_without_order_total",
            "counter",
            "Delivery note rows with no Sales Order or no shop order id.",
            "",
            g(&self.rows_without_order),
        );
        line(
            "shoprelay_documents_failed_total",
            "counter",
            "Delivery Notes or Shipments skipped because ERPNext refused to give what they need (see the log).",
            "",
            g(&self.documents_failed),
        );
        line(
            "shoprelay_items_without_sku_total",
            "counter",
            "Items skipped because their Item has no value in erpnext.sku_field.",
            "",
            g(&self.items_without_sku),
        );
        line(
            "shoprelay_push_failures_total",
            "counter",
            "Push requests that will be retried.",
            "",
            g(&self.push_failures),
        );
        line(
            "shoprelay_dead_letters_total",
            "counter",
            "Push requests dead-lettered.",
            "",
            g(&self.dead_letters),
        );
        line(
            "shoprelay_processor_errors_total",
            "counter",
            "Processing steps that failed (ERPNext read-back).",
            "",
            g(&self.processor_errors),
        );
        for (q, v) in [
            ("inbox", d.inbox),
            ("dirty", d.dirty),
            ("outbox", d.outbox),
            ("dead", d.dead),
            ("dirty_documents", d.dirty_docs),
            ("shipment_outbox", d.shipment_outbox),
        ] {
            line(
                "shoprelay_queue_depth",
                "gauge",
                "Entries waiting, by queue.",
                &format!("{{queue=\"{q}\"}}"),
                v as u64,
            );
        }
        out
    }
}

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin API is disabled: set server.admin_token (or SHOPRELAY_ADMIN_TOKEN)")]
    Disabled,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("no dead letter with id {0}")]
    NotFound(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Disabled => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({"error": self.to_string()}))
    }
}

fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), AdminError> {
    let Some(token) = &state.settings.server.admin_token else {
        return Err(AdminError::Disabled);
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.meta("ready-probe") {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.prometheus(&state))
}

async fn status(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let m = &state.metrics;
    let last_event = m.last_event_ms.load(Ordering::Relaxed);
    let last_push = m.last_push_ms.load(Ordering::Relaxed);
    let opt = |v: u64| (v > 0).then_some(v);
    let watermark = state
        .store
        .meta(crate::erpnext::reconcile::WATERMARK)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "queues": state.store.depths(),
        "last_event_ms": opt(last_event),
        "last_push_ms": opt(last_push),
        "lag_ms": (last_event > last_push && last_push > 0).then(|| last_event - last_push),
        "webhooks_accepted": m.accepted(),
        "levels_pushed": m.levels_pushed(),
        "channels": state.processor.channels(),
        "channels_resolved": state.processor.current_map().map(|m| m.channels.clone()),
        "reconcile_watermark": watermark,
    })))
}

async fn dead_letters(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"dead_letters": state.store.dead_letters()?})))
}

async fn retry_dead(
    req: HttpRequest,
    path: web::Path<u64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    resolve_dead(req, path.into_inner(), state, true).await
}

async fn discard_dead(
    req: HttpRequest,
    path: web::Path<u64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    resolve_dead(req, path.into_inner(), state, false).await
}

/// Retries (re-queues) or discards one dead letter.
async fn resolve_dead(
    req: HttpRequest,
    id: u64,
    state: web::Data<AppState>,
    requeue: bool,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    if !state.store.resolve_dead(id, requeue)? {
        return Err(AdminError::NotFound(id));
    }
    state.store.durable().await?;
    if requeue {
        state.wake_pusher.notify_one();
    }
    let verb = if requeue { "retried" } else { "discarded" };
    Ok(HttpResponse::Ok().json(serde_json::json!({ verb: id })))
}

#[derive(serde::Deserialize)]
struct ChannelsBody {
    channels: Vec<crate::config::Channel>,
}

fn channels_view(state: &AppState) -> Result<serde_json::Value, AdminError> {
    let overridden = state
        .store
        .meta(crate::processor::CHANNELS_OVERRIDE_META)?
        .is_some();
    Ok(serde_json::json!({
        "source": if overridden { "admin" } else { "file" },
        "channels": state.processor.channels(),
        "resolved": state.processor.current_map().map(|m| m.channels.clone()),
    }))
}

async fn get_channels(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(channels_view(&state)?))
}

/// Puts `channels` in force (None: the file's again), persisted; every item is then re-priced
/// by a full reconcile pass.
async fn apply_channels(
    state: &AppState,
    channels: Option<Vec<crate::config::Channel>>,
) -> Result<HttpResponse, AdminError> {
    let in_force = match &channels {
        Some(list) => {
            let bytes = serde_json::to_vec(list).map_err(|e| AdminError::Store(e.into()))?;
            state
                .store
                .set_meta(crate::processor::CHANNELS_OVERRIDE_META, &bytes)?;
            list.clone()
        }
        None => {
            state
                .store
                .remove_meta(crate::processor::CHANNELS_OVERRIDE_META)?;
            state.settings.channels.clone()
        }
    };
    state.store.durable().await?;
    let applied = state.processor.set_channels(in_force).await;
    state.reconcile.request(true);
    let mut view = channels_view(state)?;
    view["reprice"] = serde_json::json!("a full reconcile pass re-prices every item");
    match applied {
        Ok(_) => Ok(HttpResponse::Ok().json(view)),
        Err(e) => {
            view["applied"] = serde_json::json!(format!(
                "saved; resolved once ERPNext answers: {}",
                crate::startup::error_chain(&e)
            ));
            Ok(HttpResponse::Accepted().json(view))
        }
    }
}

async fn put_channels(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let parsed: ChannelsBody = serde_json::from_slice(&body).map_err(|e| {
        AdminError::Invalid(format!("the body must be {{\"channels\": [...]}}: {e}"))
    })?;
    crate::config::validate_channels(&parsed.channels)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    apply_channels(&state, Some(parsed.channels)).await
}

async fn delete_channels(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    apply_channels(&state, None).await
}

#[derive(serde::Deserialize)]
struct ReconcileQuery {
    #[serde(default)]
    full: bool,
}

async fn reconcile_now(
    req: HttpRequest,
    query: web::Query<ReconcileQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    state.reconcile.request(query.full);
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({"reconcile": "requested", "full": query.full})))
}

/// Registers the health, metrics and admin routes.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/admin/status", web::get().to(status))
        .route("/admin/dead-letters", web::get().to(dead_letters))
        .route("/admin/reconcile", web::post().to(reconcile_now))
        .route("/admin/channels", web::get().to(get_channels))
        .route("/admin/channels", web::put().to(put_channels))
        .route("/admin/channels", web::delete().to(delete_channels))
        .route("/admin/dead-letters/{id}/retry", web::post().to(retry_dead))
        .route("/admin/dead-letters/{id}", web::delete().to(discard_dead));
}
