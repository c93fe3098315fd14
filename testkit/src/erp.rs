//! An ERPNext emulator on loopback: Bins, Stock Ledger Entries and Sales Orders that change the
//! way ERPNext changes them (docs/erpnext-facts.md: no Bin webhook on ordinary moves, a new Bin's
//! payload says 0.0, SLE `qty_after_transaction` is 0.0), the project's own Webhook documents
//! rendered and signed like Frappe, and the REST subset with Frappe's filters and paging.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::{ServerHandle, Service};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

mod vouchers;

pub use vouchers::StockLine;

use super::condition;
use super::frappe::{as_dict, render, Delivery, RenderError};
use crate::frappe::{Webhook, PLACEHOLDER_BASE};
use crate::timestamp;

#[path = "erp_orders.rs"]
mod orders;

#[path = "erp_books.rs"]
mod books;

/// Credentials and secret of the emulated site.
pub const API_KEY: &str = "emulator-key";
pub const API_SECRET: &str = "emulator-secret";

struct State {
    relay_base: String,
    /// Webhook name -> secret (Frappe keeps passwords apart, in `__Auth`).
    secrets: BTreeMap<String, String>,
    /// While false, creating or changing Webhook documents is refused with 403.
    may_write_webhooks: bool,
    /// Doctypes the API user may not read (403).
    unreadable: std::collections::BTreeSet<String>,
    /// (doctype, name) -> as_dict value (Webhook documents included).
    docs: BTreeMap<(String, String), Value>,
    /// The site's clock: microseconds since 1970-01-01 UTC; every write moves it on. `modified`
    /// values are this time in `zone` (the System Settings time zone), as Frappe stamps them.
    utc_us: i64,
    zone: String,
    counter: u64,
    rest_down: bool,
    rest_requests: u64,
    /// Customers, addresses and Sales Orders made over REST (see `erp_orders.rs`).
    orders: orders::Orders,
    /// Invoices, payments and comments (see `erp_books.rs`).
    books: books::Books,
    /// `GET /api/resource/{doctype}` lists served, per doctype.
    list_reads: BTreeMap<String, u64>,
}

impl State {
    fn tick(&mut self) -> String {
        self.utc_us += 1_000 + (self.counter % 7) as i64 * 137;
        self.counter += 1;
        self.local_now()
    }

    /// The site's time in its time zone, as `modified` prints it.
    fn local_now(&self) -> String {
        let offset = zone_offset(&self.zone).unwrap_or(0);
        timestamp::format(self.utc_us + offset * 1_000_000)
    }

    /// Time passes until the site's local time is at least `modified`.
    fn advance_to(&mut self, modified: &str) {
        let offset = zone_offset(&self.zone).unwrap_or(0);
        if let Some(local) = timestamp::micros(modified) {
            self.utc_us = self.utc_us.max(local - offset * 1_000_000);
        }
    }

