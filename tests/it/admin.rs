//! The admin API: the channel mapping read and changed at run time.

use crate::common;

use common::{wait_until, Harness, FINISHED, STORES};
use serde_json::{json, Value};
use shoprelay::startup::Workers;

async fn admin(h: &Harness, method: reqwest::Method, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, h.url("/admin/channels"))
        .bearer_auth("admin-token-0123456789");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_channel_mapping_changes_at_run_time_and_every_item_is_repriced() {
    let h = Harness::start(Workers::Background).await;
    h.deliver(h.erp.stock_move("CHAIR", STORES, 10.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("CHAIR", FINISHED, 4.0).expect("move"))
        .await;
    h.wait_level("web", "CHAIR", 14).await;

    let (status, view) = admin(&h, reqwest::Method::GET, None).await;
    assert_eq!(
        (status, view["source"].as_str()),
        (200, Some("file")),
        "{view}"
    );

    let new = json!({"channels": [
        {"name": "web", "warehouses": [STORES, FINISHED], "policy": "actual_minus_reserved", "buffer": 1},
        {"name": "b2b", "warehouses": [FINISHED], "policy": "actual", "buffer": 0},
    ]});
    let (status, view) = admin(&h, reqwest::Method::PUT, Some(new)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["source"], "admin");
    // No webhook needed: the full pass the change starts re-prices CHAIR under the new mapping.
    wait_until(
        "new mapping",
        || h.shop.level("web", "CHAIR") == Some(13) && h.shop.level("b2b", "CHAIR") == Some(4),
        || format!("{:?}", h.shop.levels()),
    )
    .await;

    // A broken mapping is refused, naming what is wrong, and changes nothing.
    let dup = json!({"channels": [{"name": "web", "warehouses": [STORES]}, {"name": "web", "warehouses": [FINISHED]}]});
    let (status, err) = admin(&h, reqwest::Method::PUT, Some(dup)).await;
    assert_eq!(status, 422);
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("channels[1].name")),
        "{err}"
    );
    let (_, view) = admin(&h, reqwest::Method::GET, None).await;
    assert_eq!(view["channels"].as_array().map(Vec::len), Some(2));
    let unauthorised = reqwest::Client::new()
        .put(h.url("/admin/channels"))
        .json(&json!({"channels": []}))
        .send()
        .await
        .expect("put");
    assert_eq!(unauthorised.status().as_u16(), 401);

    // Back to the file's mapping.
    let (status, view) = admin(&h, reqwest::Method::DELETE, None).await;
    assert_eq!(
        (status, view["source"].as_str()),
        (200, Some("file")),
        "{view}"
    );
    h.wait_level("web", "CHAIR", 14).await;
    h.stop().await;
}
