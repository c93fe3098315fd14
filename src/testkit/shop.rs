//! The reference shop: implements the shop contract (DESIGN §4, shop_adapter_spec/) in memory,
//! keeps absolute levels and shipments, verifies the bearer token and (when given secrets)
//! Standard Webhooks signatures, records every request, and can be told to fail or to have one
//! of the defects `shop check` must catch. `shoprelay shop mock` runs it standalone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::inbound::signature::verify_standard;

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

    /// Every shipment the shop holds, by (order_id, shipment_id).
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

fn decide(
    st: &mut State,
    req: &HttpRequest,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    if let Some(s) = st.script.pop_front() {
        return (s.status, s.headers, s.body);
    }
    if st.down {
        return (
            503,
            Vec::new(),
            json!({"error": "shop is down"}).to_string(),
        );
    }
    let err = |status: u16, msg: &str| (status, Vec::new(), json!({"error": msg}).to_string());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let (bearer, quirk) = (format!("Bearer {}", st.options.token), st.options.quirk);
    // Bearer tokens compared in constant time, as a real shop should.
    let token_ok =
        header("Authorization").is_some_and(|a| bool::from(a.as_bytes().ct_eq(bearer.as_bytes())));
    if !token_ok {
        return err(401, "bad or missing bearer token");
    }
    if !st.options.signing_secrets.is_empty() && quirk != Some(Quirk::IgnoresSignature) {
        let secrets: Vec<Secret> = st.options.signing_secrets.iter().map(Secret::new).collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if let Err(e) = verify_standard(
            &secrets,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
            now,
            300,
        ) {
            return err(401, &e.to_string());
        }
    }
    let garbage_ok = quirk == Some(Quirk::AcceptsGarbage);
    let segments: Vec<&str> = path.trim_start_matches("/erp/").split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["inventory", "levels"]) => {
            let v = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            let (Some(channel), Some(levels)) = (v["channel"].as_str(), v["levels"].as_array())
            else {
                if garbage_ok {
                    return (200, Vec::new(), json!({"accepted": 0}).to_string());
                }
                return err(400, "body must be {\"channel\": string, \"levels\": [...]}");
            };
            let mut parsed = Vec::new();
            for l in levels {
                match (l["sku"].as_str(), l["available"].as_u64()) {
                    (Some(sku), Some(n)) => parsed.push((sku.to_owned(), n)),
                    _ if garbage_ok => {}
                    _ => return err(400, "each level needs sku and a whole available >= 0"),
                }
            }
            let n = parsed.len();
            for (sku, available) in parsed {
                let slot = st.levels.entry((channel.to_owned(), sku)).or_insert(0);
                *slot = if quirk == Some(Quirk::LevelsAsDeltas) {
                    *slot + available
                } else {
                    available
                };
            }
            (200, Vec::new(), json!({"accepted": n}).to_string())
        }
        ("GET", ["inventory", "levels"]) => {
            let mut channel = String::new();
            let mut skus = Vec::new();
            for pair in req.query_string().split('&') {
                if let Some((k, v)) = pair.split_once('=') {
                    let v = percent_decode(v);
                    match k {
                        "channel" => channel = v,
                        "sku" => skus.push(v),
                        _ => {}
                    }
                }
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
        ("PUT", ["orders", order, "shipments", shipment]) => {
            let v = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            let well_formed =
                v["status"].is_string() && v["items"].is_array() && v["shipped_at"].is_string();
            if !well_formed && !garbage_ok {
                return err(400, "body must have status, items and shipped_at");
            }
            st.shipments
                .insert((percent_decode(order), percent_decode(shipment)), v);
            (200, Vec::new(), json!({"ok": true}).to_string())
        }
        ("DELETE", ["orders", order, "shipments", shipment]) => {
            match st
                .shipments
                .remove(&(percent_decode(order), percent_decode(shipment)))
            {
                Some(_) => (200, Vec::new(), json!({"deleted": true}).to_string()),
                None => err(404, "no such shipment"),
            }
        }
        _ => err(404, "no such endpoint"),
    }
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
