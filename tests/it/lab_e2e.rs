//! End-to-end against a real ERPNext 15 site: the relay on a loopback port, `erpnext setup`
//! pointing the site's webhooks at it, and the reference shop as the shop. Covers the staging
//! cycle (`shoprelay staging-test`), the stock path, the shipment path and reconcile.
//!
//! Run it with the site's settings in the environment (ERPNEXT_URL, ERPNEXT_API_KEY,
//! ERPNEXT_API_SECRET; optionally ERPNEXT_WAREHOUSE, ERPNEXT_CUSTOMER) and one test at a time:
//!
//! ```sh
//! set -a; source $LAB/lab.env; set +a
//! cargo test --test it lab_e2e:: -- --nocapture --test-threads=1
//! ```
//!
//! The site's `shoprelay *` Webhook documents point at one relay at a time; when several people
//! share a site, set `LAB_LOCK` to a file path that everyone locks (the suite holds an exclusive
//! lock on it while a test runs). Without ERPNEXT_URL every test returns at once, saying why.

use std::fs::File;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoprelay::cli::{erpnext_setup, reconcile};
use shoprelay::config::Settings;
use shoprelay::erpnext::ErpClient;
use shoprelay::startup::{Application, Workers};
use shoprelay_testkit::shop::{MockOptions, SHOP_TOKEN};
use shoprelay_testkit::ShopMock;

const ORDER_SECRET: &str = "whsec_bGFiLWUyZS1vcmRlci1zZWNyZXQ=";

struct Lab {
    url: String,
    key: String,
    secret: String,
    warehouse: String,
    customer: String,
    host: String,
    _lock: Option<File>,
}

/// The site from the environment, locked; None (after saying why) when no site is configured.
fn lab(test: &str) -> Option<Lab> {
    let env = crate::lab::env::env_or_skip(test)?;
    let lock = std::env::var("LAB_LOCK").ok().map(|path| {
        let f = File::create(&path).expect("open LAB_LOCK");
        f.lock().expect("lock LAB_LOCK");
        f
    });
    let host = reqwest::Url::parse(&env.url)
        .expect("ERPNEXT_URL is a URL")
        .host_str()
        .unwrap_or_default()
        .to_owned();
    Some(Lab {
        url: env.url,
        key: env.key,
        secret: env.secret,
        warehouse: env.warehouse,
        customer: env.customer,
        host,
        _lock: lock,
    })
}

fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let suffix: String = (0..3).map(|_| fastrand::lowercase()).collect();
    format!("{secs}-{suffix}")
}

/// A relay on a loopback port in front of the site, with its own reference shop.
struct Relay {
    /// Where the relay listens (`server.public_url`).
    url: String,
    shop: ShopMock,
    handle: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    toml: String,
    erp: ErpClient,
    _dir: tempfile::TempDir,
}

fn relay_toml(lab: &Lab, shop_url: &str, data_dir: &std::path::Path, hook_secret: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
admin_token = "lab-admin-token-0123456789"

[erpnext]
url = "{url}"
api_key = "{key}"
api_secret = "{secret}"
webhook_secrets = ["{hook_secret}"]
reconcile_interval_secs = 0

[shop]
base_url = "{shop_url}"
token = "{token}"
webhook_secret = "{ORDER_SECRET}"

[[channels]]
name = "web"
warehouses = ["{wh}"]

[orders]
shipping_account = "Freight and Forwarding Charges - ACME"
customer_group = "Individual"
territory = "United States"

[staging_test]
allowed_sites = ["{host}"]
step_timeout_secs = 90
"#,
        data = data_dir.display(),
        url = lab.url,
        key = lab.key,
        secret = lab.secret,
        token = SHOP_TOKEN,
        wh = lab.warehouse,
        host = lab.host,
    )
}

impl Relay {
    /// Starts a relay and its shop, and runs `erpnext setup` so that the site's webhooks come
    /// to it.
    async fn start(lab: &Lab) -> Self {
        let shop = ShopMock::start_with(MockOptions::default())
            .await
            .expect("shop");
        let dir = tempfile::tempdir().expect("tempdir");
        let base = relay_toml(
            lab,
            &shop.base_url(),
            &dir.path().join("data"),
            &format!("lab-e2e-{}", run_id()),
        );
        let settings = Settings::from_toml(&base, &[]).expect("relay settings");
        let erp = ErpClient::new(&settings.erpnext).expect("client");
        let app = Application::build(settings, Workers::Background)
            .await
            .expect("relay");
        let public = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let join = tokio::spawn(app.run_until_stopped());
        let toml = base.replace("[server]", &format!("[server]\npublic_url = \"{public}\""));
        let relay = Self {
            url: public.clone(),
            shop,
            handle,
            join,
            toml,
            erp,
            _dir: dir,
        };
        let mut out = Vec::new();
        erpnext_setup(&relay.settings(), false, true, &mut out)
            .await
            .expect("erpnext setup");
        relay
    }

