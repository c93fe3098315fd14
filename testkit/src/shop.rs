//! The reference shop: implements the shop contract (version 2, shop_adapter_spec/) in memory,
//! keeps absolute levels and shipments (a cancelled one stays, with `"status": "cancelled"`),
//! checks every header, parameter and field the contract requires (400 or 422 with a JSON error
//! otherwise), verifies the bearer token and (when given secrets) Standard Webhooks signatures,
//! records every request, and can be told to fail or to have one of the defects `shop check`
//! must catch. `shoprelay shop mock` runs it standalone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The bearer token the mock shop expects.
pub const SHOP_TOKEN: &str = "shop-token";

/// One request the shop received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub at: Instant,
}

impl Recorded {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A canned answer for the next request.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Scripted {
    /// An answer with a status and a JSON error body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: json!({"error": format!("scripted {status}")}).to_string(),
        }
    }
    /// Adds a header.
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A defect, for proving that `shop check` catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Accepts any signature (or none).
    IgnoresSignature,
    /// Answers 200 to bodies that break the contract.
    AcceptsGarbage,
    /// Adds posted levels to what it has instead of setting them.
    LevelsAsDeltas,
}

/// How the shop behaves.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// The bearer token it requires.
    pub token: String,
    /// Standard Webhooks secrets it verifies (none: no signature required).
    pub signing_secrets: Vec<String>,
    pub quirk: Option<Quirk>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            token: SHOP_TOKEN.to_owned(),
            signing_secrets: Vec::new(),
            quirk: None,
        }
    }
}

#[derive(Default)]
struct State {
    options: MockOptions,
    requests: Vec<Recorded>,
    levels: BTreeMap<(String, String), u64>,
    shipments: BTreeMap<(String, String), Value>,
    script: VecDeque<Scripted>,
    down: bool,
    /// Answered to every push (POST, PUT) instead of applying it.
    refuse_pushes: Option<Scripted>,
}

/// A running mock shop. Its API lives under `/erp`.
pub struct ShopMock {
    state: Arc<Mutex<State>>,
    port: u16,
    handle: ServerHandle,
}

