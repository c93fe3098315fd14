//! Shop orders in tests: a relay configuration that takes orders, signed order deliveries, the
//! admin view of an order, ERPNext's documents read over its REST API, and a proxy in front of
//! the emulator that can hold back ERPNext's answer to a Sales Order create.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use shoprelay::signing::standard_signature;
use shoprelay_testkit::erp::{API_KEY, API_SECRET};

/// The shop's order-signing secret.
pub const SHOP_SECRET: &str = shoprelay_testkit::SHOP_ORDER_SECRET;
/// An older secret the relay still accepts while the shop rotates.
pub const OLD_SHOP_SECRET: &str = "whsec_b2xkLXNob3Atc2VjcmV0LWZvci10ZXN0cw==";
/// The item every test order buys, stocked in Stores.
pub const CHAIR: &str = "CHAIR";

/// `relay_toml` text with the shop's order secrets (the current and a rotated-out one) and an
/// `[orders]` section that retries fast.
pub fn with_orders(toml: String) -> String {
    shoprelay_testkit::with_orders(&toml, &[OLD_SHOP_SECRET])
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A valid order of 2 chairs at 19.90 with shipping 4.90 for `email`.
pub fn order(order_id: &str, email: &str) -> Value {
    json!({
        "order_id": order_id,
        "channel": "web",
        "placed_at": "2026-11-26T09:12:44Z",
        "currency": "USD",
        "customer": {"email": email, "first_name": "Ada", "last_name": "Lovelace",
                     "phone": "+1 555 0100"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postcode": "12345",
                             "country": "US"},
        "lines": [{"sku": CHAIR, "qty": 2, "unit_price": 19.9}],
        "shipping": {"method": "UPS Ground", "amount": 4.9},
        "total": 44.7
    })
}

/// POSTs `body` to the relay's order endpoint signed with `secret` under `webhook_id` at
/// `timestamp`; returns the status and the JSON answer.
pub async fn post_signed(
    relay: &str,
    webhook_id: &str,
    timestamp: u64,
    secret: &str,
    body: &[u8],
) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{relay}/webhooks/shop/orders"))
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            standard_signature(secret, webhook_id, timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("POST /webhooks/shop/orders");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// POSTs an order signed now with the shop's secret.
pub async fn post_order(relay: &str, webhook_id: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("order JSON");
    post_signed(relay, webhook_id, now_secs(), SHOP_SECRET, &bytes).await
}

/// `GET /admin/orders/{order_id}` with `token` (None: no Authorization header).
pub async fn admin_order_as(relay: &str, order_id: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{relay}/admin/orders/{order_id}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let answer = req.send().await.expect("GET /admin/orders/{id}");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The order as the admin API shows it (the test token).
pub async fn admin_order(relay: &str, order_id: &str) -> Value {
    let (status, body) = admin_order_as(relay, order_id, Some("admin-token-0123456789")).await;
    assert_eq!(status, 200, "{order_id}: {body}");
    body
}

/// Documents of `doctype` in ERPNext (or the emulator) matching `filters`, with `fields`.
pub async fn erp_list(erp: &str, doctype: &str, filters: Value, fields: &[&str]) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{erp}/api/resource/{doctype}"))
        .header("Authorization", format!("token {API_KEY}:{API_SECRET}"))
        .query(&[
            ("filters", filters.to_string()),
            ("fields", json!(fields).to_string()),
            ("limit_page_length", "0".to_owned()),
        ])
        .send()
        .await
        .expect("ERPNext list");
    let status = answer.status();
    let body: Value = answer.json().await.expect("ERPNext list JSON");
    assert!(status.is_success(), "{doctype} list: {status} {body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// Sales Orders (not cancelled) that carry `order_id` in `po_no`.
pub async fn sales_orders_of(erp: &str, order_id: &str) -> Vec<Value> {
    erp_list(
        erp,
        "Sales Order",
        json!([["po_no", "=", order_id], ["docstatus", "<", 2]]),
        &["name", "customer", "docstatus", "grand_total"],
    )
    .await
}

/// A proxy in front of ERPNext that forwards everything, except that while `hold` is set it
/// forwards the first `POST /api/resource/Sales Order` (or another doctype) and never answers it (the relay is
/// left waiting, as if killed between ERPNext's create and its own record).
#[derive(Clone)]
pub struct HoldingProxy {
    pub url: String,
    pub hold: Arc<AtomicBool>,
    pub held: Arc<AtomicBool>,
    pub handle: actix_web::dev::ServerHandle,
}

struct ProxyState {
    target: String,
    /// The encoded resource path whose first create is held (`Sales%20Order`).
    doctype: String,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    http: reqwest::Client,
}

async fn forward(req: HttpRequest, body: web::Bytes, st: web::Data<ProxyState>) -> HttpResponse {
    let uri = req.uri().to_string();
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let resource = format!("/api/resource/{}", st.doctype);
    let creates_order = method == reqwest::Method::POST
        && uri.starts_with(&resource)
        && !uri.contains(&format!("{resource}/"));
    let mut out = st.http.request(method, format!("{}{uri}", st.target));
    for (name, value) in req.headers() {
        if name.as_str() != "host" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match out.body(body.to_vec()).send().await {
        Ok(a) => a,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.unwrap_or_default();
    if creates_order && status < 300 && st.hold.load(Ordering::SeqCst) {
        st.held.store(true, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    )
    .content_type("application/json")
    .body(bytes)
}

impl HoldingProxy {
    /// Starts a proxy to `target` (holding from the start).
    pub fn start(target: &str) -> Self {
        Self::holding(target, "Sales%20Order")
    }

    /// Starts a proxy to `target` that holds the answer to the first create of `doctype` (its
    /// path segment, encoded: `Sales%20Invoice`).
    pub fn holding(target: &str, doctype: &str) -> Self {
        let hold = Arc::new(AtomicBool::new(true));
        let held = Arc::new(AtomicBool::new(false));
        let data = web::Data::new(ProxyState {
            target: target.to_owned(),
            doctype: doctype.to_owned(),
            hold: hold.clone(),
            held: held.clone(),
            http: reqwest::Client::new(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let (port, handle) = shoprelay_testkit::spawn_server(listener, 2, move |cfg| {
            cfg.app_data(data.clone()).default_service(web::to(forward));
        })
        .expect("proxy");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            hold,
            held,
            handle,
        }
    }
}
