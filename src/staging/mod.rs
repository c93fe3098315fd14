//! `shoprelay staging-test`: the go-live test plan as one command. Against a running relay, its
//! ERPNext and its shop, it creates a clearly named test item, receives stock for it into a
//! channel warehouse, and plays the cycle a shop order goes through, checking each step where
//! it shows (ERPNext's documents and Bins, the shop's optional read endpoints):
//!
//! 1. a signed test order is placed at the relay (`POST /webhooks/shop/orders`);
//! 2. the Sales Order exists in ERPNext with the right customer, line, prices and shipping;
//! 3. ERPNext reserves the stock for it;
//! 4. the shop's level for the SKU dropped accordingly;
//! 5. a Delivery Note (mapped from the order as ERPNext maps it) and a Shipment with a carrier
//!    and a tracking number are submitted;
//! 6. the shop shows the order shipped with that tracking number.
//!
//! Then it cancels what it submitted and reverses the stock (unless `--keep`), and ends with a
//! verdict. Every wait is a poll with a deadline (`staging_test.step_timeout_secs`).

pub mod diagnose;
pub mod guard;
pub mod order;
pub mod report;

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::availability::channel_level;
use crate::config::{Channel, Secret, Settings};
use crate::erpnext::client::encode_segment;
use crate::erpnext::{ErpClient, ErpError};
use crate::inbound::signature::standard_signature;
use crate::model::BinRow;
use crate::shop::{ShopClient, ShopError};
use diagnose::{dead_letters_about, webhook_finding, Hook, HookFinding, LogRow};
use order::{order_body, same_amount, utc_date_and_time, Money, Names, Party};
use report::{Outcome, Report, StepLine};

/// How the command was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Leave every document in place for inspection.
    pub keep: bool,
    /// `--i-know-this-is-production`: run even where the guard would refuse.
    pub production_ok: bool,
}

