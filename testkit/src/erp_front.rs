//! The ERPNext emulator behind a REST front that creates documents the way a user (or
//! `shoprelay staging-test`) does over REST: Items, Material Receipts (`Stock Entry`), Delivery
//! Notes mapped from a Sales Order (`make_delivery_note`), Shipments, and
//! `frappe.client.cancel`. Sales Orders (and Customers) are the emulator's own. Like a real site, the webhooks these cause are sent by a background
//! worker, one after the other, after the request has answered. Every other request is passed
//! through to the emulator unchanged.
//!
//! What the front checks follows ERPNext 15: a Shipment is refused (417) without pickup and
//! delivery addresses, a delivery contact, a pickup date, a description, a value of goods or a
//! parcel; a Stock Entry row needs an item, a quantity above 0 and a warehouse; a Delivery Note
//! with a row that names no Sales Order row (`so_detail`) is not counted against the order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::erp::{frappe_error, StockLine, Transport, API_KEY, API_SECRET};
use super::{Delivery, ErpEmulator};

/// Documents the front keeps itself: what the emulator has no model for (Company, Country, the
/// Warehouse's company).
#[derive(Default)]
struct FrontState {
    docs: BTreeMap<(String, String), Value>,
}

struct Front {
    erp: Arc<ErpEmulator>,
    /// While true the worker sends nothing (a site whose background worker is stopped).
    paused: std::sync::atomic::AtomicBool,
    resumed: tokio::sync::Notify,
    state: Mutex<FrontState>,
    worker: mpsc::UnboundedSender<Delivery>,
    http: reqwest::Client,
}

impl Front {
    fn lock(&self) -> MutexGuard<'_, FrontState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands webhook deliveries to the worker, in order.
    fn enqueue(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            // The worker lives as long as the front; a send can only fail after it stopped.
            let _ = self.worker.send(d);
        }
    }
}

/// A running front: the URL to give as `erpnext.url`, and the emulator behind it.
pub struct ErpFront {
    front: Arc<Front>,
    port: u16,
    handle: ServerHandle,
}

/// The company the front's warehouses belong to, with its country and currency.
pub const COMPANY: &str = "ACME";

impl ErpFront {
    /// Starts a front on a loopback port before `erp`, with company [`COMPANY`] (United States,
    /// USD) owning `warehouses`.
    pub async fn start(erp: ErpEmulator, warehouses: &[&str]) -> std::io::Result<Self> {
        let erp = Arc::new(erp);
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let mut state = FrontState::default();
        let mut put = |doctype: &str, name: &str, v: Value| {
            state.docs.insert((doctype.into(), name.into()), v);
        };
        put(
            "Company",
            COMPANY,
            json!({"name": COMPANY, "company_name": COMPANY, "abbr": COMPANY, "country": "United States", "default_currency": "USD"}),
        );
        put(
            "Country",
            "United States",
            json!({"name": "United States", "country_name": "United States", "code": "us"}),
        );
        for w in warehouses {
            put(
                "Warehouse",
                w,
                json!({"name": w, "warehouse_name": w, "company": COMPANY, "is_group": 0}),
            );
        }
        let front = Arc::new(Front {
            erp: erp.clone(),
            paused: std::sync::atomic::AtomicBool::new(false),
            resumed: tokio::sync::Notify::new(),
            state: Mutex::new(state),
            worker: tx,
            http: reqwest::Client::new(),
        });
        // The background worker: one delivery at a time, in the order they were queued.
        let worker_front = Arc::downgrade(&front);
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let Some(front) = worker_front.upgrade() else {
                    return;
                };
                while front.paused.load(std::sync::atomic::Ordering::SeqCst) {
                    front.resumed.notified().await;
                }
                if let Err(e) = front.erp.deliver(&d).await {
                    tracing::debug!(webhook = d.webhook, error = %e, "emulated delivery failed");
                }
            }
        });
        let data = web::Data::new(front.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let (port, handle) = super::spawn_server(listener, 1, move |cfg| {
            cfg.app_data(data.clone())
                .route("/api/resource/{doctype}", web::post().to(insert))
                .route("/api/resource/{doctype}/{name}", web::get().to(get_one))
                .route("/api/resource/{doctype}/{name}", web::put().to(update))
                .route("/api/method/frappe.client.cancel", web::post().to(cancel))
                .route(
                    "/api/method/erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
                    web::post().to(make_delivery_note),
                )
                .default_service(web::to(pass_through));
        })?;
        Ok(Self {
            front,
            port,
            handle,
        })
    }

    /// The site URL (`erpnext.url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator behind the front (webhooks, Bins, direct changes).
    pub fn erp(&self) -> &ErpEmulator {
        &self.front.erp
    }

    /// The emulator, shared.
    pub fn erp_arc(&self) -> Arc<ErpEmulator> {
        self.front.erp.clone()
    }

    /// Stops the background worker (deliveries wait in its queue, as on a site whose worker is
    /// down) or starts it again.
    pub fn pause_worker(&self, paused: bool) {
        self.front
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        if !paused {
            self.front.resumed.notify_one();
        }
    }

    /// Stops the front and the emulator.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
        self.front.erp.stop().await;
    }
}

