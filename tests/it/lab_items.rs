//! On a real ERPNext 15 site: the Item webhook's condition (`doc.has_value_changed(...)`) lets
//! only saves that set or change the SKU field queue a job. The Item field `warranty_period`
//! (plain Data) stands in for a custom SKU field. Installs the shipped webhooks (disabled at the
//! end) and creates 20 items with a unique prefix.
//!
//! `set -a; source $LAB/lab.env; set +a; flock /tmp/lab.lock cargo test --test it lab_items:: -- --nocapture`
//! Without `ERPNEXT_URL` it says so and passes.

use crate::lab;

use lab::{Lab, LabRelay};
use serde_json::json;
use shoprelay::startup::Workers;

#[tokio::test]
async fn on_a_real_site_only_items_whose_sku_field_is_set_or_changed_queue_a_job() {
    let Some(lab) = Lab::from_env("lab_items") else {
        return;
    };
    let relay = LabRelay::start(
        &lab,
        Workers::Background,
        "sku_field = \"warranty_period\"\nreconcile_interval_secs = 0\nfull_reconcile_interval_secs = 0",
    )
    .await;
    relay.install_webhooks().await;
    let p = Lab::prefix("SKU");
    let start = lab.jobs_settled(0).await;
    for i in 0..20 {
        let mut doc = json!({"item_code": format!("{p}-{i:02}"), "item_name": format!("{p}-{i:02}"),
                             "item_group": "All Item Groups", "stock_uom": "Nos", "is_stock_item": 1});
        if i % 4 == 0 {
            doc["warranty_period"] = json!(format!("SKU-{i}"));
        }
        lab.insert("Item", doc).await;
    }
    let created = lab.jobs_settled(start).await;
    let item = format!("{p}-01");
    lab.update("Item", &item, json!({"item_name": "renamed"}))
        .await;
    let untouched = lab.jobs_settled(start + created).await;
    lab.update("Item", &item, json!({"warranty_period": "SKU-1"}))
        .await;
    let set_later = lab.jobs_settled(start + created + untouched).await;
    let accepted = relay.relay.metrics.accepted();
    lab.disable_webhooks().await;
    relay.stop().await;

    println!("lab_items: 20 new items, 5 with the SKU field: {created} job(s); an edit leaving it alone: {untouched}; setting it later: {set_later}; the relay accepted {accepted}");
    assert_eq!((created, untouched, set_later), (5, 0, 1));
}