/// Why the test could not run at all (a failing step is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error(transparent)]
    Guard(#[from] guard::GuardError),
    #[error("invalid configuration for staging-test: {0}")]
    Config(String),
    #[error("cannot set up the ERPNext client")]
    Erp(#[source] ErpError),
    #[error("cannot set up the shop client")]
    Shop(#[source] ShopError),
    #[error("cannot set up the relay client")]
    Relay(#[source] reqwest::Error),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Stock received for the test item.
const RECEIPT_QTY: f64 = 10.0;
/// The test customer's email unless `staging_test.customer_email` says otherwise.
pub const DEFAULT_EMAIL: &str = "shoprelay-staging-test@example.com";
/// The prefix of every name the test gives.
pub const PREFIX: &str = "SRSTAGE";

/// The relay's base URL: `server.public_url`, else `http://` + `server.listen` (an unspecified
/// address means this machine).
pub fn relay_base(settings: &Settings) -> String {
    match settings
        .server
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let listen = settings.server.listen;
            let ip = if listen.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                listen.ip().to_string()
            };
            if listen.is_ipv6() && !listen.ip().is_unspecified() {
                format!("http://[{ip}]:{}", listen.port())
            } else {
                format!("http://{ip}:{}", listen.port())
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A run id: the UTC time and three random letters (`20261129-132501-k3q`).
fn run_id() -> String {
    let (_, time) = utc_date_and_time(now_secs());
    let stamp: String = time.chars().filter(char::is_ascii_digit).collect();
    let suffix: String = (0..3).map(|_| fastrand::lowercase()).collect();
    format!("{}-{}-{suffix}", &stamp[..8], &stamp[8..])
}

/// Runs the cycle, printing each line to `out` as it completes; returns the report.
pub async fn run(
    settings: &Settings,
    options: &Options,
    out: &mut impl Write,
) -> Result<Report, StagingError> {
    let allowed = &settings.staging_test.allowed_sites;
    guard::check(&settings.erpnext.url, allowed, false).or_else(|refusal| {
        if options.production_ok {
            Ok(())
        } else {
            Err(refusal)
        }
    })?;
    let mut cycle = Cycle::new(settings)?;
    if guard::check(&settings.erpnext.url, allowed, false).is_err() {
        writeln!(
            out,
            "WARNING: {} is not in staging_test.allowed_sites; running because --i-know-this-is-production was given",
            settings.erpnext.url
        )?;
    }
    writeln!(
        out,
        "staging test {} against ERPNext {}, relay {}, shop {} (channel {}, warehouse {})",
        cycle.names.item_code,
        settings.erpnext.url,
        cycle.relay.base,
        settings.shop.base_url,
        cycle.channel.name,
        cycle.warehouse
    )?;
    let mut report = Report::default();

    let t = Instant::now();
    let setup = cycle.setup().await;
    let setup_ok = setup.is_ok();
    record(
        &mut report,
        out,
        None,
        "setup: test item and stock",
        setup.unwrap_or_else(|o| o),
        t,
    )?;
    let titles = [
        "test order placed at the relay",
        "Sales Order in ERPNext with the right customer, line, prices and shipping",
        "ERPNext reserves the stock",
        "the shop's level dropped",
        "Delivery Note and Shipment submitted",
        "the shop shows the order shipped with the tracking number",
    ];
    let mut blocked: Option<String> = (!setup_ok).then(|| "not run: the setup failed".to_owned());
    for (i, title) in titles.iter().enumerate() {
        let n = i as u8 + 1;
        let t = Instant::now();
        let outcome = match &blocked {
            Some(why) => Outcome::Skip(why.clone()),
            None => cycle.step(n).await,
        };
        if blocked.is_none() {
            blocked = cycle.blocks_after(n, &outcome);
        }
        record(&mut report, out, Some(n), title, outcome, t)?;
    }
    let t = Instant::now();
    let cleanup = if options.keep {
        Outcome::Skip(format!(
            "--keep: left in place for inspection: {}",
            cycle.created.describe()
        ))
    } else {
        cycle.cleanup().await
    };
    record(&mut report, out, None, "cleanup", cleanup, t)?;
    writeln!(out, "{}", report.verdict())?;
    Ok(report)
}

/// Prints a finished step and adds it to the report.
fn record(
    report: &mut Report,
    out: &mut impl Write,
    number: Option<u8>,
    title: &str,
    outcome: Outcome,
    started: Instant,
) -> std::io::Result<()> {
    let line = StepLine {
        number,
        title: title.to_owned(),
        outcome,
        took: started.elapsed(),
    };
    writeln!(out, "{}", line.render())?;
    out.flush()?;
    report.lines.push(line);
    Ok(())
}

/// What the run created, for the cleanup.
#[derive(Debug, Default)]
struct Created {
    item: Option<String>,
    stock_entry: Option<String>,
    sales_order: Option<String>,
    delivery_note: Option<String>,
    shipment: Option<String>,
}

impl Created {
    fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("Item", &self.item),
            ("Stock Entry", &self.stock_entry),
            ("Sales Order", &self.sales_order),
            ("Delivery Note", &self.delivery_note),
            ("Shipment", &self.shipment),
        ]
        .iter()
        .filter_map(|(dt, n)| n.as_ref().map(|n| format!("{dt} {n}")))
        .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The relay's HTTP API as the test uses it.
struct RelayApi {
    base: String,
    admin_token: Option<Secret>,
    http: reqwest::Client,
}

impl RelayApi {
    /// `GET {path}` with the admin token; None without a token or on any failure.
    async fn admin(&self, path: &str) -> Option<(u16, Value)> {
        let token = self.admin_token.as_ref()?;
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token.expose())
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// The relay's dead letters mentioning `needle`, as `<status> <answer>` lines.
    async fn dead_letters_about(&self, needle: &str) -> Vec<String> {
        match self.admin("/admin/dead-letters").await {
            Some((200, v)) => dead_letters_about(&v, needle),
            _ => Vec::new(),
        }
    }
}

/// Outcome of a poll with a deadline.
enum Probe<T> {
    Done(T),
    /// Not yet; what was seen.
    Wait(String),
    /// It will not come; why.
    Stop(String),
}

enum Polled<T> {
    Done(T),
    TimedOut(String),
    Stopped(String),
}

/// Probes until done, stopped, or `timeout` passed (then the last thing seen), waiting a
/// little longer between probes each time (100 ms up to 1 s).
async fn poll<T, F, Fut>(timeout: Duration, mut probe: F) -> Polled<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let last = match probe().await {
            Probe::Done(v) => return Polled::Done(v),
            Probe::Stop(why) => return Polled::Stopped(why),
            Probe::Wait(seen) => seen,
        };
        let now = Instant::now();
        if now >= deadline {
            return Polled::TimedOut(last);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn fail(
    expected: impl Into<String>,
    found: impl Into<String>,
    cause: impl Into<String>,
) -> Outcome {
    Outcome::Fail {
        expected: expected.into(),
        found: found.into(),
        cause: cause.into(),
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn number(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(|x| {
            x.as_f64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0.0)
}

fn rows(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// An ERPNext refusal, with what probably causes it.
fn erp_cause(e: &ErpError) -> String {
    match e {
        ErpError::Status { status: 403, .. } => {
            "the API user lacks a permission for this document type (ERPNext's Role Permissions)"
                .into()
        }
        ErpError::Status { status: 401, .. } => {
            "erpnext.api_key / erpnext.api_secret are wrong".into()
        }
        ErpError::Status { status: 417, .. } => {
            "ERPNext's validation refused it (the message says why)".into()
        }
        ErpError::Transport(_) => "ERPNext cannot be reached from here (erpnext.url)".into(),
        _ => "see ERPNext's answer".into(),
    }
}

struct Cycle<'a> {
    settings: &'a Settings,
    erp: ErpClient,
    shop: ShopClient,
    relay: RelayApi,
    names: Names,
    money: Money,
    channel: Channel,
    warehouse: String,
    email: String,
    carrier: String,
    timeout: Duration,
    today: String,
    company: String,
    currency: String,
    country_code: String,
    created: Created,
    /// The Sales Order as read in step 2.
    sales_order: Option<Value>,
}

impl<'a> Cycle<'a> {
    fn new(settings: &'a Settings) -> Result<Self, StagingError> {
        let st = &settings.staging_test;
        let channel = match &st.channel {
            Some(name) => settings
                .channels
                .iter()
                .find(|c| &c.name == name)
                .cloned()
                .ok_or_else(|| {
                    StagingError::Config(format!(
                        "`staging_test.channel` `{name}` is not one of the [[channels]]"
                    ))
                })?,
            None => settings
                .channels
                .first()
                .cloned()
                .ok_or_else(|| StagingError::Config("no [[channels]] configured".into()))?,
        };
        let warehouse = st
            .warehouse
            .clone()
            .or_else(|| channel.warehouses.first().cloned())
            .ok_or_else(|| {
                StagingError::Config(format!("channel `{}` has no warehouse", channel.name))
            })?;
        let relay = RelayApi {
            base: relay_base(settings),
            admin_token: settings.server.admin_token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(settings.shop.timeout_secs.max(5)))
                .user_agent(concat!(
                    "shoprelay-staging-test/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .map_err(StagingError::Relay)?,
        };
        let (today, _) = utc_date_and_time(now_secs());
        Ok(Self {
            settings,
            erp: ErpClient::new(&settings.erpnext).map_err(StagingError::Erp)?,
            shop: ShopClient::new(&settings.shop).map_err(StagingError::Shop)?,
            relay,
            names: Names::new(PREFIX, &run_id()),
            money: Money::TEST,
            channel,
            warehouse,
            email: st
                .customer_email
                .clone()
                .unwrap_or_else(|| DEFAULT_EMAIL.to_owned()),
            carrier: st
                .carrier
                .clone()
                .unwrap_or_else(|| "shoprelay-test".into()),
            timeout: Duration::from_secs(st.step_timeout_secs.unwrap_or(60)),
            today,
            company: String::new(),
            currency: String::new(),
            country_code: String::new(),
            created: Created::default(),
            sales_order: None,
        })
    }

    /// Which later steps cannot run after step `n` ended with `outcome`.
    fn blocks_after(&self, n: u8, outcome: &Outcome) -> Option<String> {
        let failed = matches!(outcome, Outcome::Fail { .. });
        match n {
            1 if failed => Some("not run: no order reached the relay (step 1)".into()),
            2 if self.sales_order.is_none() => {
                Some("not run: there is no Sales Order (step 2)".into())
            }
            5 if self.created.delivery_note.is_none() => {
                Some("not run: there is no Delivery Note (step 5)".into())
            }
            _ => None,
        }
    }

    async fn step(&mut self, n: u8) -> Outcome {
        match n {
            1 => self.place_order().await,
            2 => self.sales_order_exists().await,
            3 => self.reserved().await,
            4 => self.shop_level().await,
            5 => self.deliver().await,
            _ => self.shop_shipment().await,
        }
    }

    /// The test item and its stock. Err is the failing line.
    async fn setup(&mut self) -> Result<Outcome, Outcome> {
        let wh = self.warehouse.clone();
        let which = match &self.settings.staging_test.warehouse {
            Some(_) => "staging_test.warehouse".to_owned(),
            None => format!("the first warehouse of channel `{}`", self.channel.name),
        };
        let doc = match self.erp.get_doc::<Value>("Warehouse", &wh).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(fail(
                    format!("warehouse `{wh}` ({which}) in ERPNext"),
                    "ERPNext has no such warehouse",
                    "set staging_test.warehouse to a leaf warehouse of the channel",
                ))
            }
            Err(e) => {
                return Err(fail(
                    format!("to read warehouse `{wh}`"),
                    e.to_string(),
                    erp_cause(&e),
                ))
            }
        };
        let mut doc = doc;
        if number(&doc, "is_group") != 0.0 {
            // As the relay takes a channel's orders from the first leaf (by name) of a group.
            let leaf = match self.first_leaf(&doc).await {
                Some(leaf) if self.settings.staging_test.warehouse.is_none() => leaf,
                _ => {
                    return Err(fail(
                        format!("`{wh}` ({which}) to be a leaf warehouse that can hold stock"),
                        "it is a group warehouse",
                        "set staging_test.warehouse to a leaf warehouse of the channel",
                    ))
                }
            };
            self.warehouse = text(&leaf, "name");
            doc = leaf;
        }
        let wh = self.warehouse.clone();
        self.company = text(&doc, "company");
        let company = match self.erp.get_doc::<Value>("Company", &self.company).await {
            Ok(Some(c)) => c,
            _ => Value::Null,
        };
        self.currency = Some(text(&company, "default_currency"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "USD".into());
        let country = text(&company, "country");
        self.country_code = match self.erp.get_doc::<Value>("Country", &country).await {
            Ok(Some(c)) => text(&c, "code").to_ascii_uppercase(),
            _ => String::new(),
        };
        if self.country_code.len() != 2 {
            self.country_code = "US".into();
        }

        let code = self.names.item_code.clone();
        let mut item = json!({
            "item_code": code,
            "item_name": format!("shoprelay staging test {code}"),
            "description": "Created by `shoprelay staging-test`; cancelled and disabled when the test ends.",
            "item_group": "All Item Groups",
            "stock_uom": "Nos",
            "is_stock_item": 1,
            "include_item_in_manufacturing": 0,
        });
        if let Some(field) = &self.settings.erpnext.sku_field {
            item[field.as_str()] = json!(code);
        }
        if let Err(e) = self.erp.save_doc("Item", None, &item).await {
            return Err(fail(
                format!("to create the test item {code}"),
                e.to_string(),
                erp_cause(&e),
            ));
        }
        self.created.item = Some(code.clone());
        let receipt = json!({
            "stock_entry_type": "Material Receipt",
            "purpose": "Material Receipt",
            "company": self.company,
            "docstatus": 1,
            "remarks": format!("shoprelay staging test {code}"),
            "items": [{"item_code": code, "qty": RECEIPT_QTY, "t_warehouse": wh, "basic_rate": 5.0, "uom": "Nos", "conversion_factor": 1}],
        });
        match self.erp.save_doc("Stock Entry", None, &receipt).await {
            Ok(doc) => {
                let name = text(&doc, "name");
                self.created.stock_entry = Some(name.clone());
                Ok(Outcome::Pass(format!(
                    "item {code} created, {RECEIPT_QTY} received into {wh} ({name})"
                )))
            }
            Err(e) => Err(fail(
                format!("a submitted Material Receipt of {RECEIPT_QTY} {code} into {wh}"),
                e.to_string(),
                erp_cause(&e),
            )),
        }
    }

    /// The first leaf warehouse, by name, below group warehouse `group`.
    async fn first_leaf(&self, group: &Value) -> Option<Value> {
        let filters = json!([
            ["lft", ">", number(group, "lft")],
            ["rgt", "<", number(group, "rgt")],
            ["is_group", "=", 0]
        ]);
        let rows: Vec<Value> = self
            .erp
            .list_page(
                "Warehouse",
                &["name", "company"],
                &filters,
                "name asc",
                0,
                1,
            )
            .await
            .ok()?;
        rows.into_iter().next()
    }

    /// Step 1: the signed order, as the shop would send it.
    async fn place_order(&mut self) -> Outcome {
        let Some(secret) = self.settings.shop.webhook_secrets.first() else {
            return fail(
                "an order signed with shop.webhook_secret",
                "shop.webhook_secret is not set",
                "set shop.webhook_secret (or SHOPRELAY_SHOP_WEBHOOK_SECRET) to the secret the relay verifies orders with",
            );
        };
        let (_, placed_at) = utc_date_and_time(now_secs());
        let party = Party {
            email: &self.email,
            country_code: &self.country_code,
            currency: &self.currency,
            channel: &self.channel.name,
        };
        let body = order_body(&self.names, self.money, &party, &placed_at).to_string();
        let ts = now_secs();
        let signature =
            standard_signature(secret.expose(), &self.names.webhook_id, ts, body.as_bytes());
        let url = format!("{}/webhooks/shop/orders", self.relay.base);
        let sent = self
            .relay
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("webhook-id", &self.names.webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let expected = format!("POST {url} answered 202");
        match sent {
            Err(e) => fail(
                expected,
                format!("no answer: {e}"),
                "the relay is not running or not at this address: start `shoprelay serve`, check server.public_url / server.listen",
            ),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let answer: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
                match status {
                    200 | 202 => Outcome::Pass(format!(
                        "order {} for {} x {} at {:.2} accepted ({status})",
                        self.names.order_id, self.money.qty, self.names.item_code, self.money.unit_price
                    )),
                    404 | 405 => fail(
                        expected,
                        format!("{status} {answer}"),
                        "this relay does not serve shop orders (an older release), or the URL is not the relay's",
                    ),
                    401 => fail(
                        expected,
                        format!("401 {answer}"),
                        "the relay refused the signature: its shop.webhook_secret differs from this configuration's, or the clocks differ by more than 5 minutes",
                    ),
                    _ => fail(expected, format!("{status} {answer}"), "the relay refused the order (its answer says why)"),
                }
            }
        }
    }

    /// Step 2: the Sales Order, found by the shop order id, checked field by field.
    async fn sales_order_exists(&mut self) -> Outcome {
        let field = self.settings.erpnext.order_id_field.clone();
        let order_id = self.names.order_id.clone();
        let filters = json!([[field, "=", order_id], ["docstatus", "<", 2]]);
        let found = poll(self.timeout, || async {
            match self
                .erp
                .list_page::<Value>("Sales Order", &["name"], &filters, "creation desc", 0, 5)
                .await
            {
                Ok(rows) if !rows.is_empty() => return Probe::Done(text(&rows[0], "name")),
                Ok(_) => {}
                Err(e) if e.is_permanent() => return Probe::Stop(format!("ERPNext: {e}")),
                Err(_) => {}
            }
            match self
                .relay
                .admin(&format!("/admin/orders/{}", encode_segment(&order_id)))
                .await
            {
                Some((200, v)) if text(&v, "status") == "dead" => Probe::Stop(format!(
                    "the relay gave the order up: {}",
                    text(&v, "error")
                )),
                Some((200, v)) => Probe::Wait(format!(
                    "no Sales Order yet; the relay says the order is `{}`{}",
                    text(&v, "status"),
                    Some(text(&v, "error"))
                        .filter(|e| !e.is_empty())
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                )),
                Some((404, _)) => {
                    Probe::Wait("no Sales Order yet; the relay has no record of the order".into())
                }
                _ => Probe::Wait("no Sales Order yet".into()),
            }
        })
        .await;
        let expected = format!("a Sales Order with {field} = {order_id}");
        let name = match found {
            Polled::Done(name) => name,
            Polled::Stopped(why) => {
                return fail(
                    expected,
                    why,
                    "the relay gave the order up for the reason it gives (ERPNext's refusal, or its own [orders] settings); GET /admin/orders/{id} on the relay shows it, POST /admin/orders/{id}/retry places it again once fixed",
                )
            }
            Polled::TimedOut(seen) => {
                let cause = if self.relay.admin_token.is_none() {
                    "the relay's order worker has not created it; set server.admin_token to see the order's fate (GET /admin/orders/{id})".to_owned()
                } else if seen.contains("no record") {
                    "the relay did not keep the order: is this configuration's relay the one that answered step 1?".to_owned()
                } else {
                    "the relay's order worker has not created it: is ERPNext reachable from the relay, and may its API user create Customers and Sales Orders? (the relay's log says)".to_owned()
                };
                return fail(expected, format!("{seen} after {} s", self.timeout.as_secs()), cause);
            }
        };
        self.created.sales_order = Some(name.clone());
        let so = match self.erp.get_doc::<Value>("Sales Order", &name).await {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                return fail(
                    expected,
                    format!("{name} is listed but cannot be read"),
                    "ERPNext answered 404",
                )
            }
            Err(e) => {
                return fail(
                    expected,
                    format!("{name} cannot be read: {e}"),
                    erp_cause(&e),
                )
            }
        };
        self.sales_order = Some(so.clone());
        let problems = self.check_sales_order(&so).await;
        let m = self.money;
        if problems.is_empty() {
            Outcome::Pass(format!(
                "{name} for {}: {} x {} at {:.2} (line {:.2}), shipping {:.2}, grand total {:.2}",
                text(&so, "customer"),
                m.qty,
                self.names.item_code,
                m.rate(),
                m.line_total(),
                m.shipping,
                m.total()
            ))
        } else {
            fail(
                format!(
                    "{name} submitted, for the customer with email {}, one line {} x {} = {:.2}, shipping {:.2} as an Actual tax row, grand total {:.2}",
                    self.email, m.qty, self.names.item_code, m.line_total(), m.shipping, m.total()
                ),
                problems.join("; "),
                "the relay's order mapping and ERPNext disagree: a Pricing Rule or Item Price changing the rate, a taxes template adding rows, or the relay's [orders] settings",
            )
        }
    }

    /// What differs between the Sales Order and the test order.
    async fn check_sales_order(&self, so: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let m = self.money;
        if number(so, "docstatus") != 1.0 {
            problems.push(format!(
                "it is not submitted (docstatus {}): a draft reserves nothing (is orders.submit false?)",
                number(so, "docstatus")
            ));
        }
        let customer = text(so, "customer");
        let email = self.customer_email(&customer).await;
        if email.as_deref().map(|e| e.trim().to_lowercase())
            != Some(self.email.trim().to_lowercase())
        {
            problems.push(format!(
                "its customer `{customer}` has email {}",
                email.unwrap_or_else(|| "(none)".into())
            ));
        }
        let items = rows(so, "items");
        let ours: Vec<&Value> = items
            .iter()
            .filter(|r| text(r, "item_code") == self.names.item_code)
            .collect();
        if items.len() != 1 || ours.len() != 1 {
            problems.push(format!(
                "{} line(s), {} for {}",
                items.len(),
                ours.len(),
                self.names.item_code
            ));
        }
        if let Some(line) = ours.first() {
            if !same_amount(number(line, "qty"), m.qty) {
                problems.push(format!("qty {}", number(line, "qty")));
            }
            if !same_amount(number(line, "amount"), m.line_total()) {
                problems.push(format!(
                    "line amount {:.2} (rate {:.2})",
                    number(line, "amount"),
                    number(line, "rate")
                ));
            }
        }
        let taxes = rows(so, "taxes");
        let account = self.settings.orders.shipping_account.as_deref();
        let shipping = taxes.iter().any(|t| {
            text(t, "charge_type") == "Actual"
                && same_amount(number(t, "tax_amount"), m.shipping)
                && account.is_none_or(|a| text(t, "account_head") == a)
        });
        if !shipping {
            let seen: Vec<String> = taxes
                .iter()
                .map(|t| {
                    format!(
                        "{} {:.2} on {}",
                        text(t, "charge_type"),
                        number(t, "tax_amount"),
                        text(t, "account_head")
                    )
                })
                .collect();
            problems.push(format!(
                "no Actual tax row of {:.2} for shipping{} (rows: {})",
                m.shipping,
                account.map(|a| format!(" on {a}")).unwrap_or_default(),
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ));
        }
        if !same_amount(number(so, "grand_total"), m.total()) {
            problems.push(format!("grand total {:.2}", number(so, "grand_total")));
        }
        problems
    }

    /// The customer's email: the test email when one of the customer's Contacts has it (the
    /// relay finds customers that way), else the Customer's `email_id` or its primary
    /// contact's.
    async fn customer_email(&self, customer: &str) -> Option<String> {
        let linked = json!([
            ["Contact Email", "email_id", "=", self.email.trim()],
            ["Dynamic Link", "link_doctype", "=", "Customer"],
            ["Dynamic Link", "link_name", "=", customer]
        ]);
        let order = "`tabContact`.`creation` asc";
        if let Ok(rows) = self
            .erp
            .list_page::<Value>("Contact", &["name"], &linked, order, 0, 1)
            .await
        {
            if !rows.is_empty() {
                return Some(self.email.clone());
            }
        }
        let doc = self
            .erp
            .get_doc::<Value>("Customer", customer)
            .await
            .ok()??;
        let direct = text(&doc, "email_id");
        if !direct.trim().is_empty() {
            return Some(direct);
        }
        let contact = text(&doc, "customer_primary_contact");
        if contact.is_empty() {
            return None;
        }
        let c = self
            .erp
            .get_doc::<Value>("Contact", &contact)
            .await
            .ok()??;
        Some(text(&c, "email_id")).filter(|e| !e.is_empty())
    }

    /// The warehouse the Sales Order's line reserves in.
    fn order_warehouse(&self) -> String {
        self.sales_order
            .as_ref()
            .and_then(|so| {
                rows(so, "items")
                    .iter()
                    .find(|r| text(r, "item_code") == self.names.item_code)
                    .map(|r| text(r, "warehouse"))
            })
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| self.warehouse.clone())
    }

    async fn bins(&self) -> Result<Vec<BinRow>, ErpError> {
        self.erp
            .list_page::<BinRow>(
                "Bin",
                &BinRow::FIELDS,
                &json!([["item_code", "=", self.names.item_code]]),
                "name asc",
                0,
                100,
            )
            .await
    }

    /// Step 3: the Bin shows the order's quantity reserved.
    async fn reserved(&mut self) -> Outcome {
        let wh = self.order_warehouse();
        let qty = self.money.qty;
        let seen = poll(self.timeout, || async {
            match self.bins().await {
                Ok(bins) => {
                    let r = bins
                        .iter()
                        .find(|b| b.warehouse == wh)
                        .map(|b| b.reserved_qty)
                        .unwrap_or(0.0);
                    if same_amount(r, qty) {
                        Probe::Done(r)
                    } else {
                        Probe::Wait(format!("reserved_qty {r} in {wh}"))
                    }
                }
                Err(e) if e.is_permanent() => Probe::Stop(format!("the Bin cannot be read: {e}")),
                Err(e) => Probe::Wait(format!("the Bin cannot be read: {e}")),
            }
        })
        .await;
        let expected = format!("reserved_qty {qty} for {} in {wh}", self.names.item_code);
        let draft = self
            .sales_order
            .as_ref()
            .is_some_and(|so| number(so, "docstatus") != 1.0);
        match seen {
            Polled::Done(r) => Outcome::Pass(format!("{r} reserved in {wh}")),
            Polled::Stopped(why) => fail(expected, why, "the API user may not read Bin"),
            Polled::TimedOut(found) => fail(
                expected,
                found,
                if draft {
                    "the Sales Order is a draft; only a submitted one reserves stock (orders.submit)"
                } else {
                    "ERPNext did not reserve: is the item a stock item, and is the line's warehouse the channel's?"
                },
            ),
        }
    }

    /// The level the shop must show now, and before the order reserved anything.
    async fn expected_levels(&self) -> Result<(u64, u64), ErpError> {
        let bins = self.bins().await?;
        let mut warehouses = vec![self.warehouse.clone()];
        let so_wh = self.order_warehouse();
        if so_wh != self.warehouse && self.channel.warehouses.contains(&so_wh) {
            warehouses.push(so_wh);
        }
        let channel = Channel {
            warehouses,
            ..self.channel.clone()
        };
        let now = channel_level(&channel, |w| bins.iter().find(|b| b.warehouse == w));
        let unreserved: Vec<BinRow> = bins
            .iter()
            .map(|b| BinRow {
                reserved_qty: 0.0,
                ..b.clone()
            })
            .collect();
        let before = channel_level(&channel, |w| unreserved.iter().find(|b| b.warehouse == w));
        Ok((now, before))
    }

    /// The shop's level for the test SKU, through the optional `GET /inventory/levels`.
    async fn read_level(&self) -> Result<Option<u64>, String> {
        let path = format!(
            "/inventory/levels?channel={}&sku={}",
            encode_segment(&self.channel.name),
            encode_segment(&self.names.item_code)
        );
        match self.shop.get(&path).await {
            Ok(a) if a.status == 404 => Err("404".into()),
            Ok(a) if (200..300).contains(&a.status) => {
                let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
                Ok(rows(&v, "levels")
                    .iter()
                    .find(|l| text(l, "sku") == self.names.item_code)
                    .and_then(|l| l.get("available").and_then(Value::as_u64)))
            }
            Ok(a) => Err(format!(
                "the shop answered {} {}",
                a.status,
                a.body.chars().take(200).collect::<String>()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Step 4: the shop's level dropped by the reservation.
    async fn shop_level(&mut self) -> Outcome {
        let sku = self.names.item_code.clone();
        let (expected, before) = match self.expected_levels().await {
            Ok(v) => v,
            Err(e) => return fail("the Bins of the test item", e.to_string(), erp_cause(&e)),
        };
        let channel = self.channel.name.clone();
        if let Err(first) = self.read_level().await {
            if first == "404" {
                return Outcome::Skip(format!(
                    "the shop answers 404 to GET /inventory/levels (optional in the contract): {sku} should show {expected} in channel {channel} (was {before})"
                ));
            }
        }
        let seen = poll(self.timeout, || async {
            match self.read_level().await {
                Ok(Some(n)) if n == expected => Probe::Done(n),
                Ok(Some(n)) => Probe::Wait(format!("{n}")),
                Ok(None) => Probe::Wait("no level for the SKU".into()),
                Err(e) => Probe::Wait(e),
            }
        })
        .await;
        let found = match seen {
            Polled::Done(n) => {
                return Outcome::Pass(format!(
                "the shop shows {n} for {sku} in channel {channel} (was {before} before the order)"
            ))
            }
            Polled::Stopped(s) | Polled::TimedOut(s) => s,
        };
        let expected_text =
            format!("{expected} for {sku} in channel {channel} (was {before} before the order)");
        let refusals = self.relay.dead_letters_about(&sku).await;
        let cause = if let Some(r) = refusals.first() {
            format!("the shop refused the relay's push: {r}; fix the shop, then POST /admin/dead-letters/{{id}}/retry on the relay")
        } else if found == before.to_string() {
            let so = self.created.sales_order.clone();
            let finding = self
                .finding("Sales Order", "on_submit", so.as_deref())
                .await;
            format!(
                "the relay did not hear of the reservation: {}",
                if finding.ok() {
                    format!(
                        "{}; is the relay's processor running (GET /admin/status)?",
                        finding.explain()
                    )
                } else {
                    finding.explain()
                }
            )
        } else if found.starts_with("no level") {
            let finding = self.receipt_finding().await;
            format!(
                "the relay never pushed {sku}: {}",
                if finding.ok() {
                    format!(
                        "{}; is channel `{channel}` fed by {} in the relay's mapping (GET /admin/channels)?",
                        finding.explain(),
                        self.warehouse
                    )
                } else {
                    finding.explain()
                }
            )
        } else {
            "the relay's channel mapping (policy, buffer, warehouses: GET /admin/channels) differs from this configuration's".into()
        };
        fail(expected_text, found, cause)
    }

    /// What became of the webhook that tells the relay of the test receipt: the Stock Entry's
    /// own `on_submit` where the shipped webhooks listen to vouchers, else the first ledger
    /// row's `after_insert`.
    async fn receipt_finding(&self) -> HookFinding {
        let by_voucher = crate::erpnext::webhooks::shipped()
            .map(|hooks| {
                hooks.iter().any(|h| {
                    h.webhook_doctype == "Stock Entry" && h.webhook_docevent == "on_submit"
                })
            })
            .unwrap_or(false);
        if by_voucher {
            let receipt = self.created.stock_entry.clone();
            return self
                .finding("Stock Entry", "on_submit", receipt.as_deref())
                .await;
        }
        let sle = self
            .erp
            .list_page::<Value>(
                "Stock Ledger Entry",
                &["name"],
                &json!([["item_code", "=", self.names.item_code]]),
                "creation asc",
                0,
                1,
            )
            .await
            .ok()
            .and_then(|rows| rows.first().map(|r| text(r, "name")));
        self.finding("Stock Ledger Entry", "after_insert", sle.as_deref())
            .await
    }

    /// Step 5: a Delivery Note mapped from the order, and a Shipment with carrier and tracking.
    async fn deliver(&mut self) -> Outcome {
        let so = self.created.sales_order.clone().unwrap_or_default();
        let expected = "a submitted Delivery Note mapped from the Sales Order, and a submitted Shipment with carrier and tracking number";
        let mapped = match self
            .erp
            .post_method(
                "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
                &json!({"source_name": so}),
            )
            .await
        {
            Ok(v) if v.is_object() => v,
            Ok(v) => {
                return fail(
                    expected,
                    format!("make_delivery_note answered {v}"),
                    "ERPNext could not map the Sales Order",
                )
            }
            Err(e) => return fail(expected, format!("make_delivery_note: {e}"), erp_cause(&e)),
        };
        let mut dn = mapped;
        for (k, v) in [
            ("docstatus", json!(1)),
            ("transporter_name", json!(self.carrier)),
            ("lr_no", json!(self.names.tracking_number)),
            ("lr_date", json!(self.today)),
        ] {
            dn[k] = v;
        }
        let dn = match self.erp.save_doc("Delivery Note", None, &dn).await {
            Ok(d) => d,
            Err(e) => {
                return fail(
                    expected,
                    format!("the Delivery Note was refused: {e}"),
                    erp_cause(&e),
                )
            }
        };
        let dn_name = text(&dn, "name");
        self.created.delivery_note = Some(dn_name.clone());
        let pickup = match self.pickup_address().await {
            Ok(a) => a,
            Err(e) => {
                return fail(
                    expected,
                    format!("no pickup address for the Shipment: {e}"),
                    erp_cause(&e),
                )
            }
        };
        let customer = text(&dn, "customer");
        let (address, contact) = self.customer_address_and_contact(&customer).await;
        let value = Some(number(&dn, "grand_total"))
            .filter(|v| *v > 0.0)
            .unwrap_or(self.money.total());
        let tomorrow = utc_date_and_time(now_secs() + 86_400).0;
        let shipment = json!({
            "pickup_from_type": "Company",
            "pickup_company": self.company,
            "pickup_address_name": pickup,
            "delivery_to_type": "Customer",
            "delivery_customer": customer,
            "delivery_address_name": address,
            "delivery_contact_name": contact,
            "pickup_date": tomorrow,
            "value_of_goods": value,
            "description_of_content": format!("shoprelay staging test {}", self.names.item_code),
            "shipment_parcel": [{"length": 10, "width": 10, "height": 10, "weight": 1, "count": 1}],
            "shipment_delivery_note": [{"delivery_note": dn_name, "grand_total": value}],
            "carrier": self.carrier,
            "carrier_service": "staging test",
            "awb_number": self.names.tracking_number,
            "docstatus": 1,
        });
        match self.erp.save_doc("Shipment", None, &shipment).await {
            Ok(s) => {
                let name = text(&s, "name");
                self.created.shipment = Some(name.clone());
                Outcome::Pass(format!(
                    "Delivery Note {dn_name} and Shipment {name} submitted (carrier {}, tracking {})",
                    self.carrier, self.names.tracking_number
                ))
            }
            Err(e) => fail(
                expected,
                format!("Delivery Note {dn_name} submitted; the Shipment was refused: {e}"),
                erp_cause(&e),
            ),
        }
    }

    /// A company Address for the Shipment's pickup: configured, found, or created once. (Lists
    /// filtered on a child table join it, so their order names its table: a bare `creation` is
    /// ambiguous to MariaDB.)
    async fn pickup_address(&self) -> Result<String, ErpError> {
        if let Some(a) = &self.settings.staging_test.pickup_address {
            return Ok(a.clone());
        }
        let title = "shoprelay staging-test pickup";
        let found: Vec<Value> = self
            .erp
            .list_page(
                "Address",
                &["name"],
                &json!([
                    ["Dynamic Link", "link_doctype", "=", "Company"],
                    ["Dynamic Link", "link_name", "=", self.company]
                ]),
                "`tabAddress`.`creation` asc",
                0,
                1,
            )
            .await?;
        if let Some(a) = found.first() {
            return Ok(text(a, "name"));
        }
        let created = self
            .erp
            .save_doc(
                "Address",
                None,
                &json!({
                    "address_title": title,
                    "address_type": "Shipping",
                    "address_line1": "1 Depot Road",
                    "city": "Testville",
                    "pincode": "12345",
                    "country": self.company_country().await,
                    "is_your_company_address": 1,
                    "links": [{"link_doctype": "Company", "link_name": self.company}],
                }),
            )
            .await?;
        Ok(text(&created, "name"))
    }

    async fn company_country(&self) -> String {
        match self.erp.get_doc::<Value>("Company", &self.company).await {
            Ok(Some(c)) => text(&c, "country"),
            _ => String::new(),
        }
    }

    /// The customer's primary address and contact, else the first linked ones.
    async fn customer_address_and_contact(&self, customer: &str) -> (String, String) {
        let doc = self
            .erp
            .get_doc::<Value>("Customer", customer)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut address = text(&doc, "customer_primary_address");
        let mut contact = text(&doc, "customer_primary_contact");
        let linked = json!([
            ["Dynamic Link", "link_doctype", "=", "Customer"],
            ["Dynamic Link", "link_name", "=", customer]
        ]);
        if address.is_empty() {
            if let Ok(rows) = self
                .erp
                .list_page::<Value>(
                    "Address",
                    &["name"],
                    &linked,
                    "`tabAddress`.`creation` desc",
                    0,
                    1,
                )
                .await
            {
                address = rows.first().map(|r| text(r, "name")).unwrap_or_default();
            }
        }
        if contact.is_empty() {
            if let Ok(rows) = self
                .erp
                .list_page::<Value>(
                    "Contact",
                    &["name"],
                    &linked,
                    "`tabContact`.`creation` desc",
                    0,
                    1,
                )
                .await
            {
                contact = rows.first().map(|r| text(r, "name")).unwrap_or_default();
            }
        }
        (address, contact)
    }

    /// Where the site's webhooks must point: `server.public_url` (what `erpnext setup` used);
    /// empty (not checked) when it is not configured.
    fn hooks_base(&self) -> &str {
        self.settings
            .server
            .public_url
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
    }

    /// The shoprelay webhooks of the site, or why they cannot be read.
    async fn hooks(&self) -> Result<Vec<Hook>, String> {
        self.erp
            .list_page::<Hook>(
                "Webhook",
                &[
                    "name",
                    "webhook_doctype",
                    "webhook_docevent",
                    "enabled",
                    "request_url",
                ],
                &json!([["name", "like", "shoprelay %"]]),
                "name asc",
                0,
                0,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// The Webhook Request Log rows for `documents`; None when it cannot be read.
    async fn request_log(&self, documents: &[&str]) -> Option<Vec<LogRow>> {
        self.erp
            .list_page::<LogRow>(
                "Webhook Request Log",
                &["webhook", "reference_document", "error", "response"],
                &json!([["reference_document", "in", documents]]),
                "creation asc",
                0,
                0,
            )
            .await
            .ok()
    }

    async fn finding(&self, doctype: &str, event: &str, document: Option<&str>) -> HookFinding {
        let hooks = self.hooks().await;
        let log = match document {
            Some(d) => self.request_log(&[d]).await,
            None => None,
        };
        webhook_finding(
            hooks.as_deref().map_err(String::as_str),
            log.as_deref(),
            doctype,
            event,
            document,
            self.hooks_base(),
        )
    }

    /// The shipment as the shop shows it: Ok(None) for 404.
    async fn read_shipment(&self, path: &str) -> Result<Option<Value>, String> {
        match self.shop.get(path).await {
            Ok(a) if a.status == 404 => Ok(None),
            Ok(a) if (200..300).contains(&a.status) => {
                Ok(Some(serde_json::from_str(&a.body).unwrap_or(Value::Null)))
            }
            Ok(a) => Err(format!(
                "the shop answered {} {}",
                a.status,
                a.body.chars().take(200).collect::<String>()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Step 6: the shop shows the order shipped with the tracking number, and ERPNext told the
    /// relay about the Delivery Note itself (not only through the Shipment).
    async fn shop_shipment(&mut self) -> Outcome {
        let dn = self.created.delivery_note.clone().unwrap_or_default();
        let order_id = self.names.order_id.clone();
        let tracking = self.names.tracking_number.clone();
        let path = format!(
            "/orders/{}/shipments/{}",
            encode_segment(&order_id),
            encode_segment(&dn)
        );
        let expected = format!(
            "GET {path} shows status shipped, tracking number {tracking}, and ERPNext delivered `Delivery Note on_submit` for {dn} to the relay"
        );
        let shows =
            |v: &Value| text(v, "status") == "shipped" && text(v, "tracking_number") == tracking;
        let hooks = self.hooks().await;
        let dn_hook = webhook_finding(
            hooks.as_deref().map_err(String::as_str),
            None,
            "Delivery Note",
            "on_submit",
            None,
            self.hooks_base(),
        );
        if !dn_hook.ok() {
            let seen = match self.read_shipment(&path).await {
                Ok(Some(v)) if shows(&v) => "the shop shows it shipped, but only because the Shipment document made the relay read the note".to_owned(),
                Ok(Some(v)) => format!("the shop shows {v}"),
                Ok(None) => "the shop does not show the shipment (404)".to_owned(),
                Err(e) => e,
            };
            return fail(
                expected,
                seen,
                format!(
                    "{}; without it a Delivery Note reaches the shop only if a Shipment document follows it",
                    dn_hook.explain()
                ),
            );
        }
        let shipment = self.created.shipment.clone();
        let documents: Vec<&str> = std::iter::once(dn.as_str())
            .chain(shipment.as_deref())
            .collect();
        let hooks_ref = hooks.as_deref().map_err(String::as_str);
        let seen = poll(self.timeout, || async {
            let shop = self.read_shipment(&path).await;
            let log = self.request_log(&documents).await;
            let delivered = webhook_finding(
                hooks_ref,
                log.as_deref(),
                "Delivery Note",
                "on_submit",
                Some(dn.as_str()),
                self.hooks_base(),
            );
            match shop {
                Ok(Some(v)) if shows(&v) && delivered.ok() => Probe::Done(v),
                Ok(Some(v)) if shows(&v) => Probe::Wait(format!(
                    "the shop shows it shipped, but {}",
                    delivered.explain()
                )),
                Ok(Some(v)) => Probe::Wait(format!("the shop shows {v}")),
                Ok(None) => Probe::Wait("404 (the shop does not show the shipment)".into()),
                Err(e) => Probe::Wait(e),
            }
        })
        .await;
        let found = match seen {
            Polled::Done(v) => {
                return Outcome::Pass(format!(
                    "order {order_id} shipment {dn}: {} with {}",
                    text(&v, "status"),
                    text(&v, "tracking_number")
                ))
            }
            Polled::Stopped(s) | Polled::TimedOut(s) => s,
        };
        let refusals = self.relay.dead_letters_about(&order_id).await;
        if let Some(r) = refusals.first() {
            return fail(
                expected,
                found,
                format!("the shop refused the relay's shipment push: {r}"),
            );
        }
        let log = self.request_log(&documents).await;
        let finding = webhook_finding(
            hooks.as_deref().map_err(String::as_str),
            log.as_deref(),
            "Delivery Note",
            "on_submit",
            Some(dn.as_str()),
            self.hooks_base(),
        );
        if !finding.ok() {
            return fail(expected, found, finding.explain());
        }
        if found.starts_with("404") {
            return Outcome::Skip(format!(
                "the shop answers 404 to GET {path}: it has no shipment read endpoint (optional in the contract), or it never stored the shipment; {} and the relay holds no dead letter for the order",
                finding.explain()
            ));
        }
        fail(
            expected,
            found,
            "the relay has not pushed the tracking yet: is its push agent running (GET /admin/status)?",
        )
    }

    /// Cancels what the run submitted, newest first, and disables the item.
    async fn cleanup(&mut self) -> Outcome {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let cancels = [
            ("Shipment", self.created.shipment.clone()),
            ("Delivery Note", self.created.delivery_note.clone()),
            ("Sales Order", self.created.sales_order.clone()),
            ("Stock Entry", self.created.stock_entry.clone()),
        ];
        for (doctype, name) in cancels {
            let Some(name) = name else { continue };
            match self
                .erp
                .post_method(
                    "frappe.client.cancel",
                    &json!({"doctype": doctype, "name": name}),
                )
                .await
            {
                Ok(_) => done.push(format!("{doctype} {name} cancelled")),
                Err(e) => failed.push(format!("{doctype} {name}: {e}")),
            }
        }
        if let Some(item) = self.created.item.clone() {
            match self
                .erp
                .save_doc("Item", Some(&item), &json!({"disabled": 1}))
                .await
            {
                Ok(_) => done.push(format!("Item {item} disabled")),
                Err(e) => failed.push(format!("Item {item}: {e}")),
            }
        }
        if failed.is_empty() {
            Outcome::Pass(if done.is_empty() {
                "nothing to undo".into()
            } else {
                done.join(", ")
            })
        } else {
            fail(
                "every test document cancelled and the item disabled",
                format!("{}; done: {}", failed.join("; "), done.join(", ")),
                "the API user may lack the Cancel permission; cancel the SRSTAGE documents by hand",
            )
        }
    }
}