type Shared = web::Data<Arc<Front>>;

fn authorized(req: &HttpRequest) -> Option<HttpResponse> {
    let ok = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("token {API_KEY}:{API_SECRET}"));
    (!ok).then(|| frappe_error(401, "AuthenticationError", "Invalid token"))
}

/// Sends the request on to the emulator as it came, and its answer back.
async fn pass_through(req: HttpRequest, body: web::Bytes, front: Shared) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = front
        .http
        .request(method, format!("{}{path}", front.erp.url()))
        .body(body.to_vec());
    for name in ["Authorization", "Content-Type"] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await;
    // Sales Orders made over REST (the relay's orders) leave their webhooks to a worker.
    front.enqueue(front.erp.take_order_deliveries());
    match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
            )
            .content_type("application/json")
            .body(text)
        }
        Err(e) => HttpResponse::BadGateway().body(format!("emulator unreachable: {e}")),
    }
}

/// A URL path segment, percent-encoded (everything but RFC 3986's unreserved characters).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A document of the emulator, read over its REST API.
async fn emulator_doc(front: &Front, doctype: &str, name: &str) -> Option<Value> {
    let url = format!(
        "{}/api/resource/{}/{}",
        front.erp.url(),
        encode_segment(doctype),
        encode_segment(name)
    );
    let resp = front
        .http
        .get(url)
        .header("Authorization", format!("token {API_KEY}:{API_SECRET}"))
        .send()
        .await
        .ok()?;
    let v: Value = resp.json().await.ok()?;
    v.get("data").cloned()
}

fn body_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn rows(m: &Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default()
}

fn data(doc: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "data": doc }))
}

fn render_failed(e: impl std::fmt::Display) -> HttpResponse {
    frappe_error(500, "TemplateError", &e.to_string())
}

/// `POST /api/resource/{doctype}` for the doctypes the front creates; others pass through.
async fn insert(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    front: Shared,
) -> HttpResponse {
    let doctype = path.into_inner();
    if !matches!(
        doctype.as_str(),
        "Item" | "Stock Entry" | "Delivery Note" | "Shipment"
    ) {
        return pass_through(req, body, front).await;
    }
    if let Some(refusal) = authorized(&req) {
        return refusal;
    }
    let Some(doc) = body_object(&body) else {
        return frappe_error(417, "ValidationError", "the body must be a JSON object");
    };
    match doctype.as_str() {
        "Item" => insert_item(&front, doc),
        "Stock Entry" => insert_stock_entry(&front, doc),
        "Delivery Note" => insert_delivery_note(&front, doc),
        _ => insert_shipment(&front, doc),
    }
}

fn insert_item(front: &Front, doc: Map<String, Value>) -> HttpResponse {
    let code = str_of(&doc, "item_code").to_owned();
    if code.is_empty() {
        return frappe_error(417, "MandatoryError", "Value missing for Item: Item Code");
    }
    let fields: Vec<(&str, Value)> = doc.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    match front.erp.save_item(&code, &fields) {
        Ok(deliveries) => front.enqueue(deliveries),
        Err(e) => return render_failed(e),
    }
    let mut saved = doc;
    saved.insert("name".into(), json!(code));
    data(Value::Object(saved))
}

/// The `items` of a voucher the front creates: it must come submitted (docstatus 1) and have
/// rows. Err: the exception type and message of the 417.
fn submitted_rows(
    doc: &Map<String, Value>,
    doctype: &str,
) -> Result<Vec<Map<String, Value>>, (&'static str, String)> {
    if doc.get("docstatus").and_then(Value::as_i64) != Some(1) {
        return Err((
            "ValidationError",
            format!("the emulator only creates {doctype} documents submitted (docstatus 1)"),
        ));
    }
    let lines = rows(doc, "items");
    if lines.is_empty() {
        return Err((
            "MandatoryError",
            format!("Value missing for {doctype}: Items"),
        ));
    }
    Ok(lines)
}