    fn settings(&self) -> Settings {
        Settings::from_toml(&self.toml, &[]).expect("settings")
    }

    /// Stops once the site has stopped sending: the webhooks of the test's last documents
    /// (cancellations) are still on their way when the test is done, and a site's worker
    /// spends seconds on each delivery to a relay that is gone.
    async fn stop(self) {
        let accepted = || async {
            let status: Value = reqwest::Client::new()
                .get(format!("{}/admin/status", self.url))
                .bearer_auth("lab-admin-token-0123456789")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            status["webhooks_accepted"].as_u64()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut quiet) = (accepted().await, 0);
        while quiet < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = accepted().await;
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
        }
        self.handle.stop(true).await;
        let _ = self.join.await;
        self.shop.stop().await;
    }
}

/// Polls `cond` every 250 ms until it holds or 120 s have passed.
async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    loop {
        match cond().await {
            Ok(()) => {
                eprintln!("  ok: {what} ({:.1} s)", started.elapsed().as_secs_f64());
                return;
            }
            Err(seen) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn create_item(erp: &ErpClient, code: &str) {
    erp.save_doc(
        "Item",
        None,
        &json!({"item_code": code, "item_name": code, "item_group": "All Item Groups", "stock_uom": "Nos", "is_stock_item": 1}),
    )
    .await
    .expect("create item");
}

/// A submitted Material Receipt (`qty` > 0) or Material Issue (`qty` < 0); returns its name.
async fn stock_entry(erp: &ErpClient, item: &str, wh: &str, qty: f64) -> String {
    let (purpose, row) = if qty > 0.0 {
        (
            "Material Receipt",
            json!({"item_code": item, "qty": qty, "t_warehouse": wh, "basic_rate": 1}),
        )
    } else {
        (
            "Material Issue",
            json!({"item_code": item, "qty": -qty, "s_warehouse": wh}),
        )
    };
    let doc = erp
        .save_doc(
            "Stock Entry",
            None,
            &json!({"stock_entry_type": purpose, "purpose": purpose, "company": "ACME", "docstatus": 1, "items": [row]}),
        )
        .await
        .expect("stock entry");
    doc["name"].as_str().expect("name").to_owned()
}

async fn cancel(erp: &ErpClient, doctype: &str, name: &str) {
    erp.post_method(
        "frappe.client.cancel",
        &json!({"doctype": doctype, "name": name}),
    )
    .await
    .unwrap_or_else(|e| panic!("cancel {doctype} {name}: {e}"));
}

async fn disable_item(erp: &ErpClient, item: &str) {
    erp.save_doc("Item", Some(item), &json!({"disabled": 1}))
        .await
        .expect("disable item");
}

fn level_is(shop: &ShopMock, sku: &str, n: u64) -> Result<(), String> {
    match shop.level("web", sku) {
        Some(v) if v == n => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_test_cycle_passes_on_the_lab() {
    let Some(lab) = lab("staging_test_cycle_passes_on_the_lab") else {
        return;
    };
    let relay = Relay::start(&lab).await;
    let mut out = Vec::new();
    let report = shoprelay::staging::run(
        &relay.settings(),
        &shoprelay::staging::Options::default(),
        &mut out,
    )
    .await
    .expect("staging test ran");
    let text = String::from_utf8_lossy(&out);
    eprintln!("{text}");
    assert!(report.passed(), "{text}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_moves_reach_the_shop() {
    let Some(lab) = lab("stock_moves_reach_the_shop") else {
        return;
    };
    let relay = Relay::start(&lab).await;
    let item = format!("SRSTAGE-E2E-STOCK-{}", run_id());
    create_item(&relay.erp, &item).await;
    let receipt = stock_entry(&relay.erp, &item, &lab.warehouse, 7.0).await;
    wait_for("the receipt of 7 in the shop", || async {
        level_is(&relay.shop, &item, 7)
    })
    .await;
    let issue = stock_entry(&relay.erp, &item, &lab.warehouse, -3.0).await;
    wait_for("the issue of 3 in the shop", || async {
        level_is(&relay.shop, &item, 4)
    })
    .await;
    cancel(&relay.erp, "Stock Entry", &issue).await;
    cancel(&relay.erp, "Stock Entry", &receipt).await;
    wait_for("both cancellations in the shop", || async {
        level_is(&relay.shop, &item, 0)
    })
    .await;
    disable_item(&relay.erp, &item).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_note_reaches_the_shop_as_a_shipment_with_tracking() {
    let Some(lab) = lab("a_delivery_note_reaches_the_shop_as_a_shipment_with_tracking") else {
        return;
    };
    let relay = Relay::start(&lab).await;
    let id = run_id();
    let item = format!("SRSTAGE-E2E-SHIP-{id}");
    let po = format!("SRSTAGE-E2E-PO-{id}");
    create_item(&relay.erp, &item).await;
    let receipt = stock_entry(&relay.erp, &item, &lab.warehouse, 5.0).await;
    let today = shoprelay::staging::order::utc_date_and_time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
    .0;
    let so = relay
        .erp
        .save_doc(
            "Sales Order",
            None,
            &json!({"customer": lab.customer, "company": "ACME", "po_no": po, "delivery_date": today, "docstatus": 1,
                    "items": [{"item_code": item, "qty": 2, "rate": 5, "warehouse": lab.warehouse}]}),
        )
        .await
        .expect("sales order");
    let so = so["name"].as_str().expect("name").to_owned();
    wait_for("the reservation in the shop (5 - 2)", || async {
        level_is(&relay.shop, &item, 3)
    })
    .await;
    let mut dn: Value = relay
        .erp
        .post_method(
            "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
            &json!({"source_name": so}),
        )
        .await
        .expect("map delivery note");
    let tracking = format!("SRSTAGE-E2E-TRK-{id}");
    dn["docstatus"] = json!(1);
    dn["transporter_name"] = json!("E2E Carrier");
    dn["lr_no"] = json!(tracking);
    let dn = relay
        .erp
        .save_doc("Delivery Note", None, &dn)
        .await
        .expect("delivery note");
    let dn = dn["name"].as_str().expect("name").to_owned();
    wait_for(
        "the shipment with its tracking number in the shop",
        || async {
            match relay.shop.shipments().get(&(po.clone(), dn.clone())) {
                Some(s) if s["tracking_number"] == json!(tracking) && s["status"] == "shipped" => {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    wait_for("the level after delivery (3: 5 - 2 delivered)", || async {
        level_is(&relay.shop, &item, 3)
    })
    .await;
    cancel(&relay.erp, "Delivery Note", &dn).await;
    wait_for("the cancelled delivery note in the shop", || async {
        match relay.shop.shipments().get(&(po.clone(), dn.clone())) {
            None => Ok(()),
            Some(s) if s["status"] == "cancelled" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    cancel(&relay.erp, "Sales Order", &so).await;
    cancel(&relay.erp, "Stock Entry", &receipt).await;
    wait_for("everything undone in the shop", || async {
        level_is(&relay.shop, &item, 0)
    })
    .await;
    disable_item(&relay.erp, &item).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_alone_brings_the_shop_to_the_truth() {
    let Some(lab) = lab("reconcile_alone_brings_the_shop_to_the_truth") else {
        return;
    };
    // The site's webhooks go to `wired`; `unwired` hears nothing and has only reconcile.
    let wired = Relay::start(&lab).await;
    let unwired_shop = ShopMock::start_with(MockOptions::default())
        .await
        .expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let unwired = Settings::from_toml(
        &relay_toml(
            &lab,
            &unwired_shop.base_url(),
            &dir.path().join("data"),
            "unused",
        ),
        &[],
    )
    .expect("settings");
    let item = format!("SRSTAGE-E2E-RECON-{}", run_id());
    create_item(&wired.erp, &item).await;
    let receipt = stock_entry(&wired.erp, &item, &lab.warehouse, 6.0).await;
    let pass = |label: &'static str| {
        let unwired = unwired.clone();
        async move {
            let mut out = Vec::new();
            let mut progress = Vec::new();
            let summary = reconcile(&unwired, false, &mut out, &mut progress)
                .await
                .expect("reconcile");
            eprintln!("  {label}: {}", String::from_utf8_lossy(&out).trim());
            summary
        }
    };
    let first = pass("first pass (no watermark)").await;
    assert!(first.rows > 0, "{first:?}");
    level_is(&unwired_shop, &item, 6).expect("the first pass pushed the receipt");
    let issue = stock_entry(&wired.erp, &item, &lab.warehouse, -2.0).await;
    let second = pass("second pass (from the watermark)").await;
    level_is(&unwired_shop, &item, 4).expect("the second pass pushed the issue");
    assert!(
        second.rows <= first.rows,
        "the second pass reads from the watermark: {second:?} after {first:?}"
    );
    cancel(&wired.erp, "Stock Entry", &issue).await;
    cancel(&wired.erp, "Stock Entry", &receipt).await;
    disable_item(&wired.erp, &item).await;
    wait_for("the wired relay's shop back at 0", || async {
        level_is(&wired.shop, &item, 0)
    })
    .await;
    unwired_shop.stop().await;
    wired.stop().await;
}
