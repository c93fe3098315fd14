//! The admin JSON API, for scripts and `shoprelay admin ...` (bearer `server.admin_token`, never
//! the pages' cookie): status, the outbox with its retry state, dead letters listed, retried and
//! discarded, the channels read, replaced and reset, a SKU looked up, a reconcile pass
//! requested, shop orders looked up and dead ones retried. A refusal is JSON
//! (`{"error": ...}`) with a fitting status.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::ops::health::snapshot;
use super::ops::lookup::{sku_report, LookupError};
use super::ops::{put_in_force, request_reconcile, settle_dead, OpError};
use super::session;
use crate::availability::Channel;
use crate::channels::ChannelError;
use crate::model::now_ms;
use crate::state::AppState;
use crate::store::{OrderRecord, OrderStatus, OutboxKind, RetryState, StoreError, Target};
use crate::telemetry::error_chain;

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin API is disabled: set server.admin_token (or SHOPRELAY_ADMIN_TOKEN)")]
    Disabled,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("too many wrong admin tokens from this address; try again in {0} s")]
    Throttled(u64),
    #[error("no dead letter with id {0}")]
    NotFound(u64),
    #[error("no order {0} was ever received")]
    OrderNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the channels could not be saved")]
    Channels(#[from] ChannelError),
    #[error("ERPNext could not be read")]
    Erp(#[source] crate::erpnext::ErpError),
}

impl From<LookupError> for AdminError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Store(e) => Self::Store(e),
            LookupError::Channels(e) => Self::Channels(e),
            LookupError::Erp(e) => Self::Erp(e),
        }
    }
}

impl From<OpError> for AdminError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound(id) => Self::NotFound(id),
            OpError::Store(e) => Self::Store(e),
            OpError::Channels(e) => Self::Channels(e),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Disabled => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) | Self::OrderNotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(e) | Self::Channels(ChannelError::Store(e)) => store_status(e),
            Self::Channels(ChannelError::Erp(_)) | Self::Erp(_) => StatusCode::BAD_GATEWAY,
            Self::Channels(ChannelError::Codec(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Self::Throttled(secs) = self {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        resp.json(serde_json::json!({"error": error_chain(self)}))
    }
}

/// A store that cannot write answers 503 (try again later); a record it cannot encode or
/// decode is a bug or damage, 500.
fn store_status(e: &StoreError) -> StatusCode {
    if e.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
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
    let client = req.peer_addr().map(|a| a.ip());
    state
        .limits
        .auth
        .check(client)
        .map_err(|wait| AdminError::Throttled(wait.as_secs().max(1)))?;
    // Hashed first, so not even the token's length leaks (as the sign-in form compares it).
    if session::same(given, token.expose()) {
        Ok(())
    } else {
        state.limits.auth.failed(client);
        tracing::warn!(client = ?client, "admin API refused: missing or wrong bearer token");
        Err(AdminError::Unauthorized)
    }
}

async fn status(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let health = snapshot(&state).await?;
    let m = &state.metrics;
    let last_event = m.last_event_ms();
    let last_push = m.last_push_ms();
    let (orders_owed, orders_dead) = state.store.order_depths();
    let watermark = state
        .store
        .meta(crate::erpnext::reconcile::WATERMARK)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "queues": state.store.depths(),
        "last_event_ms": last_event,
        "last_push_ms": last_push,
        "lag_ms": match (last_event, last_push) {
            (Some(e), Some(p)) if e > p => Some(e - p),
            _ => None,
        },
        "webhooks_accepted": m.accepted(),
        "levels_pushed": m.levels_pushed(),
        "channels": state.channels.configured(),
        "channels_resolved": state.channels.current_map().map(|m| m.channels.clone()),
        "reconcile_watermark": watermark,
        "orders": {"owed": orders_owed, "dead": orders_dead},
        "healthy": health.ok(),
        "erpnext": health.erpnext,
        "shop": health.shop,
        "queue_ages": health.queues,
        "dead_letters": health.dead_letters,
        "reconcile": health.reconcile,
    })))
}