fn insert_stock_entry(front: &Front, doc: Map<String, Value>) -> HttpResponse {
    let lines = match submitted_rows(&doc, "Stock Entry") {
        Ok(lines) => lines,
        Err((exc, message)) => return frappe_error(417, exc, &message),
    };
    for (i, r) in lines.iter().enumerate() {
        let qty = r.get("qty").and_then(Value::as_f64).unwrap_or(0.0);
        if str_of(r, "item_code").is_empty()
            || qty <= 0.0
            || (str_of(r, "t_warehouse").is_empty() && str_of(r, "s_warehouse").is_empty())
        {
            return frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Row #{}: item_code, a qty above 0 and a warehouse are required",
                    i + 1
                ),
            );
        }
    }
    let stock: Vec<StockLine<'_>> = lines
        .iter()
        .map(|r| {
            let qty = r.get("qty").and_then(Value::as_f64).unwrap_or(0.0);
            match str_of(r, "t_warehouse") {
                "" => StockLine::out_of(str_of(r, "item_code"), str_of(r, "s_warehouse"), qty),
                t => StockLine::into(str_of(r, "item_code"), t, qty),
            }
        })
        .collect();
    let name = match front.erp.submit_voucher("Stock Entry", &stock, true) {
        Ok((name, deliveries)) => {
            front.enqueue(deliveries);
            name
        }
        Err(e) => return render_failed(e),
    };
    let mut saved = doc;
    saved.insert("name".into(), json!(name));
    saved.insert("doctype".into(), json!("Stock Entry"));
    let saved = Value::Object(saved);
    data(saved)
}