    /// The HTTP `Date` of the site's clock.
    fn http_date(&self) -> String {
        let secs = u64::try_from(self.utc_us / 1_000_000).unwrap_or(0);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:05}", self.counter)
    }

    /// The enabled Webhook documents of the site for (doctype, event), rendered for `doc`.
    fn fire(&self, doctype: &str, event: &str, doc: &Value) -> Result<Vec<Delivery>, RenderError> {
        self.fire_saved(doctype, event, doc, None)
    }

    /// Like [`State::fire`] for a save, with the version saved before (None: a new document),
    /// which the webhooks' conditions may compare with.
    fn fire_saved(
        &self,
        doctype: &str,
        event: &str,
        doc: &Value,
        before: Option<&Value>,
    ) -> Result<Vec<Delivery>, RenderError> {
        let mut out = Vec::new();
        let hooks = self
            .docs
            .iter()
            .filter(|((dt, _), _)| dt == "Webhook")
            .filter_map(|(_, v)| serde_json::from_value::<Webhook>(v.clone()).ok())
            .filter(|w| {
                w.enabled == 1 && w.webhook_doctype == doctype && w.webhook_docevent == event
            });
        for w in hooks {
            let wanted = condition::holds(&w.condition, doc, before).map_err(|reason| {
                RenderError::Condition {
                    webhook: w.name.clone(),
                    reason,
                }
            })?;
            if wanted {
                let secret = self.secrets.get(&w.name).filter(|_| w.enable_security == 1);
                out.push(render(
                    &w,
                    doc,
                    secret.map(String::as_str),
                    &self.relay_base,
                )?);
            }
        }
        Ok(out)
    }

    /// Stores a Webhook document as the site would (the secret apart, asterisks in its place).
    fn save_webhook(&mut self, mut doc: Map<String, Value>) -> Result<String, String> {
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("Please set the document name")?
            .to_owned();
        if let Some(secret) = doc
            .get("webhook_secret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && !s.chars().all(|c| c == '*'))
        {
            self.secrets.insert(name.clone(), secret.to_owned());
        }
        if self.secrets.contains_key(&name) {
            doc.insert("webhook_secret".into(), json!("*****"));
        }
        if doc.get("enable_security").and_then(Value::as_i64) == Some(1)
            && !self.secrets.contains_key(&name)
        {
            return Err("Invalid Webhook Secret".into());
        }
        let modified = self.tick();
        doc.insert("modified".into(), json!(modified));
        doc.insert("doctype".into(), json!("Webhook"));
        doc.entry("docstatus").or_insert(json!(0));
        self.docs
            .insert(("Webhook".into(), name.clone()), Value::Object(doc));
        Ok(name)
    }

    fn bin_name(item: &str, wh: &str) -> String {
        format!("BIN-{item}-{wh}")
    }

    /// Creates the Bin if missing (firing Bin after_insert with 0.0 quantities, as ERPNext
    /// does), then applies `change` with set_value semantics (no Bin webhook).
    fn update_bin(
        &mut self,
        item: &str,
        wh: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Vec<Delivery>, RenderError> {
        let key = ("Bin".to_owned(), Self::bin_name(item, wh));
        let mut out = Vec::new();
        if !self.docs.contains_key(&key) {
            let modified = self.tick();
            let mut values = Map::new();
            values.insert("item_code".into(), json!(item));
            values.insert("warehouse".into(), json!(wh));
            values.insert("stock_uom".into(), json!("Nos"));
            let doc = as_dict("Bin", &key.1, &modified, 0, &values);
            out.extend(self.fire("Bin", "after_insert", &doc)?);
            out.extend(self.fire("Bin", "on_update", &doc)?);
            self.docs.insert(key.clone(), doc);
        }
        let modified = self.tick();
        if let Some(Value::Object(bin)) = self.docs.get_mut(&key) {
            change(bin);
            let f = |bin: &Map<String, Value>, k: &str| {
                bin.get(k).and_then(Value::as_f64).unwrap_or(0.0)
            };
            let projected = f(bin, "actual_qty")
                + f(bin, "ordered_qty")
                + f(bin, "indented_qty")
                + f(bin, "planned_qty")
                - f(bin, "reserved_qty")
                - f(bin, "reserved_qty_for_production")
                - f(bin, "reserved_qty_for_sub_contract");
            bin.insert("projected_qty".into(), json!(projected));
            bin.insert("modified".into(), json!(modified));
        }
        Ok(out)
    }
}

/// The UTC offsets (seconds) of the time zones the emulated site may be set to, as they are on
/// its November 2026 dates.
fn zone_offset(zone: &str) -> Option<i64> {
    match zone {
        "UTC" | "Etc/UTC" => Some(0),
        "Asia/Kolkata" => Some(19_800),
        "Europe/Berlin" => Some(3_600),
        "America/New_York" => Some(-18_000),
        _ => None,
    }
}

/// The emulated site's clock starts at 2026-11-26 10:00:00 UTC.
const START_UTC_SECS: i64 = 1_795_687_200;

fn add(bin: &mut Map<String, Value>, field: &str, delta: f64) {
    let cur = bin.get(field).and_then(Value::as_f64).unwrap_or(0.0);
    bin.insert(field.into(), json!(cur + delta));
}

/// A running ERPNext emulator.
pub struct ErpEmulator {
    state: Arc<Mutex<State>>,
    port: u16,
    handle: ServerHandle,
    http: reqwest::Client,
}

/// One line of a Sales Order: item, warehouse, quantity.
pub type OrderLine<'a> = (&'a str, &'a str, f64);

/// One line of a Delivery Note: the Sales Order it delivers (if any), item, warehouse, quantity.
pub type DeliveryLine<'a> = (Option<&'a str>, &'a str, &'a str, f64);

/// Transport details set on a Delivery Note before submit: `transporter_name`, `lr_no`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transport<'a> {
    pub transporter_name: Option<&'a str>,
    pub lr_no: Option<&'a str>,
}

impl ErpEmulator {
    /// The Item field the emulated site keeps its shop SKUs in.
    pub const SKU_FIELD: &'static str = "shop_sku";

    /// Starts the emulator on a loopback port with `webhooks` installed (Webhook documents, as
    /// the relay ships them for an `erpnext.sku_field` of [`ErpEmulator::SKU_FIELD`]), signed
    /// with `webhook_secret`.
    pub async fn start(
        webhook_secret: &str,
        webhooks: impl serde::Serialize,
    ) -> std::io::Result<Self> {
        let hooks = match serde_json::to_value(webhooks).map_err(std::io::Error::other)? {
            Value::Array(hooks) => hooks,
            other => vec![other],
        };
        let emulator = Self::start_bare().await?;
        for hook in hooks {
            let Value::Object(mut doc) = hook else {
                return Err(std::io::Error::other("a Webhook document is a JSON object"));
            };
            doc.insert("webhook_secret".into(), json!(webhook_secret));
            emulator
                .lock()
                .save_webhook(doc)
                .map_err(std::io::Error::other)?;
        }
        Ok(emulator)
    }