/// At most this many outbox rows are listed.
const OUTBOX_LISTING: usize = 1000;

/// `GET /admin/outbox`: what is owed to the shop, per target, with its retry state.
async fn outbox(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let retries: std::collections::BTreeMap<Target, RetryState> =
        state.store.retry_states().await?.into_iter().collect();
    let retry = |t: &Target| {
        let r = retries.get(t);
        serde_json::json!({
            "attempts": r.map_or(0, |r| r.attempts),
            "next_attempt_ms": r.map(|r| r.next_attempt_ms),
            "last_error": r.and_then(|r| r.last_error.clone()),
        })
    };
    let mut rows = Vec::new();
    for channel in state.store.pending_groups(OutboxKind::Levels).await? {
        let pending = state
            .store
            .pending(OutboxKind::Levels, Some(&channel), OUTBOX_LISTING)
            .await?
            .len();
        let mut row = retry(&Target {
            kind: OutboxKind::Levels,
            group: channel.clone(),
            key: None,
        });
        row["kind"] = serde_json::json!("levels");
        row["channel"] = serde_json::json!(channel);
        row["levels"] = serde_json::json!(pending);
        rows.push(row);
    }
    for p in state
        .store
        .pending(OutboxKind::Shipments, None, OUTBOX_LISTING)
        .await?
    {
        let mut row = retry(&Target {
            kind: OutboxKind::Shipments,
            group: p.group.clone(),
            key: Some(p.key.clone()),
        });
        row["kind"] = serde_json::json!("shipment");
        row["order_id"] = serde_json::json!(p.group);
        row["shipment_id"] = serde_json::json!(p.key);
        rows.push(row);
    }
    let schedule: Vec<f64> = state
        .settings
        .shop
        .retry_schedule
        .iter()
        .map(|d| d.as_secs_f64())
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "retry_schedule_secs": schedule,
        "outbox": rows,
    })))
}

async fn dead_letters(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let orders: Vec<serde_json::Value> = state
        .store
        .dead_orders()
        .await?
        .iter()
        .map(order_view)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "dead_letters": state.store.dead_letters().await?,
        "orders": orders,
    })))
}

/// An order as the admin API shows it. "placing" (an attempt under way) shows as "received":
/// the order is still owed.
fn order_view(r: &OrderRecord) -> serde_json::Value {
    let status = match r.status {
        OrderStatus::Received | OrderStatus::Placing => "received",
        OrderStatus::Created => "created",
        OrderStatus::Dead => "dead",
    };
    serde_json::json!({
        "order_id": r.order_id,
        "status": status,
        "customer": r.customer,
        "sales_order": r.sales_order,
        "error": r.error,
        "attempts": r.attempts,
        "received_ms": r.received_ms,
        "next_attempt_ms": r.status.is_owed().then_some(r.next_attempt_ms),
        "updated_at": r.books.updated_at,
        "invoice": r.books.invoice,
        "payments": r.books.payments.iter().map(|p| serde_json::json!({
            "id": p.id,
            "method": p.method,
            "amount": p.amount,
            "payment_entry": p.entry,
            "booked": if p.unpaid { "not booked: an unpaid method" } else if p.entry.is_some() { "booked" } else { "owed" },
        })).collect::<Vec<_>>(),
        "owed": r.books.owed,
    })
}

async fn get_order(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let order_id = path.into_inner();
    match state.store.order(&order_id).await? {
        Some(record) => Ok(HttpResponse::Ok().json(order_view(&record))),
        None => Err(AdminError::OrderNotFound(order_id)),
    }
}

#[derive(serde::Deserialize)]
struct OrdersQuery {
    status: Option<String>,
}

