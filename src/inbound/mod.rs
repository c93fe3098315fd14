//! Inbound webhooks: verify, parse, store durably, answer. One file per sender: ERPNext's
//! Webhook documents, and the shop's orders.

pub mod erpnext;
pub mod shop;
pub mod signature;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;

use crate::metrics::Rejection;
use crate::orders::validate::Refusal;
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// Why an inbound request was refused. Each kind maps to one status and a JSON body
/// `{"error": kind, "message": ...}` (the message with its causes); nothing is stored for any
/// of them.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error(transparent)]
    Standard(#[from] signature::StandardError),
    #[error("the relay takes no orders: shop.webhook_secret (or SHOPRELAY_SHOP_WEBHOOK_SECRET) is not set, so no order can be verified")]
    OrdersDisabled,
    #[error("the order is not valid: {}", refusal_text(.0))]
    InvalidOrder(Refusal),
    #[error("webhook-id {webhook_id} delivered order {order_id} before; every new order needs a new webhook-id")]
    WebhookIdReused {
        webhook_id: String,
        order_id: String,
    },
    #[error("the body is larger than the limit of {limit} bytes (server.max_body_bytes)")]
    TooLarge { limit: usize },
    #[error("the body did not arrive within {secs} s (server.body_timeout_secs)")]
    BodyTimeout { secs: u64 },
    #[error("the relay is reading too many request bodies at once (server.max_body_bytes_in_flight); send it again shortly")]
    Busy,
    #[error("the body is not valid JSON")]
    Malformed(#[source] serde_json::Error),
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The store failed (a full disk, an I/O error): Frappe may send it again.
    #[error("the event could not be stored; it was not accepted, send it again")]
    Store(#[from] StoreError),
    /// A bug: the parsed event could not be encoded for the inbox. Sending it again will not help.
    #[error("the event could not be encoded for the inbox (a bug in shoprelay)")]
    Encode(#[source] serde_json::Error),
}

/// The problems of a refused order in words: those listed, then how many more.
fn refusal_text(r: &Refusal) -> String {
    let mut text = r
        .problems
        .iter()
        .map(|p| {
            if p.field.is_empty() {
                p.problem.clone()
            } else {
                format!("{} {}", p.field, p.problem)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if r.not_listed > 0 {
        text.push_str(&format!("; and {} more problems", r.not_listed));
    }
    text
}

impl InboundError {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Standard(
                signature::StandardError::TooMany { .. } | signature::StandardError::TooLong { .. },
            ) => "signature_header_too_large",
            Self::Signature(_) | Self::Standard(_) => "invalid_signature",
            Self::OrdersDisabled => "orders_disabled",
            Self::InvalidOrder(_) => "invalid_order",
            Self::WebhookIdReused { .. } => "webhook_id_reused",
            Self::TooLarge { .. } => "payload_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::Busy => "busy",
            Self::Malformed(_) | Self::Read(_) => "malformed_body",
            Self::Unprocessable(_) => "unknown_event",
            Self::Store(_) => "storage_failed",
            Self::Encode(_) => "internal_error",
        }
    }

    /// How the refusal is counted in the metrics.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            Self::Signature(_) | Self::Standard(_) => Rejection::Signature,
            Self::InvalidOrder(_) | Self::WebhookIdReused { .. } => Rejection::Malformed,
            Self::OrdersDisabled => Rejection::Storage,
            Self::TooLarge { .. } | Self::Busy => Rejection::TooLarge,
            Self::BodyTimeout { .. } => Rejection::Malformed,
            Self::Malformed(_) | Self::Read(_) => Rejection::Malformed,
            Self::Unprocessable(_) => Rejection::UnknownEvent,
            Self::Store(_) => Rejection::Storage,
            Self::Encode(_) => Rejection::Internal,
        }
    }
}

impl ResponseError for InboundError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Standard(
                signature::StandardError::TooMany { .. } | signature::StandardError::TooLong { .. },
            ) => StatusCode::BAD_REQUEST,
            Self::Signature(_) | Self::Standard(_) => StatusCode::UNAUTHORIZED,
            Self::OrdersDisabled => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidOrder(_) => StatusCode::BAD_REQUEST,
            Self::WebhookIdReused { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Malformed(_) | Self::Read(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({
            "error": self.kind(),
            "message": error_chain(self),
        });
        if let Self::InvalidOrder(refusal) = self {
            body["problems"] = serde_json::json!(refusal.problems);
            if refusal.not_listed > 0 {
                body["problems_not_listed"] = serde_json::json!(refusal.not_listed);
            }
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, Self::Busy) {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        if matches!(self, Self::BodyTimeout { .. }) {
            // The rest of the body is not read: the connection cannot carry another request.
            resp.insert_header((actix_web::http::header::CONNECTION, "close"));
        }
        resp.json(body)
    }
}

/// Reads the whole body, refusing it (without reading on) once it passes
/// `server.max_body_bytes`, when it has not all arrived within `server.body_timeout_secs`
/// (408), or when the bodies being held at once would pass `server.max_body_bytes_in_flight`
/// (503). The lease holds the body's bytes in that budget until it is dropped.
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    state: &crate::state::AppState,
) -> Result<(Vec<u8>, crate::limits::BodyLease), InboundError> {
    let server = &state.settings.server;
    let secs = server.body_timeout_secs;
    let deadline = std::time::Duration::from_secs(secs);
    let mut lease = state.limits.bodies.lease();
    match tokio::time::timeout(
        deadline,
        read_within(req, payload, server.max_body_bytes, &mut lease),
    )
    .await
    {
        Ok(body) => Ok((body?, lease)),
        Err(_) => Err(InboundError::BodyTimeout { secs }),
    }
}

async fn read_within(
    req: &HttpRequest,
    mut payload: actix_web::web::Payload,
    limit: usize,
    lease: &mut crate::limits::BodyLease,
) -> Result<Vec<u8>, InboundError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(InboundError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| InboundError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(InboundError::TooLarge { limit });
        }
        if !lease.grow(chunk.len()) {
            return Err(InboundError::Busy);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