    /// Starts an emulated site with no Webhook documents (as a fresh ERPNext).
    pub async fn start_bare() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            relay_base: PLACEHOLDER_BASE.to_owned(),
            secrets: BTreeMap::new(),
            may_write_webhooks: true,
            unreadable: Default::default(),
            docs: BTreeMap::new(),
            utc_us: START_UTC_SECS * 1_000_000,
            zone: "UTC".to_owned(),
            counter: 0,
            rest_down: false,
            rest_requests: 0,
            list_reads: BTreeMap::new(),
            orders: Default::default(),
            books: Default::default(),
        }));
        orders::seed(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
        books::seed(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
        {
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let modified = st.local_now();
            let mut values = Map::new();
            values.insert("time_zone".into(), json!("UTC"));
            let doc = as_dict("System Settings", "System Settings", &modified, 0, &values);
            st.docs
                .insert(("System Settings".into(), "System Settings".into()), doc);
        }
        let data = web::Data::new(state.clone());
        let clock = state.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let (port, handle) = super::spawn_server(listener, 1, move |cfg| {
            let clock = clock.clone();
            cfg.app_data(data.clone()).service(
                web::scope("")
                    // Every answer carries the site's clock in its Date header.
                    .wrap_fn(move |req, srv| {
                        let clock = clock.clone();
                        let fut = srv.call(req);
                        async move {
                            let mut res = fut.await?;
                            let date = clock.lock().unwrap_or_else(|p| p.into_inner()).http_date();
                            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&date) {
                                res.headers_mut().insert(actix_web::http::header::DATE, v);
                            }
                            Ok(res)
                        }
                    })
                    .route("/api/resource/{doctype}", web::get().to(list))
                    .route("/api/resource/{doctype}", web::post().to(insert))
                    .route("/api/resource/{doctype}/{name}", web::get().to(get_one))
                    .route("/api/resource/{doctype}/{name}", web::put().to(update))
                    .route(
                        "/api/resource/{doctype}/{name}",
                        web::delete().to(orders::delete),
                    )
                    .route(
                        "/api/method/frappe.client.cancel",
                        web::post().to(orders::cancel),
                    )
                    .route(
                        "/api/method/erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice",
                        web::post().to(books::make_sales_invoice),
                    )
                    .route(
                        "/api/method/erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry",
                        web::post().to(books::get_payment_entry),
                    )
                    .route(
                        "/api/method/frappe.auth.get_logged_user",
                        web::get().to(logged_user),
                    )
                    .route("/api/method/frappe.client.get_count", web::get().to(count)),
            );
        })?;
        Ok(Self {
            state,
            port,
            handle,
            http: reqwest::Client::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The site URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where webhooks go: the relay's base URL replaces the templates' placeholder base.
    pub fn set_relay(&self, base: &str) {
        self.lock().relay_base = base.trim_end_matches('/').to_owned();
    }

    /// Sets the System Settings time zone, as an admin correcting it would: every `modified`
    /// written from now on is the site's clock in that zone. Returns false (and changes nothing)
    /// for a zone the emulator does not know.
    pub fn set_time_zone(&self, zone: &str) -> bool {
        if zone_offset(zone).is_none() {
            return false;
        }
        let mut st = self.lock();
        st.zone = zone.to_owned();
        let modified = st.tick();
        if let Some(Value::Object(doc)) = st
            .docs
            .get_mut(&("System Settings".to_owned(), "System Settings".to_owned()))
        {
            doc.insert("time_zone".into(), json!(zone));
            doc.insert("modified".into(), json!(modified));
        }
        true
    }

    /// The site's time now, in its time zone (as the next `modified` would start).
    pub fn site_time(&self) -> String {
        self.lock().local_now()
    }

    /// Lets `secs` seconds pass on the site's clock.
    pub fn advance_clock(&self, secs: u64) {
        self.lock().utc_us += secs as i64 * 1_000_000;
    }

    /// Makes every REST call answer 503 (ERPNext down) or serve again.
    pub fn set_rest_down(&self, down: bool) {
        self.lock().rest_down = down;
    }

    /// `GET /api/resource/{doctype}` list requests served so far for `doctype`.
    pub fn list_reads(&self, doctype: &str) -> u64 {
        self.lock().list_reads.get(doctype).copied().unwrap_or(0)
    }

    /// REST requests served so far.
    pub fn rest_requests(&self) -> u64 {
        self.lock().rest_requests
    }

    /// The Bin as ERPNext holds it now.
    pub fn bin(&self, item: &str, wh: &str) -> Option<Value> {
        self.lock()
            .docs
            .get(&("Bin".to_owned(), State::bin_name(item, wh)))
            .cloned()
    }

    /// A one-line Stock Entry (Material Receipt for qty > 0, Material Issue for qty < 0),
    /// submitted: the Bin is updated with set_value (no Bin webhook unless it is new), an SLE is
    /// inserted and the Stock Entry's on_submit fires.
    pub fn stock_move(&self, item: &str, wh: &str, qty: f64) -> Result<Vec<Delivery>, RenderError> {
        let line = if qty >= 0.0 {
            StockLine::into(item, wh, qty)
        } else {
            StockLine::out_of(item, wh, -qty)
        };
        Ok(self.submit_voucher("Stock Entry", &[line], true)?.1)
    }

    /// Changes a Bin without any webhook (Data Import, a repost, a missed delivery).
    pub fn set_bin_silently(
        &self,
        item: &str,
        wh: &str,
        actual: f64,
        reserved: f64,
    ) -> Result<(), RenderError> {
        let mut st = self.lock();
        st.update_bin(item, wh, |bin| {
            bin.insert("actual_qty".into(), json!(actual));
            bin.insert("reserved_qty".into(), json!(reserved));
        })?;
        Ok(())
    }

    /// Submits a Sales Order: reserves stock (Bin via db_update, no Bin webhook) and fires
    /// Sales Order on_submit and on_change. Returns the order's name and the deliveries.
    pub fn submit_sales_order(
        &self,
        po_no: &str,
        lines: &[OrderLine<'_>],
    ) -> Result<(String, Vec<Delivery>), RenderError> {
        let mut st = self.lock();
        let name = st.next_name("SAL-ORD-2026-");
        let mut out = Vec::new();
        for (item, wh, qty) in lines {
            out.extend(st.update_bin(item, wh, |bin| add(bin, "reserved_qty", *qty))?);
        }
        let modified = st.tick();
        let items: Vec<Value> = lines
            .iter()
            .map(|(i, w, q)| json!({"item_code": i, "warehouse": w, "qty": q, "stock_qty": q}))
            .collect();
        let mut values = Map::new();
        values.insert("customer".into(), json!("Shop Customer"));
        values.insert("po_no".into(), json!(po_no));
        values.insert("status".into(), json!("To Deliver and Bill"));
        values.insert("items".into(), Value::Array(items));
        let doc = as_dict("Sales Order", &name, &modified, 1, &values);
        out.extend(st.fire("Sales Order", "on_submit", &doc)?);
        out.extend(st.fire("Sales Order", "on_change", &doc)?);
        st.docs.insert(("Sales Order".into(), name.clone()), doc);
        Ok((name, out))
    }

    /// Cancels a Sales Order: releases its reservations and fires on_cancel and on_change.
    pub fn cancel_sales_order(&self, name: &str) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let key = ("Sales Order".to_owned(), name.to_owned());
        let Some(doc) = st.docs.get(&key).cloned() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let lines: Vec<(String, String, f64)> = doc["items"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (
                            r["item_code"].as_str().unwrap_or_default().to_owned(),
                            r["warehouse"].as_str().unwrap_or_default().to_owned(),
                            r["qty"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (item, wh, qty) in &lines {
            out.extend(st.update_bin(item, wh, |bin| add(bin, "reserved_qty", -qty))?);
        }
        let modified = st.tick();
        let mut doc = doc;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("docstatus".into(), json!(2));
            obj.insert("status".into(), json!("Cancelled"));
            obj.insert("modified".into(), json!(modified));
        }
        out.extend(st.fire("Sales Order", "on_cancel", &doc)?);
        out.extend(st.fire("Sales Order", "on_change", &doc)?);
        st.docs.insert(key, doc);
        Ok(out)
    }

    /// Submits a Delivery Note: stock leaves (SLEs), the orders' reservations are released, and
    /// Delivery Note on_submit, Sales Order on_change and SLE after_insert fire, in that order.
    /// With `return_against`, it is a return (`is_return`, quantities negative, stock comes back).
    pub fn submit_delivery_note(
        &self,
        lines: &[DeliveryLine<'_>],
        transport: Transport<'_>,
        return_against: Option<&str>,
    ) -> Result<(String, Vec<Delivery>), RenderError> {
        let mut st = self.lock();
        let name = st.next_name(if return_against.is_some() {
            "MAT-DN-RET-2026-"
        } else {
            "MAT-DN-2026-"
        });
        let is_return = return_against.is_some();
        let sign = if is_return { -1.0 } else { 1.0 };
        let mut stock = Vec::new();
        for (so, item, wh, qty) in lines {
            stock.extend(st.update_bin(item, wh, |bin| {
                add(bin, "actual_qty", -sign * qty);
                if so.is_some() && !is_return {
                    add(bin, "reserved_qty", -qty);
                }
            })?);
            stock.extend(insert_sle(
                &mut st,
                item,
                wh,
                -sign * qty,
                "Delivery Note",
                &name,
                0,
            )?);
        }
        let modified = st.tick();
        let po_nos: Vec<String> = distinct_orders(lines)
            .iter()
            .filter_map(|so| st.docs.get(&("Sales Order".to_owned(), so.clone())))
            .filter_map(|d| {
                d["po_no"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
            })
            .collect();
        let items: Vec<Value> = lines
            .iter()
            .map(|(so, i, w, q)| json!({"item_code": i, "warehouse": w, "qty": sign * q, "stock_qty": sign * q, "against_sales_order": so}))
            .collect();
        let mut values = Map::new();
        for (k, v) in [
            ("customer", json!("Shop Customer")),
            ("posting_date", json!("2026-11-26")),
            ("posting_time", json!("10:05:00")),
            ("is_return", json!(i64::from(is_return))),
            ("return_against", json!(return_against)),
            (
                "status",
                json!(if is_return { "Return" } else { "To Bill" }),
            ),
            ("lr_no", json!(transport.lr_no)),
            ("transporter_name", json!(transport.transporter_name)),
            (
                "po_no",
                if po_nos.is_empty() {
                    Value::Null
                } else {
                    json!(po_nos.join(", "))
                },
            ),
            ("items", Value::Array(items)),
        ] {
            values.insert(k.into(), v);
        }
        let doc = as_dict("Delivery Note", &name, &modified, 1, &values);
        let mut out = st.fire("Delivery Note", "on_submit", &doc)?;
        st.docs.insert(("Delivery Note".into(), name.clone()), doc);
        out.extend(touch_orders(&mut st, &distinct_orders(lines))?);
        out.extend(stock);
        Ok((name, out))
    }

    /// Cancels a Delivery Note: stock comes back with reversing SLEs (`is_cancelled`), the
    /// reservations return, and Delivery Note on_cancel, Sales Order on_change, SLEs fire.
    pub fn cancel_delivery_note(&self, name: &str) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let key = ("Delivery Note".to_owned(), name.to_owned());
        let Some(mut doc) = st.docs.get(&key).cloned() else {
            return Ok(Vec::new());
        };
        let is_return = doc["is_return"].as_i64() == Some(1);
        let rows: Vec<(Option<String>, String, String, f64)> = doc["items"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (
                            r["against_sales_order"].as_str().map(str::to_owned),
                            r["item_code"].as_str().unwrap_or_default().to_owned(),
                            r["warehouse"].as_str().unwrap_or_default().to_owned(),
                            r["qty"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut stock = Vec::new();
        for (so, item, wh, qty) in &rows {
            stock.extend(st.update_bin(item, wh, |bin| {
                add(bin, "actual_qty", *qty);
                if so.is_some() && !is_return {
                    add(bin, "reserved_qty", *qty);
                }
            })?);
            stock.extend(insert_sle(
                &mut st,
                item,
                wh,
                *qty,
                "Delivery Note",
                name,
                1,
            )?);
        }
        let modified = st.tick();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("docstatus".into(), json!(2));
            obj.insert("status".into(), json!("Cancelled"));
            obj.insert("modified".into(), json!(modified));
        }
        let mut out = st.fire("Delivery Note", "on_cancel", &doc)?;
        st.docs.insert(key, doc);
        let orders: Vec<String> = rows.iter().filter_map(|(so, ..)| so.clone()).collect();
        out.extend(touch_orders(&mut st, &orders)?);
        out.extend(stock);
        Ok(out)
    }

    /// Submits a Shipment for delivery notes; core ERPNext then `db_set`s its status, so
    /// on_submit and on_change fire.
    pub fn submit_shipment(
        &self,
        delivery_notes: &[&str],
        carrier: Option<&str>,
        awb_number: Option<&str>,
        tracking_url: Option<&str>,
    ) -> Result<(String, Vec<Delivery>), RenderError> {
        let mut st = self.lock();
        let name = st.next_name("SHIPMENT-");
        let modified = st.tick();
        let rows: Vec<Value> = delivery_notes
            .iter()
            .map(|d| json!({"delivery_note": d, "grand_total": 0.0}))
            .collect();
        let mut values = Map::new();
        for (k, v) in [
            ("status", json!("Submitted")),
            ("carrier", json!(carrier)),
            ("awb_number", json!(awb_number)),
            ("tracking_url", json!(tracking_url)),
            ("shipment_delivery_note", Value::Array(rows)),
        ] {
            values.insert(k.into(), v);
        }
        let doc = as_dict("Shipment", &name, &modified, 1, &values);
        let mut out = st.fire("Shipment", "on_submit", &doc)?;
        out.extend(st.fire("Shipment", "on_change", &doc)?);
        st.docs.insert(("Shipment".into(), name.clone()), doc);
        Ok((name, out))
    }

    /// A shipping app sets new tracking on a submitted Shipment with `db_set`: on_change fires.
    pub fn set_shipment_tracking(
        &self,
        name: &str,
        awb_number: &str,
        tracking_url: Option<&str>,
    ) -> Result<Vec<Delivery>, RenderError> {
        self.change_shipment(name, "on_change", |doc| {
            doc.insert("awb_number".into(), json!(awb_number));
            doc.insert("tracking_url".into(), json!(tracking_url));
            doc.insert("tracking_status".into(), json!("In Progress"));
        })
    }

    /// Cancels a Shipment: on_cancel, then on_change (status set with `db_set`).
    pub fn cancel_shipment(&self, name: &str) -> Result<Vec<Delivery>, RenderError> {
        let mut out = self.change_shipment(name, "on_cancel", |doc| {
            doc.insert("docstatus".into(), json!(2));
            doc.insert("status".into(), json!("Cancelled"));
        })?;
        let st = self.lock();
        if let Some(doc) = st.docs.get(&("Shipment".to_owned(), name.to_owned())) {
            out.extend(st.fire("Shipment", "on_change", doc)?);
        }
        Ok(out)
    }

    fn change_shipment(
        &self,
        name: &str,
        event: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let modified = st.tick();
        let key = ("Shipment".to_owned(), name.to_owned());
        let Some(Value::Object(doc)) = st.docs.get_mut(&key) else {
            return Ok(Vec::new());
        };
        change(doc);
        doc.insert("modified".into(), json!(modified));
        let doc = Value::Object(doc.clone());
        st.fire("Shipment", event, &doc)
    }

    /// Sends one delivery the way Frappe's `enqueue_webhook` does (one attempt); returns the
    /// status the relay answered.
    pub async fn deliver(&self, d: &Delivery) -> Result<u16, reqwest::Error> {
        Ok(self.deliver_with_answer(d).await?.0)
    }

    /// Like [`ErpEmulator::deliver`], also returning the relay's answer body.
    pub async fn deliver_with_answer(&self, d: &Delivery) -> Result<(u16, String), reqwest::Error> {
        let mut req = self
            .http
            .post(&d.url)
            .header("User-Agent", "python-requests/2.31.0")
            .header("Accept", "*/*")
            .body(d.body.clone());
        if !d.signature.is_empty() {
            req = req.header("X-Frappe-Webhook-Signature", &d.signature);
        }
        for (k, v) in &d.headers {
            req = req.header(k, v);
        }
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        }
        .await;
        // One Webhook Request Log row per attempt, as Frappe writes it.
        let (response, error) = match &result {
            Ok((status, text)) if *status < 400 => (text.clone(), None),
            Ok((status, text)) => (
                text.clone(),
                Some(format!(
                    "requests.exceptions.HTTPError: {status} Client Error for url: {}",
                    d.url
                )),
            ),
            Err(e) => (
                String::new(),
                Some(format!("requests.exceptions.ConnectionError: {e}")),
            ),
        };
        let mut st = self.lock();
        let name = st.next_name("WRL-");
        let modified = st.tick();
        st.docs.insert(
            ("Webhook Request Log".into(), name.clone()),
            json!({"name": name, "creation": modified, "modified": modified, "webhook": d.webhook,
                   "reference_document": d.reference, "url": d.url, "data": String::from_utf8_lossy(&d.body),
                   "response": response, "error": error, "doctype": "Webhook Request Log"}),
        );
        result
    }

    /// Delivers each in order; returns the statuses.
    pub async fn deliver_all(&self, ds: &[Delivery]) -> Result<Vec<u16>, reqwest::Error> {
        let mut out = Vec::with_capacity(ds.len());
        for d in ds {
            out.push(self.deliver(d).await?);
        }
        Ok(out)
    }

    /// While denied, creating or changing Webhook documents answers 403 (a user without System
    /// Manager).
    pub fn deny_webhook_writes(&self, denied: bool) {
        self.lock().may_write_webhooks = !denied;
    }

    /// The Webhook documents on the site, with their secret (or None).
    pub fn webhooks(&self) -> Vec<(Value, Option<String>)> {
        let st = self.lock();
        st.docs
            .iter()
            .filter(|((dt, _), _)| dt == "Webhook")
            .map(|((_, name), v)| (v.clone(), st.secrets.get(name).cloned()))
            .collect()
    }

    /// Makes `doctype` unreadable for the API user (403 PermissionError), or readable again.
    pub fn deny_reads(&self, doctype: &str, denied: bool) {
        let mut st = self.lock();
        if denied {
            st.unreadable.insert(doctype.to_owned());
        } else {
            st.unreadable.remove(doctype);
        }
    }

    /// Adds a Warehouse (a group when `is_group`) under `parent`.
    pub fn add_warehouse(&self, name: &str, parent: Option<&str>, is_group: bool) {
        let mut st = self.lock();
        let modified = st.tick();
        let mut values = Map::new();
        values.insert("parent_warehouse".into(), json!(parent));
        values.insert("is_group".into(), json!(i64::from(is_group)));
        values.insert("warehouse_name".into(), json!(name));
        let doc = as_dict("Warehouse", name, &modified, 0, &values);
        st.docs.insert(("Warehouse".into(), name.to_owned()), doc);
    }

    /// Creates or changes an Item (e.g. a custom `shop_sku` field); Item on_update fires.
    pub fn save_item(
        &self,
        item_code: &str,
        fields: &[(&str, Value)],
    ) -> Result<Vec<Delivery>, RenderError> {
        let mut st = self.lock();
        let modified = st.tick();
        let key = ("Item".to_owned(), item_code.to_owned());
        let before = st.docs.get(&key).cloned();
        let mut doc = match st.docs.get(&key) {
            Some(Value::Object(m)) => m.clone(),
            _ => {
                let mut m = Map::new();
                for (k, v) in [
                    ("name", json!(item_code)),
                    ("item_code", json!(item_code)),
                    ("doctype", json!("Item")),
                    ("docstatus", json!(0)),
                ] {
                    m.insert(k.into(), v);
                }
                m
            }
        };
        for (k, v) in fields {
            doc.insert((*k).to_owned(), v.clone());
        }
        doc.insert("modified".into(), json!(modified));
        let doc = Value::Object(doc);
        let out = st.fire_saved("Item", "on_update", &doc, before.as_ref())?;
        st.docs.insert(key, doc);
        Ok(out)
    }

    /// Writes a Bin directly with a given `modified` (Data Import, a backdated repost): no
    /// webhook fires.
    /// The site's clock moves on to `modified` if it is behind it.
    pub fn import_bin(&self, item: &str, wh: &str, actual: f64, modified: &str) {
        let mut st = self.lock();
        st.advance_to(modified);
        let name = State::bin_name(item, wh);
        let mut values = Map::new();
        values.insert("item_code".into(), json!(item));
        values.insert("warehouse".into(), json!(wh));
        values.insert("actual_qty".into(), json!(actual));
        values.insert("projected_qty".into(), json!(actual));
        let doc = as_dict("Bin", &name, modified, 0, &values);
        st.docs.insert(("Bin".into(), name), doc);
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn distinct_orders(lines: &[DeliveryLine<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for so in lines.iter().filter_map(|(so, ..)| *so) {
        if !out.iter().any(|o| o == so) {
            out.push(so.to_owned());
        }
    }
    out
}

/// A delivery changes its Sales Orders' status with `db_set`: on_change fires for each.
fn touch_orders(st: &mut State, orders: &[String]) -> Result<Vec<Delivery>, RenderError> {
    let mut out = Vec::new();
    let mut seen: Vec<&String> = Vec::new();
    for so in orders {
        if seen.contains(&so) {
            continue;
        }
        seen.push(so);
        let modified = st.tick();
        let key = ("Sales Order".to_owned(), so.clone());
        if let Some(Value::Object(doc)) = st.docs.get_mut(&key) {
            doc.insert("modified".into(), json!(modified));
            let doc = Value::Object(doc.clone());
            out.extend(st.fire("Sales Order", "on_change", &doc)?);
        }
    }
    Ok(out)
}

fn insert_sle(
    st: &mut State,
    item: &str,
    wh: &str,
    qty: f64,
    voucher_type: &str,
    voucher_no: &str,
    is_cancelled: i64,
) -> Result<Vec<Delivery>, RenderError> {
    let name = st.next_name("MAT-SLE-2026-");
    let modified = st.tick();
    let mut values = Map::new();
    for (k, v) in [
        ("item_code", json!(item)),
        ("warehouse", json!(wh)),
        ("voucher_type", json!(voucher_type)),
        ("voucher_no", json!(voucher_no)),
        ("actual_qty", json!(qty)),
        // ERPNext sends 0.0 here in every payload, whatever the stock is.
        ("qty_after_transaction", json!(0.0)),
        ("is_cancelled", json!(is_cancelled)),
        ("posting_date", json!("2026-11-26")),
    ] {
        values.insert(k.into(), v);
    }
    let doc = as_dict("Stock Ledger Entry", &name, &modified, 1, &values);
    let out = st.fire("Stock Ledger Entry", "after_insert", &doc)?;
    st.docs.insert(("Stock Ledger Entry".into(), name), doc);
    Ok(out)
}

type Shared = web::Data<Arc<Mutex<State>>>;

/// The longest request line gunicorn (Frappe's web server, default settings) accepts.
const MAX_REQUEST_LINE: usize = 4_094;

/// A Frappe v1 error answer: `exc_type`, `exception` and the double-encoded `_server_messages`.
pub(crate) fn frappe_error(status: u16, exc_type: &str, message: &str) -> HttpResponse {
    let msg = json!({"message": message, "title": "Message", "indicator": "red"}).to_string();
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    )
    .json(json!({
        "exception": format!("frappe.exceptions.{exc_type}: {message}"),
        "exc_type": exc_type,
        "_server_messages": json!([msg]).to_string(),
    }))
}

/// Checks `Authorization: token key:secret` and read permission on `doctype`; None when the
/// request may go on.
fn guard(req: &HttpRequest, st: &mut State, doctype: &str) -> Option<HttpResponse> {
    if let Some(refusal) = authenticate(req, st) {
        return Some(refusal);
    }
    st.unreadable.contains(doctype).then(|| {
        frappe_error(
            403,
            "PermissionError",
            &format!("No permission for {doctype}"),
        )
    })
}

/// Locks the emulator for a request on `doctype`: its state, or the refusal [`guard`] answers.
fn guarded<'a>(
    req: &HttpRequest,
    state: &'a Shared,
    doctype: &str,
) -> Result<MutexGuard<'a, State>, Box<HttpResponse>> {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match guard(req, &mut st, doctype) {
        Some(refusal) => Err(Box::new(refusal)),
        None => Ok(st),
    }
}

fn authenticate(req: &HttpRequest, st: &mut State) -> Option<HttpResponse> {
    st.rest_requests += 1;
    orders::record(st, req);
    if st.rest_down {
        return Some(
            HttpResponse::ServiceUnavailable()
                .body("<html>502 Bad Gateway (emulated outage)</html>"),
        );
    }
    match req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
    {
        None => Some(frappe_error(
            403,
            "PermissionError",
            "Insufficient Permission",
        )),
        Some(v) if v == format!("token {API_KEY}:{API_SECRET}") => None,
        Some(_) => Some(HttpResponse::Unauthorized().json(json!({
            "exception": "frappe.exceptions.AuthenticationError",
            "exc_type": "AuthenticationError",
            "exc": "[]",
        }))),
    }
}

fn compare(field: &str, a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) if field == "modified" || field == "creation" => {
            Some(timestamp::cmp(x, y))
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        _ => None,
    }
}

fn matches(doc: &Value, field: &str, op: &str, value: &Value) -> bool {
    use std::cmp::Ordering::*;
    let actual = doc.get(field).unwrap_or(&Value::Null);
    let ord = compare(field, actual, value);
    match op.to_ascii_lowercase().as_str() {
        "=" => ord == Some(Equal),
        "!=" => ord != Some(Equal),
        ">" => ord == Some(Greater),
        ">=" => matches!(ord, Some(Greater | Equal)),
        "<" => ord == Some(Less),
        "<=" => matches!(ord, Some(Less | Equal)),
        "in" | "not in" => {
            let list: Vec<Value> = match value {
                Value::Array(a) => a.clone(),
                Value::String(s) => s.split(',').map(|p| json!(p.trim())).collect(),
                _ => Vec::new(),
            };
            let hit = list
                .iter()
                .any(|v| compare(field, actual, v) == Some(Equal));
            hit == (op.eq_ignore_ascii_case("in"))
        }
        "is" => {
            let set = !actual.is_null() && actual.as_str() != Some("");
            match value.as_str() {
                Some("set") => set,
                Some("not set") => !set,
                _ => false,
            }
        }
        "like" => {
            let pat = value.as_str().unwrap_or_default().replace('%', "");
            actual.as_str().is_some_and(|s| s.contains(&pat))
        }
        _ => false,
    }
}

/// Frappe filters: a list of `[field, op, value]` / `[doctype, field, op, value]`, or a dict
/// of `field: value` / `field: [op, value]`.
fn parse_filters(text: Option<&str>) -> Result<Vec<(String, String, Value)>, String> {
    Ok(orders::parse_filters(text)?
        .into_iter()
        .map(|f| (f.field, f.op, f.value))
        .collect())
}

async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<BTreeMap<String, String>>,
    state: Shared,
) -> HttpResponse {
    // Frappe's gunicorn refuses a request line over 4,094 bytes before the app sees it.
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + " HTTP/1.1".len()
        + 1;
    if line > MAX_REQUEST_LINE {
        return HttpResponse::BadRequest().body(format!(
            "Bad Request\nRequest Line is too large ({line} > {MAX_REQUEST_LINE})"
        ));
    }
    let doctype = path.into_inner();
    let mut st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    if orders::serves(&doctype) {
        return orders::list(&st, &doctype, &query);
    }
    *st.list_reads.entry(doctype.clone()).or_default() += 1;
    let filters = match parse_filters(query.get("filters").map(String::as_str)) {
        Ok(f) => f,
        Err(e) => return frappe_error(417, "ValidationError", &e),
    };
    let fields: Vec<String> = query
        .get("fields")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_else(|| vec!["name".to_owned()]);
    let order_by = query
        .get("order_by")
        .cloned()
        .unwrap_or_else(|| "modified desc".into());
    // "modified desc, name asc": each part a field and a direction.
    let order: Vec<(String, bool)> = order_by
        .split(',')
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let field = words.next()?.trim_matches('`').to_owned();
            let desc = words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            Some((field, desc))
        })
        .collect();
    let (start, take) = orders::page_bounds(&query);
    let mut rows: Vec<&Value> = st
        .docs
        .iter()
        .filter(|((dt, _), _)| *dt == doctype)
        .map(|(_, d)| d)
        .filter(|d| filters.iter().all(|(f, op, v)| matches(d, f, op, v)))
        .collect();
    rows.sort_by(|a, b| {
        let mut o = std::cmp::Ordering::Equal;
        for (field, desc) in &order {
            let c = compare(field, &a[field.as_str()], &b[field.as_str()])
                .unwrap_or(std::cmp::Ordering::Equal);
            o = o.then(if *desc { c.reverse() } else { c });
        }
        o.then_with(|| compare("name", &a["name"], &b["name"]).unwrap_or(std::cmp::Ordering::Equal))
    });
    let data: Vec<Value> = rows
        .into_iter()
        .skip(start)
        .take(take)
        .map(|d| {
            if fields.iter().any(|f| f == "*") {
                return d.clone();
            }
            let mut m = Map::new();
            for f in &fields {
                m.insert(f.clone(), d.get(f).cloned().unwrap_or(Value::Null));
            }
            Value::Object(m)
        })
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

fn frappe_body(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn not_an_object() -> HttpResponse {
    frappe_error(417, "ValidationError", "the body must be a JSON object")
}

fn webhook_write_guard(st: &State, doctype: &str) -> Option<HttpResponse> {
    (doctype == "Webhook" && !st.may_write_webhooks).then(|| {
        frappe_error(
            403,
            "PermissionError",
            "Insufficient Permission for Webhook",
        )
    })
}

/// `POST /api/resource/{doctype}`: `new_doc(...).insert()`.
async fn insert(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Shared,
) -> HttpResponse {
    let doctype = path.into_inner();
    let mut st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    if let Some(resp) = webhook_write_guard(&st, &doctype) {
        return resp;
    }
    let Some(doc) = frappe_body(&body) else {
        return not_an_object();
    };
    if doctype != "Webhook" {
        return orders::insert(&mut st, &doctype, doc);
    }
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if st.docs.contains_key(&("Webhook".to_owned(), name.clone())) {
        return frappe_error(
            409,
            "DuplicateEntryError",
            &format!("Webhook {name} already exists"),
        );
    }
    match st.save_webhook(doc) {
        Ok(name) => {
            HttpResponse::Ok().json(json!({ "data": st.docs.get(&("Webhook".to_owned(), name)) }))
        }
        Err(msg) => frappe_error(417, "ValidationError", &msg),
    }
}

/// `PUT /api/resource/{doctype}/{name}`: `get_doc(...).update(body).save()`.
async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: Shared,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    let mut st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    if let Some(resp) = webhook_write_guard(&st, &doctype) {
        return resp;
    }
    let Some(changes) = frappe_body(&body) else {
        return not_an_object();
    };
    let Some(Value::Object(mut doc)) = st.docs.get(&(doctype.clone(), name.clone())).cloned()
    else {
        return frappe_error(
            404,
            "DoesNotExistError",
            &format!("{doctype} {name} not found"),
        );
    };
    if doctype != "Webhook" {
        return orders::update(&mut st, &doctype, &name, changes);
    }
    for (k, v) in changes {
        if k != "name" {
            doc.insert(k, v);
        }
    }
    match st.save_webhook(doc) {
        Ok(name) => {
            HttpResponse::Ok().json(json!({ "data": st.docs.get(&("Webhook".to_owned(), name)) }))
        }
        Err(msg) => frappe_error(417, "ValidationError", &msg),
    }
}

async fn logged_user(req: HttpRequest, state: Shared) -> HttpResponse {
    if let Err(refusal) = guarded(&req, &state, "User") {
        return *refusal;
    }
    HttpResponse::Ok().json(json!({"message": "shoprelay@example.com"}))
}

/// `frappe.client.get_count(doctype, filters)`.
async fn count(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: Shared,
) -> HttpResponse {
    let doctype = query.get("doctype").cloned().unwrap_or_default();
    let st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    let filters = match parse_filters(query.get("filters").map(String::as_str)) {
        Ok(f) => f,
        Err(e) => return frappe_error(417, "ValidationError", &e),
    };
    let n = st
        .docs
        .iter()
        .filter(|((dt, _), d)| {
            *dt == doctype && filters.iter().all(|(f, op, v)| matches(d, f, op, v))
        })
        .count();
    HttpResponse::Ok().json(json!({ "message": n }))
}

async fn get_one(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Shared,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    let st = match guarded(&req, &state, &doctype) {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    match st.docs.get(&(doctype.clone(), name.clone())) {
        Some(Value::Object(doc)) => {
            // as_dict(no_nulls=True): null fields are left out.
            let data: Map<String, Value> = doc
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            HttpResponse::Ok().json(json!({ "data": data }))
        }
        _ => frappe_error(
            404,
            "DoesNotExistError",
            &format!("{doctype} {name} not found"),
        ),
    }
}
