//! `POST /webhooks/shop/orders`: an order from the shop, signed with Standard Webhooks
//! (`shop.webhook_secret`, several while rotating; timestamps within 5 minutes), checked
//! against the `ShopOrder` schema with every problem listed, stored and flushed, and only then
//! answered 202. Deduplicated by `webhook-id` and by `order_id`; a newer state of a known order
//! (contract 3: `updated_at` newer than the state stored) is stored and answered 202 `updated`,
//! an older one 200 `stale`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{read_body, signature, InboundError};
use crate::metrics::OrderDelivery;
use crate::orders::queue::customer_key;
use crate::orders::state::instant;
use crate::orders::validate::validate;
use crate::state::AppState;
use crate::store::OrderReceipt;

/// How far `webhook-timestamp` may be from the relay's clock.
pub const TOLERANCE_SECS: u64 = 300;

/// A header's value; an empty one counts as missing.
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// The handler. Order: secret configured, size limit, signature, JSON, schema, store, flush,
/// answer.
pub(crate) async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, InboundError> {
    let result = accept(&req, payload, &state).await;
    if matches!(result, Err(InboundError::Store(_))) {
        state.limits.probe.forget();
    }
    state.metrics.order_delivery(match &result {
        Ok((_, OrderReceipt::New | OrderReceipt::Updated)) => OrderDelivery::Accepted,
        Ok(_) => OrderDelivery::Duplicate,
        Err(InboundError::Standard(_)) => OrderDelivery::RefusedSignature,
        Err(InboundError::InvalidOrder(_) | InboundError::Malformed(_)) => {
            OrderDelivery::RefusedInvalid
        }
        Err(_) => OrderDelivery::RefusedOther,
    });
    let (order_id, receipt) = result?;
    Ok(match receipt {
        OrderReceipt::New => HttpResponse::Accepted()
            .json(serde_json::json!({"status": "accepted", "order_id": order_id})),
        OrderReceipt::Updated => HttpResponse::Accepted()
            .json(serde_json::json!({"status": "updated", "order_id": order_id})),
        OrderReceipt::Stale => {
            HttpResponse::Ok().json(serde_json::json!({"status": "stale", "order_id": order_id}))
        }
        _ => HttpResponse::Ok()
            .json(serde_json::json!({"status": "duplicate", "order_id": order_id})),
    })
}

async fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(String, OrderReceipt), InboundError> {
    let secrets = &state.settings.shop.webhook_secrets;
    if secrets.is_empty() {
        return Err(InboundError::OrdersDisabled);
    }
    let (body, _lease) = read_body(req, payload, state).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let webhook_id = header(req, "webhook-id");
    signature::verify_standard(
        secrets,
        webhook_id,
        header(req, "webhook-timestamp"),
        header(req, "webhook-signature"),
        &body,
        now.as_secs(),
        TOLERANCE_SECS,
        state.settings.server.max_signature_entries,
    )?;
    let webhook_id = webhook_id.unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(InboundError::Malformed)?;
    let channels: Vec<String> = state
        .channels
        .configured()
        .into_iter()
        .map(|c| c.name)
        .collect();
    let order = validate(&value, &channels, &state.settings.order_limits)
        .map_err(InboundError::InvalidOrder)?;
    let receipt = state
        .store
        .receive_state(
            webhook_id,
            &order.order_id,
            &customer_key(&order.customer.email),
            &value,
            order
                .updated_at
                .as_deref()
                .and_then(instant)
                .and_then(|ns| i64::try_from(ns).ok()),
            now.as_millis() as u64,
        )
        .await?;
    // A duplicate waits too: its first delivery may still be on its way to disk.
    state.store.durable().await?;
    if let OrderReceipt::HookReused { order_id } = &receipt {
        return Err(InboundError::WebhookIdReused {
            webhook_id: webhook_id.to_owned(),
            order_id: order_id.clone(),
        });
    }
    if matches!(receipt, OrderReceipt::New | OrderReceipt::Updated) {
        state.wake_orders.notify_one();
    }
    Ok((order.order_id, receipt))
}