fn insert_delivery_note(front: &Front, doc: Map<String, Value>) -> HttpResponse {
    let lines = match submitted_rows(&doc, "Delivery Note") {
        Ok(lines) => lines,
        Err((exc, message)) => return frappe_error(417, exc, &message),
    };
    let owned: Vec<(Option<String>, String, String, f64)> = lines
        .iter()
        .map(|r| {
            (
                // A row typed by hand (no so_detail) is not counted against the order.
                Some(str_of(r, "against_sales_order"))
                    .filter(|s| !s.is_empty() && !str_of(r, "so_detail").is_empty())
                    .map(str::to_owned),
                str_of(r, "item_code").to_owned(),
                str_of(r, "warehouse").to_owned(),
                r.get("qty").and_then(Value::as_f64).unwrap_or(0.0),
            )
        })
        .collect();
    let borrowed: Vec<super::erp::DeliveryLine<'_>> = owned
        .iter()
        .map(|(so, i, w, q)| (so.as_deref(), i.as_str(), w.as_str(), *q))
        .collect();
    let transport = Transport {
        transporter_name: doc
            .get("transporter_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
        lr_no: doc
            .get("lr_no")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
    };
    match front.erp.submit_delivery_note(&borrowed, transport, None) {
        Ok((name, deliveries)) => {
            front.enqueue(deliveries);
            let mut saved = doc;
            saved.insert("name".into(), json!(name));
            saved.insert("status".into(), json!("To Bill"));
            data(Value::Object(saved))
        }
        Err(e) => render_failed(e),
    }
}

fn insert_shipment(front: &Front, doc: Map<String, Value>) -> HttpResponse {
    let mut missing: Vec<&str> = [
        ("pickup_address_name", "Pickup Address"),
        ("delivery_address_name", "Delivery Address"),
        ("delivery_contact_name", "Delivery Contact"),
        ("pickup_date", "Pickup Date"),
        ("description_of_content", "Description of Content"),
    ]
    .into_iter()
    .filter(|(field, _)| str_of(&doc, field).is_empty())
    .map(|(_, label)| label)
    .collect();
    if doc
        .get("value_of_goods")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        <= 0.0
    {
        missing.push("Value of Goods");
    }
    if !missing.is_empty() {
        return frappe_error(
            417,
            "MandatoryError",
            &format!("Value missing for Shipment: {}", missing.join(", ")),
        );
    }
    if doc.get("docstatus").and_then(Value::as_i64) != Some(1) {
        return frappe_error(
            417,
            "ValidationError",
            "the emulator only creates submitted Shipments (docstatus 1)",
        );
    }
    if rows(&doc, "shipment_parcel").is_empty() {
        return frappe_error(
            417,
            "ValidationError",
            "Please enter Shipment Parcel information",
        );
    }
    let notes: Vec<String> = rows(&doc, "shipment_delivery_note")
        .iter()
        .map(|r| str_of(r, "delivery_note").to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
    let opt = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    match front.erp.submit_shipment(
        &notes,
        opt("carrier"),
        opt("awb_number"),
        opt("tracking_url"),
    ) {
        Ok((name, deliveries)) => {
            front.enqueue(deliveries);
            let mut saved = doc.clone();
            saved.insert("name".into(), json!(name));
            saved.insert("status".into(), json!("Submitted"));
            data(Value::Object(saved))
        }
        Err(e) => render_failed(e),
    }
}

/// `GET /api/resource/{doctype}/{name}`: the front's own documents first, then the emulator's.
async fn get_one(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    front: Shared,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    let own = front.lock().docs.get(&(doctype, name)).cloned();
    match own {
        Some(doc) => match authorized(&req) {
            Some(refusal) => refusal,
            None => data(doc),
        },
        None => pass_through(req, body, front).await,
    }
}

/// `PUT /api/resource/Item/{name}` changes the Item (Item on_update fires); others pass through.
async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    front: Shared,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    if doctype != "Item" {
        return pass_through(req, body, front).await;
    }
    if let Some(refusal) = authorized(&req) {
        return refusal;
    }
    let Some(changes) = body_object(&body) else {
        return frappe_error(417, "ValidationError", "the body must be a JSON object");
    };
    let fields: Vec<(&str, Value)> = changes
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    match front.erp.save_item(&name, &fields) {
        Ok(deliveries) => {
            front.enqueue(deliveries);
            data(Value::Object(changes))
        }
        Err(e) => render_failed(e),
    }
}

/// `frappe.client.cancel {"doctype", "name"}` for Stock Entry, Delivery Note, Shipment and
/// Sales Order.
async fn cancel(req: HttpRequest, body: web::Bytes, front: Shared) -> HttpResponse {
    if let Some(refusal) = authorized(&req) {
        return refusal;
    }
    let Some(args) = body_object(&body) else {
        return frappe_error(417, "ValidationError", "the body must be a JSON object");
    };
    let (doctype, name) = (str_of(&args, "doctype"), str_of(&args, "name"));
    let result = match doctype {
        "Stock Entry" => front.erp.cancel_voucher("Stock Entry", name),
        "Delivery Note" => front.erp.cancel_delivery_note(name),
        "Shipment" => front.erp.cancel_shipment(name),
        "Sales Order" => {
            let answer = pass_through(req, body, front.clone()).await;
            front.enqueue(front.erp.take_order_deliveries());
            return answer;
        }
        other => {
            return frappe_error(
                417,
                "ValidationError",
                &format!("the emulator does not cancel {other}"),
            )
        }
    };
    match result {
        Ok(deliveries) => {
            front.enqueue(deliveries);
            HttpResponse::Ok().json(json!({"message": null}))
        }
        Err(e) => render_failed(e),
    }
}

/// `make_delivery_note {"source_name"}`: the unsaved Delivery Note ERPNext maps from a Sales
/// Order, every row linked to its order row (`against_sales_order`, `so_detail`).
async fn make_delivery_note(req: HttpRequest, body: web::Bytes, front: Shared) -> HttpResponse {
    if let Some(refusal) = authorized(&req) {
        return refusal;
    }
    let source = body_object(&body)
        .map(|m| str_of(&m, "source_name").to_owned())
        .unwrap_or_default();
    let Some(Value::Object(so)) = emulator_doc(&front, "Sales Order", &source).await else {
        return frappe_error(
            404,
            "DoesNotExistError",
            &format!("Sales Order {source} not found"),
        );
    };
    if so.get("docstatus").and_then(Value::as_i64) != Some(1) {
        return frappe_error(
            417,
            "ValidationError",
            &format!("Sales Order {source} must be submitted"),
        );
    }
    let items: Vec<Value> = rows(&so, "items")
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row_name = Some(str_of(r, "name"))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{source}-row-{}", i + 1));
            json!({
                "item_code": r.get("item_code"),
                "qty": r.get("qty"),
                "rate": r.get("rate"),
                "warehouse": r.get("warehouse"),
                "against_sales_order": source,
                "so_detail": row_name,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({"message": {
        "doctype": "Delivery Note",
        "__islocal": 1,
        "customer": so.get("customer"),
        "company": so.get("company"),
        "currency": so.get("currency"),
        "po_no": so.get("po_no"),
        "items": items,
    }}))
}
