//! Benchmark on a real ERPNext 15 site: how soon big stock documents are right in the shop, how
//! many webhook jobs they queue in ERPNext and how many Bin read-backs the relay makes, with the
//! shipped voucher-level webhooks and, as the baseline in the same run, the earlier set (one
//! webhook per Stock Ledger Entry and per new Bin, and an Item webhook on every save). Prints
//! the numbers; asserts only that the shop ends right. Installs webhooks on the site (disabled at
//! the end) and creates about 700 items with a unique prefix.
//!
//! `set -a; source $LAB/lab.env; set +a; flock /tmp/lab.lock cargo test --test it lab_vouchers:: -- --nocapture`
//! Without `ERPNEXT_URL` it says so and passes.

use crate::lab;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::{Lab, LabRelay};
use serde_json::json;
use shoprelay::config::Secret;
use shoprelay::erpnext::setup::{apply, plan};
use shoprelay::erpnext::webhooks::{for_site, WebhookDoc};
use shoprelay::erpnext::ErpClient;
use shoprelay::inbound::erpnext::STOCK_VOUCHERS;
use shoprelay::startup::{Relay, Workers};

const SECRET: &str = "lab-webhook-secret";

/// The webhooks `erpnext setup` installed before voucher-level signals: every shipped one that
/// is not a stock voucher's, plus Stock Ledger Entry and Bin `after_insert`, and the Item
/// webhook with no condition.
fn earlier_set() -> Vec<WebhookDoc> {
    let mut hooks: Vec<WebhookDoc> = for_site(Some("shop_sku"))
        .expect("shipped")
        .into_iter()
        .filter(|w| !STOCK_VOUCHERS.contains(&w.webhook_doctype.as_str()))
        .map(|mut w| {
            w.condition.clear();
            w
        })
        .collect();
    let template = hooks[0].clone();
    for (doctype, fields) in [
        (
            "Stock Ledger Entry",
            "\"voucher_type\": {{ doc.voucher_type | tojson }}, \"voucher_no\": {{ doc.voucher_no | tojson }},",
        ),
        ("Bin", ""),
    ] {
        hooks.push(WebhookDoc {
            name: format!("shoprelay {doctype} after_insert"),
            webhook_doctype: doctype.into(),
            webhook_docevent: "after_insert".into(),
            condition: String::new(),
            webhook_json: format!(
                "{{\"doctype\": \"{doctype}\", \"event\": \"after_insert\", \"name\": {{{{ doc.name | tojson }}}}, {fields} \"item_code\": {{{{ doc.item_code | tojson }}}}, \"warehouse\": {{{{ doc.warehouse | tojson }}}}}}"
            ),
            ..template.clone()
        });
    }
    hooks
}

/// Installs exactly `hooks` (other shoprelay webhooks are disabled), pointing at `relay`.
async fn install(relay: &LabRelay, hooks: &[WebhookDoc]) {
    let erp = ErpClient::new(&relay.settings.erpnext).expect("client");
    let url = format!("http://127.0.0.1:{}", relay.port);
    let actions = plan(&erp, hooks, &url).await.expect("plan");
    apply(&erp, &actions, &Secret::new(SECRET), true)
        .await
        .expect("apply");
}