/// `GET /admin/orders?status=dead|received`: the dead orders, or those still owed.
async fn list_orders(
    req: HttpRequest,
    query: web::Query<OrdersQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let records = match query.status.as_deref() {
        Some("dead") => state.store.dead_orders().await?,
        Some("received") => state.store.owed_orders().await?,
        other => {
            return Err(AdminError::Invalid(format!(
                "status must be `dead` or `received`, not {}",
                other.map_or("nothing".to_owned(), |s| format!("`{s}`"))
            )))
        }
    };
    let orders: Vec<serde_json::Value> = records.iter().map(order_view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "orders": orders })))
}

/// `POST /admin/orders/{order_id}/retry`: a dead order is placed again (after the data that
/// made ERPNext refuse it was fixed).
async fn retry_order(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let order_id = path.into_inner();
    let Some(record) = state.store.retry_order(&order_id, now_ms()).await? else {
        return Err(match state.store.order(&order_id).await? {
            None => AdminError::OrderNotFound(order_id),
            Some(r) => AdminError::Conflict(format!(
                "order {order_id} is not dead (it is {}); only a dead order is retried",
                order_view(&r)["status"].as_str().unwrap_or("?")
            )),
        });
    };
    state.store.durable().await?;
    state.wake_orders.notify_one();
    Ok(HttpResponse::Ok().json(order_view(&record)))
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
    settle_dead(&state, Some(id), requeue).await?;
    let verb = if requeue { "retried" } else { "discarded" };
    Ok(HttpResponse::Ok().json(serde_json::json!({ verb: id })))
}

async fn retry_all_dead(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let ids = settle_dead(&state, None, true).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "retried": ids })))
}

async fn discard_all_dead(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let ids = settle_dead(&state, None, false).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "discarded": ids })))
}

async fn sku(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let sku = path.into_inner();
    if sku.trim().is_empty() {
        return Err(AdminError::Invalid("name a SKU".into()));
    }
    let report = sku_report(&state, &sku).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(serde::Deserialize)]
struct ChannelsBody {
    channels: Vec<Channel>,
}

async fn channels_view(state: &AppState) -> Result<serde_json::Value, AdminError> {
    Ok(serde_json::json!({
        "source": if state.channels.overridden().await? { "admin" } else { "file" },
        "channels": state.channels.configured(),
        "resolved": state.channels.current_map().map(|m| m.channels.clone()),
    }))
}

async fn get_channels(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(channels_view(&state).await?))
}

/// [`put_in_force`], answered as JSON with the mapping now in force.
async fn apply_channels(
    state: &AppState,
    channels: Option<Vec<Channel>>,
) -> Result<HttpResponse, AdminError> {
    let applied = put_in_force(state, channels).await?;
    let mut view = channels_view(state).await?;
    view["reprice"] = serde_json::json!("a full reconcile pass re-prices every item");
    match applied {
        Ok(()) => Ok(HttpResponse::Ok().json(view)),
        Err(e) => {
            view["applied"] =
                serde_json::json!(format!("saved; resolved once ERPNext answers: {e}"));
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
    request_reconcile(&state, query.full);
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({"reconcile": "requested", "full": query.full})))
}

/// Registers the JSON API's routes.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/status", web::get().to(status))
        .route("/admin/outbox", web::get().to(outbox))
        .route("/admin/dead-letters", web::get().to(dead_letters))
        .route("/admin/reconcile", web::post().to(reconcile_now))
        .route("/admin/channels", web::get().to(get_channels))
        .route("/admin/channels", web::put().to(put_channels))
        .route("/admin/channels", web::delete().to(delete_channels))
        .route("/admin/dead-letters/retry", web::post().to(retry_all_dead))
        .route("/admin/dead-letters", web::delete().to(discard_all_dead))
        .route("/admin/orders", web::get().to(list_orders))
        .route("/admin/orders/{order_id}", web::get().to(get_order))
        .route(
            "/admin/orders/{order_id}/retry",
            web::post().to(retry_order),
        )
        .route("/admin/dead-letters/{id}/retry", web::post().to(retry_dead))
        .route("/admin/dead-letters/{id}", web::delete().to(discard_dead))
        .route("/admin/skus/{sku}", web::get().to(sku));
}