impl ShopMock {
    /// Starts the shop on a loopback port, requiring [`SHOP_TOKEN`] and no signature.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(MockOptions::default()).await
    }

    /// Starts the shop on a loopback port with `options`.
    pub async fn start_with(options: MockOptions) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        Self::start_on(listener, options)
    }

    /// Starts the shop on a given listener.
    pub fn start_on(
        listener: std::net::TcpListener,
        options: MockOptions,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            options,
            ..State::default()
        }));
        let data = web::Data::new(state.clone());
        let (port, handle) = super::spawn_server(listener, 1, move |cfg| {
            cfg.app_data(data.clone()).default_service(web::to(handle));
        })?;
        Ok(Self {
            state,
            port,
            handle,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL the relay is configured with (`shop.base_url`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/erp", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The level the shop shows for (channel, sku), if it was ever set.
    pub fn level(&self, channel: &str, sku: &str) -> Option<u64> {
        self.lock()
            .levels
            .get(&(channel.to_owned(), sku.to_owned()))
            .copied()
    }

    /// Every level the shop holds.
    pub fn levels(&self) -> BTreeMap<(String, String), u64> {
        self.lock().levels.clone()
    }

    /// Every shipment the shop holds, by (order_id, shipment_id), cancelled ones included.
    pub fn shipments(&self) -> BTreeMap<(String, String), Value> {
        self.lock().shipments.clone()
    }

    /// Answers the next requests with these, in order, without applying them.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.lock().script.extend(answers);
    }

    /// While down, every request is answered 503 (and recorded).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// While set, every push (POST, PUT) is answered with `answer` and not applied; reads
    /// still work. None: pushes are applied again.
    pub fn refuse_pushes(&self, answer: Option<Scripted>) {
        self.lock().refuse_pushes = answer;
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

async fn handle(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let (status, headers, answer) = decide(&mut st, &req, &method, &path, &body);
    st.requests.push(Recorded {
        method,
        path,
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        status,
        at: Instant::now(),
    });
    let mut resp = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (k, v) in headers {
        resp.insert_header((k, v));
    }
    resp.content_type("application/json").body(answer)
}

type Answer = (u16, Vec<(String, String)>, String);

fn refuse(status: u16, msg: &str) -> Answer {
    (status, Vec::new(), json!({"error": msg}).to_string())
}

fn decide(st: &mut State, req: &HttpRequest, method: &str, path: &str, body: &[u8]) -> Answer {
    if let Some(s) = st.script.pop_front() {
        return (s.status, s.headers, s.body);
    }
    if st.down {
        return refuse(503, "shop is down");
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let segments: Vec<&str> = match path.strip_prefix("/erp/") {
        Some(rest) => rest.split('/').collect(),
        None => return refuse(404, "no such endpoint"),
    };
    let (route, allow) = match segments.as_slice() {
        ["inventory", "levels"] => (Route::Levels, "GET, POST"),
        ["orders", order, "shipments", shipment] => (
            Route::Shipment(percent_decode(order), percent_decode(shipment)),
            "GET, PUT",
        ),
        _ => return refuse(404, "no such endpoint"),
    };
    let bearer = format!("Bearer {}", st.options.token);
    // Bearer tokens compared in constant time, as a real shop should.
    let token_ok =
        header("Authorization").is_some_and(|a| bool::from(a.as_bytes().ct_eq(bearer.as_bytes())));
    match (method, route) {
        _ if !allow.split(", ").any(|m| m == method) => {
            let (status, _, body) = refuse(405, &format!("{method} is not served here"));
            (status, vec![("Allow".into(), allow.into())], body)
        }
        _ if !token_ok => refuse(401, "bad or missing bearer token"),
        ("GET", Route::Levels) => read_levels(st, req.query_string()),
        ("GET", Route::Shipment(order, shipment)) => match st.shipments.get(&(order, shipment)) {
            Some(v) => (200, Vec::new(), v.to_string()),
            None => refuse(404, "no such shipment"),
        },
        (_, route) => {
            if let Some(r) = &st.refuse_pushes {
                return (r.status, r.headers.clone(), r.body.clone());
            }
            if let Err((status, why)) = push_headers(&st.options, &header, body) {
                return refuse(status, &why);
            }
            match route {
                Route::Levels => set_levels(st, body),
                Route::Shipment(order, shipment) => put_shipment(st, order, shipment, body),
            }
        }
    }
}

enum Route {
    Levels,
    Shipment(String, String),
}

/// The headers every push carries: Content-Type, Idempotency-Key, and the Standard Webhooks
/// headers (well-formed whenever present; required and verified when signing is configured).
fn push_headers<'a>(
    options: &MockOptions,
    header: &impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<(), (u16, String)> {
    let bad = |why: &str| Err((400, why.to_owned()));
    let json_type = header("Content-Type").is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_type {
        return bad("Content-Type must be application/json");
    }
    let hex32 =
        |v: &str| v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match header("Idempotency-Key") {
        None => return bad("Idempotency-Key is required"),
        Some(k) if !hex32(k) => return bad("Idempotency-Key must be 32 lowercase hex characters"),
        Some(_) => {}
    }
    if header("webhook-id").is_some_and(|v| !v.strip_prefix("msg_").is_some_and(hex32)) {
        return bad("webhook-id must be msg_ followed by 32 lowercase hex characters");
    }
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    if header("webhook-timestamp").is_some_and(|v| !digits(v) || v.parse::<u64>().is_err()) {
        return bad("webhook-timestamp must be whole seconds since the Unix epoch");
    }
    let signature_ok = |v: &str| {
        v.split(' ').all(|s| {
            s.strip_prefix("v1,")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .is_some_and(|raw| raw.len() == 32)
        })
    };
    if header("webhook-signature").is_some_and(|v| !signature_ok(v)) {
        return bad("webhook-signature must be space-separated v1,<base64 of 32 bytes>");
    }
    if options.signing_secrets.is_empty() || options.quirk == Some(Quirk::IgnoresSignature) {
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    crate::sign::check_standard(
        &options.signing_secrets,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body,
        now,
        300,
    )
    .map_err(|e| (401, e.to_string()))
}

/// `GET /inventory/levels?channel=..&sku=..`: read only, the bearer token is enough.
fn read_levels(st: &State, query: &str) -> Answer {
    let mut channel = None;
    let mut skus = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "channel" => channel = Some(percent_decode(v)),
            "sku" => skus.push(percent_decode(v)),
            _ => {}
        }
    }
    let Some(channel) = channel.filter(|c| !c.is_empty()) else {
        return refuse(400, "the query parameter channel is required");
    };
    if skus.is_empty() || skus.iter().any(String::is_empty) {
        return refuse(
            400,
            "at least one non-empty sku query parameter is required",
        );
    }
    let levels: Vec<Value> = skus
        .iter()
        .filter_map(|s| {
            st.levels
                .get(&(channel.clone(), s.clone()))
                .map(|n| json!({"sku": s, "available": n}))
        })
        .collect();
    (
        200,
        Vec::new(),
        json!({"channel": channel, "levels": levels}).to_string(),
    )
}

/// The largest `available` (and the largest integer JSON carries exactly everywhere).
const MAX_LEVEL: u64 = (1 << 53) - 1;

/// A JSON integer >= 0; `90.0` is one too, as JSON Schema counts it.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_LEVEL as f64)
            .map(|f| f as u64)
    })
}

