//! The shop's HTTP client (shop contract 2): every push has a JSON body, an Idempotency-Key
//! derived from it, and Standard Webhooks signatures when `shop.signing_secret` is set; reads
//! carry only the bearer token.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Secret, ShopSettings};
use crate::http::encode_segment;
use crate::http::{authorized_client, ClientSetupError};
use crate::model::ShipmentOp;
use crate::signing::{standard_signature, standard_signatures};

/// A shop call that got no HTTP answer (connection refused, timeout, ...: always retried), or a
/// client that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("the shop could not be reached")]
    Transport(#[source] reqwest::Error),
    #[error("cannot set up the shop client")]
    Setup(#[from] ClientSetupError),
    /// `.` and `..` cannot be a path segment: a URL parser resolves them to another path.
    #[error(
        "`{0}` cannot be sent as a URL path segment (it would address another path of the shop)"
    )]
    DotSegment(String),
}

/// Whether `segment` is `.` or `..`, which URL parsers resolve away (even percent-encoded,
/// as `%2e`), so no request may carry one as an order or shipment id.
pub fn is_dot_segment(segment: &str) -> bool {
    matches!(segment, "." | "..")
}

/// The shop's answer, kept for retry decisions and dead letters.
#[derive(Debug, Clone)]
pub struct ShopAnswer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

/// The body of `POST /inventory/levels`.
#[derive(Debug, Serialize)]
pub struct LevelsBody<'a> {
    pub channel: &'a str,
    pub levels: Vec<LevelEntry<'a>>,
}

/// One absolute level.
#[derive(Debug, Serialize)]
pub struct LevelEntry<'a> {
    pub sku: &'a str,
    pub available: u64,
}

/// A client for the shop's API.
#[derive(Clone)]
pub struct ShopClient {
    http: reqwest::Client,
    base: String,
    signing_secrets: Vec<Secret>,
    max_answer_bytes: usize,
}

/// A deliberately wrong request, for `shop check` to prove the shop refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// As the relay sends it.
    None,
    /// Signed with a secret the shop does not have.
    WrongSignature,
    /// With a bearer token the shop does not have.
    WrongToken,
}

/// The Idempotency-Key of a request: the same body always gets the same key.
pub fn idempotency_key(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ShopClient {
    pub fn new(settings: &ShopSettings) -> Result<Self, ShopError> {
        let http = authorized_client(
            &format!("Bearer {}", settings.token.expose()),
            "shop token",
            settings.timeout_secs,
        )?;
        Ok(Self {
            http,
            base: settings.base_url.as_str().trim_end_matches('/').to_owned(),
            signing_secrets: settings.signing_secrets.clone(),
            max_answer_bytes: settings.max_answer_bytes,
        })
    }

    /// Sends one signed request with a JSON body (every push has one, so that Standard Webhooks
    /// libraries, which parse the payload as JSON, verify it).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<ShopAnswer, ShopError> {
        self.send_with(method, path, body, Tamper::None).await
    }

    /// Sends one signed request with a JSON body, tampered with as `tamper` says.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        tamper: Tamper,
    ) -> Result<ShopAnswer, ShopError> {
        let key = idempotency_key(method.as_str(), path, &body);
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("Idempotency-Key", &key);
        if tamper == Tamper::WrongToken {
            req = req.bearer_auth("shoprelay-check-wrong-token");
        }
        if !self.signing_secrets.is_empty() {
            let id = format!("msg_{key}");
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let signature = match tamper {
                Tamper::WrongSignature => standard_signature(
                    "whsec_c2hvcHJlbGF5LWNoZWNrLXdyb25nLXNlY3JldA==",
                    &id,
                    ts,
                    &body,
                ),
                _ => standard_signatures(&self.signing_secrets, &id, ts, &body),
            };
            req = req
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature);
        }
        answer(
            req.header(CONTENT_TYPE, "application/json").body(body),
            self.max_answer_bytes,
        )
        .await
    }

    /// A read (`GET`, only `shop check` reads): the bearer token, no body, no signature.
    pub async fn get(&self, path_and_query: &str) -> Result<ShopAnswer, ShopError> {
        answer(
            self.http.get(format!("{}{}", self.base, path_and_query)),
            self.max_answer_bytes,
        )
        .await
    }

    /// `PUT {base}/orders/{order_id}/shipments/{shipment_id}` with `op.body`.
    pub async fn send_shipment(&self, op: &ShipmentOp) -> Result<ShopAnswer, ShopError> {
        for id in [&op.order_id, &op.shipment_id] {
            if is_dot_segment(id) {
                return Err(ShopError::DotSegment(id.clone()));
            }
        }
        let path = format!(
            "/orders/{}/shipments/{}",
            encode_segment(&op.order_id),
            encode_segment(&op.shipment_id)
        );
        // Serializing a JSON value cannot fail.
        let body = serde_json::to_vec(&op.body).unwrap_or_default();
        self.send(reqwest::Method::PUT, &path, body).await
    }

    /// `POST {base}/inventory/levels` with absolute levels for one channel.
    pub async fn post_levels(
        &self,
        channel: &str,
        levels: &[(String, u64)],
    ) -> Result<ShopAnswer, ShopError> {
        let body = LevelsBody {
            channel,
            levels: levels
                .iter()
                .map(|(sku, available)| LevelEntry {
                    sku,
                    available: *available,
                })
                .collect(),
        };
        // Serializing plain strings and integers cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.send(reqwest::Method::POST, "/inventory/levels", bytes)
            .await
    }
}

/// Sends and reads the answer's first `max_bytes` bytes (`shop.max_answer_bytes`); the rest
/// is not read (the connection is dropped), so a huge answer costs no memory.
async fn answer(req: reqwest::RequestBuilder, max_bytes: usize) -> Result<ShopAnswer, ShopError> {
    let mut resp = req.send().await.map_err(ShopError::Transport)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut raw = Vec::new();
    let mut cut = false;
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = max_bytes - raw.len();
        if chunk.len() > room {
            raw.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        raw.extend_from_slice(&chunk);
    }
    let mut body = String::from_utf8_lossy(&raw).into_owned();
    if cut {
        body.push_str(&format!(" [answer cut at {max_bytes} bytes]"));
    }
    Ok(ShopAnswer {
        status,
        retry_after,
        body,
    })
}
