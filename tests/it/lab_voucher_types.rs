//! On a real ERPNext 15 site, every stock voucher the site can post without further setup
//! (Purchase Receipt, Purchase and Sales Invoice with stock update, Delivery Note, a Stock Entry
//! transfer), submitted and then cancelled, reaches the shop through the shipped webhooks:
//! each renders on the real site, queues one job and leaves the shop right. Installs the
//! webhooks (disabled at the end) and creates one supplier and one item with a unique prefix.
//!
//! `set -a; source $LAB/lab.env; set +a; flock /tmp/lab.lock cargo test --test it lab_voucher_types:: -- --nocapture`
//! Without `ERPNEXT_URL` it says so and passes.

use crate::lab;

use std::time::{Duration, Instant};

use lab::{Lab, LabRelay};
use serde_json::json;
use shoprelay::startup::Workers;

/// Waits until the shop shows the site's `actual_qty` of `item` in the lab's warehouse.
async fn shop_right(lab: &Lab, relay: &LabRelay, item: &str, from: Instant) -> Option<Duration> {
    let want = lab.actual_qty(item, &lab.warehouse).await.max(0.0) as u64;
    relay
        .wait_level(item, want, Duration::from_secs(60))
        .await
        .map(|at| at - from)
}

#[tokio::test]
async fn on_a_real_site_every_stock_voucher_and_its_cancellation_reaches_the_shop() {
    let Some(lab) = Lab::from_env("lab_voucher_types") else {
        return;
    };
    let relay = LabRelay::start(
        &lab,
        Workers::Background,
        "reconcile_interval_secs = 0\nfull_reconcile_interval_secs = 0",
    )
    .await;
    relay.install_webhooks().await;
    let p = Lab::prefix("VT");
    let (item, supplier) = (format!("{p}-I"), format!("{p}-SUP"));
    lab.item(&item).await;
    lab.insert(
        "Supplier",
        json!({"supplier_name": supplier, "supplier_group": "All Supplier Groups"}),
    )
    .await;
    let wh = lab.warehouse.clone();
    let row = |qty: f64| json!([{"item_code": item, "qty": qty, "rate": 5.0, "warehouse": wh}]);
    let vouchers = [
        (
            "Purchase Receipt",
            json!({"supplier": supplier, "company": lab.company, "items": row(10.0)}),
        ),
        (
            "Purchase Invoice",
            json!({"supplier": supplier, "company": lab.company, "update_stock": 1, "items": row(3.0)}),
        ),
        (
            "Sales Invoice",
            json!({"customer": "Lab Customer", "company": lab.company, "update_stock": 1, "items": row(2.0)}),
        ),
        (
            "Delivery Note",
            json!({"customer": "Lab Customer", "company": lab.company, "items": row(1.0)}),
        ),
        (
            "Stock Entry",
            json!({"stock_entry_type": "Material Transfer", "company": lab.company,
                   "items": [{"item_code": item, "qty": 4.0, "s_warehouse": wh, "t_warehouse": "Finished Goods - ACME"}]}),
        ),
    ];
    let failed_before = lab.failed_jobs().await;
    let mut jobs_seen = lab.jobs_settled(0).await;
    let mut results = Vec::new();
    let mut names = Vec::new();
    for (doctype, body) in vouchers {
        let name = lab.submitted(doctype, body).await;
        let right = shop_right(&lab, &relay, &item, Instant::now()).await;
        let jobs = lab.jobs_settled(jobs_seen).await;
        jobs_seen += jobs;
        results.push((format!("{doctype} {name}"), right, jobs));
        names.push((doctype, name));
    }
    for (doctype, name) in names.iter().rev() {
        lab.cancel(doctype, name).await;
        let right = shop_right(&lab, &relay, &item, Instant::now()).await;
        let jobs = lab.jobs_settled(jobs_seen).await;
        jobs_seen += jobs;
        results.push((format!("{doctype} {name} cancelled"), right, jobs));
    }
    let failed = lab.failed_jobs().await - failed_before;
    lab.disable_webhooks().await;
    relay.stop().await;

    println!("lab_voucher_types: item {item} in {}", lab.warehouse);
    for (what, right, jobs) in &results {
        println!("  {what:<48} right after {right:>12?} | {jobs} webhook job(s)");
    }
    println!("  failed deliveries: {failed}");
    assert_eq!(failed, 0);
    for (what, right, jobs) in &results {
        assert!(right.is_some(), "{what}");
        assert!(*jobs <= 2, "{what}: {jobs} jobs");
    }
}