/// The object's keys are exactly `keys`.
fn has_exactly(v: &Value, keys: &[&str]) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == keys.len() && keys.iter().all(|k| o.contains_key(*k)))
}

fn non_empty_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// `POST /inventory/levels` with a `LevelsRequest`.
fn set_levels(st: &mut State, body: &[u8]) -> Answer {
    let quirk = st.options.quirk;
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, "the body is not JSON");
    };
    let levels = v["levels"].as_array().filter(|l| !l.is_empty());
    let (Some(channel), Some(levels)) = (
        v["channel"].as_str().filter(|c| !c.is_empty()),
        levels.filter(|_| has_exactly(&v, &["channel", "levels"])),
    ) else {
        if quirk == Some(Quirk::AcceptsGarbage) {
            return (200, Vec::new(), json!({"accepted": 0}).to_string());
        }
        return refuse(
            422,
            "body must be exactly {\"channel\": string, \"levels\": [at least one level]}",
        );
    };
    let mut parsed = Vec::new();
    for l in levels {
        let available = whole(&l["available"]).filter(|n| *n <= MAX_LEVEL);
        match (l["sku"].as_str(), available) {
            (Some(sku), Some(n)) if !sku.is_empty() && has_exactly(l, &["sku", "available"]) => {
                parsed.push((sku.to_owned(), n))
            }
            _ if quirk == Some(Quirk::AcceptsGarbage) => {}
            _ => {
                return refuse(
                    422,
                    "each level needs exactly sku and a whole available from 0 to 2^53-1",
                )
            }
        }
    }
    let n = parsed.len();
    for (sku, available) in parsed {
        let slot = st.levels.entry((channel.to_owned(), sku)).or_insert(0);
        *slot = if quirk == Some(Quirk::LevelsAsDeltas) {
            slot.saturating_add(available)
        } else {
            available
        };
    }
    (200, Vec::new(), json!({"accepted": n}).to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a real month, day, hour, minute and second.
fn utc_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    b.len() == 20
        && (b[4], b[7], b[10], b[13], b[16], b[19]) == (b'-', b'-', b'T', b':', b':', b'Z')
        && num(0..4).is_some()
        && num(5..7).is_some_and(|m| (1..=12).contains(&m))
        && num(8..10).is_some_and(|d| (1..=31).contains(&d))
        && num(11..13).is_some_and(|h| h < 24)
        && num(14..16).is_some_and(|m| m < 60)
        && num(17..19).is_some_and(|s| s < 61)
}

/// `PUT /orders/{order_id}/shipments/{shipment_id}` with a `ShipmentRequest`.
fn put_shipment(st: &mut State, order: String, shipment: String, body: &[u8]) -> Answer {
    if order.is_empty() || shipment.is_empty() {
        return refuse(400, "order_id and shipment_id must not be empty");
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, "the body is not JSON");
    };
    let nullable_str = |f: &str| v[f].is_null() || v[f].is_string();
    let item_ok = |i: &Value| {
        has_exactly(i, &["sku", "qty"])
            && non_empty_str(&i["sku"])
            && i["qty"].as_f64().is_some_and(|q| q > 0.0)
    };
    let well_formed = has_exactly(
        &v,
        &[
            "status",
            "carrier",
            "tracking_number",
            "tracking_url",
            "items",
            "shipped_at",
        ],
    ) && matches!(v["status"].as_str(), Some("shipped" | "cancelled"))
        && ["carrier", "tracking_number", "tracking_url"]
            .iter()
            .all(|f| nullable_str(f))
        && v["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(item_ok))
        && v["shipped_at"].as_str().is_some_and(utc_timestamp);
    if !well_formed && st.options.quirk != Some(Quirk::AcceptsGarbage) {
        return refuse(
            422,
            "body must be exactly status (shipped or cancelled), carrier, tracking_number, \
             tracking_url, items (sku, qty > 0) and shipped_at (YYYY-MM-DDTHH:MM:SSZ)",
        );
    }
    st.shipments.insert((order, shipment), v);
    (200, Vec::new(), json!({"ok": true}).to_string())
}

/// Decodes `%XX` escapes and `+` (query strings, path segments). Malformed escapes stay as
/// they are.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (escape, bytes[i]) {
            (Some(b), _) => {
                out.push(b as u8);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("MAT-DN%2026+x%2Fy"), "MAT-DN 26 x/y");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz\u{e4}%C3%A4"), "%zz\u{e4}\u{e4}");
    }
}