/// Steps the relay's processor and pusher as its own loops would, counting Bin read-backs.
struct Driver {
    stop: Arc<AtomicBool>,
    readbacks: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Driver {
    fn start(relay: Relay) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let readbacks = Arc::new(AtomicUsize::new(0));
        let (s, r) = (stop.clone(), readbacks.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let p = relay.processor.step().await;
                if let Ok(p) = &p {
                    r.fetch_add(p.readbacks, Ordering::SeqCst);
                }
                let q = relay.pusher.step().await;
                let idle = p.map(|p| p.is_idle()).unwrap_or(true)
                    && q.map(|q| q.is_idle()).unwrap_or(true);
                if idle {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Self {
            stop,
            readbacks,
            task,
        }
    }

    fn readbacks(&self) -> usize {
        self.readbacks.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// What one scenario cost.
struct Outcome {
    right_after: Option<Duration>,
    jobs: u64,
    readbacks: usize,
}

/// Waits until the shop shows `want` for every (sku, level).
async fn right(
    relay: &LabRelay,
    want: &[(String, u64)],
    from: Instant,
    limit: Duration,
) -> Option<Duration> {
    let deadline = from + limit;
    while Instant::now() < deadline {
        if want
            .iter()
            .all(|(sku, v)| relay.shop.level("web", sku) == Some(*v))
        {
            return Some(from.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A 40-line Material Receipt of new items.
async fn receipt_40(lab: &Lab, relay: &LabRelay, driver: &Driver, tag: &str) -> Outcome {
    let p = Lab::prefix(tag);
    let codes: Vec<String> = (0..40).map(|i| format!("{p}-{i:02}")).collect();
    lab.items(&codes).await;
    let jobs0 = lab.jobs_settled(0).await;
    let reads0 = driver.readbacks();
    let lines: Vec<(String, f64)> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), 1.0 + i as f64))
        .collect();
    let want: Vec<(String, u64)> = lines.iter().map(|(c, q)| (c.clone(), *q as u64)).collect();
    let (_, submitted) = lab.receipt(&lab.warehouse, &lines).await;
    let right_after = right(relay, &want, submitted, Duration::from_secs(120)).await;
    Outcome {
        right_after,
        jobs: lab.jobs_settled(jobs0).await,
        readbacks: driver.readbacks() - reads0,
    }
}

/// A Stock Reconciliation of 500 new items.
async fn stock_take_500(lab: &Lab, relay: &LabRelay, driver: &Driver) -> (Outcome, Duration) {
    let p = Lab::prefix("SR");
    let codes: Vec<String> = (0..500).map(|i| format!("{p}-{i:03}")).collect();
    lab.items(&codes).await;
    let jobs0 = lab.jobs_settled(0).await;
    let reads0 = driver.readbacks();
    let rows: Vec<serde_json::Value> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"item_code": c, "warehouse": lab.warehouse, "qty": 1 + i % 23, "valuation_rate": 5.0}))
        .collect();
    let want: Vec<(String, u64)> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), 1 + (i % 23) as u64))
        .collect();
    let doc = lab
        .insert(
            "Stock Reconciliation",
            json!({"company": lab.company, "purpose": "Stock Reconciliation", "items": rows}),
        )
        .await;
    let started = Instant::now();
    lab.submit("Stock Reconciliation", doc["name"].as_str().expect("name"))
        .await;
    let submit_took = started.elapsed();
    let right_after = right(relay, &want, Instant::now(), Duration::from_secs(120)).await;
    (
        Outcome {
            right_after,
            jobs: lab.jobs_settled(jobs0).await,
            readbacks: driver.readbacks() - reads0,
        },
        submit_took,
    )
}

/// Creates 100 items; returns the shoprelay jobs they queued.
async fn items_100(lab: &Lab, tag: &str) -> u64 {
    let p = Lab::prefix(tag);
    let codes: Vec<String> = (0..100).map(|i| format!("{p}-{i:03}")).collect();
    let jobs0 = lab.jobs_settled(0).await;
    lab.items(&codes).await;
    lab.jobs_settled(jobs0).await
}

fn show(what: &str, o: &Outcome) {
    println!(
        "  {what:<44} right after {:>10} | {:>3} webhook job(s) | {:>3} Bin read-back(s)",
        o.right_after
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .unwrap_or_else(|| "> 120 s".into()),
        o.jobs,
        o.readbacks
    );
}

#[tokio::test]
async fn big_stock_documents_on_a_real_site() {
    let Some(lab) = Lab::from_env("lab_vouchers") else {
        return;
    };
    let relay = LabRelay::start(
        &lab,
        Workers::Manual,
        "reconcile_interval_secs = 0\nfull_reconcile_interval_secs = 0",
    )
    .await;
    let driver = Driver::start(relay.relay.clone());

    println!("lab_vouchers on {} (warehouse {})", lab.url, lab.warehouse);
    install(&relay, &earlier_set()).await;
    println!("baseline, the earlier webhook set (per ledger row, per new Bin, every Item save):");
    let old_receipt = receipt_40(&lab, &relay, &driver, "OLD40").await;
    show("40-line Material Receipt (new items)", &old_receipt);
    let old_items = items_100(&lab, "OLDITEM").await;
    println!("  100 new items: {old_items} webhook job(s)");

    install(&relay, &for_site(None).expect("shipped")).await;
    println!("voucher-level webhooks, no erpnext.sku_field:");
    let new_receipt = receipt_40(&lab, &relay, &driver, "NEW40").await;
    show("40-line Material Receipt (new items)", &new_receipt);
    let new_items = items_100(&lab, "NEWITEM").await;
    println!("  100 new items: {new_items} webhook job(s)");
    let (stock_take, submit_took) = stock_take_500(&lab, &relay, &driver).await;
    show("500-item Stock Reconciliation", &stock_take);
    println!(
        "  (the Stock Reconciliation's submit itself took {:.1} s)",
        submit_took.as_secs_f64()
    );

    lab.disable_webhooks().await;
    driver.stop().await;
    relay.stop().await;
    assert!(new_receipt.right_after.is_some() && stock_take.right_after.is_some());
}
