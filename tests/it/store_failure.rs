//! A store that fails does not pretend to be healthy: while it cannot write (an injected write
//! error, as a full disk gives), webhooks are refused with 503 `storage_failed` (Frappe sends
//! them again), `/readyz` and `/healthz` answer 503; once it can write again the running relay
//! recovers by itself, and nothing acknowledged before was lost.

use crate::common;

use common::{Harness, STORES};
use shoprelay::startup::Workers;

async fn status_of(h: &Harness, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(h.url(path)).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_failing_store_is_reported_and_the_relay_recovers_when_it_works_again() {
    let h = Harness::start(Workers::Background).await;
    h.deliver(h.erp.stock_move("LAMP", STORES, 4.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 4).await;
    assert_eq!(status_of(&h, "/readyz").await.0, 200);
    assert_eq!(status_of(&h, "/healthz").await.0, 200);

    // The disk is full.
    h.relay.store.inject_write_failure(true);
    let refused = h.erp.stock_move("LAMP", STORES, 3.0).expect("move");
    for d in &refused {
        let (status, body) = h.erp.deliver_with_answer(d).await.expect("deliver");
        assert_eq!(status, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["error"], "storage_failed");
    }
    let (status, body) = status_of(&h, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(status_of(&h, "/healthz").await.0, 503);

    // Space is freed: the same relay takes writes again, without a restart.
    h.relay.store.inject_write_failure(false);
    assert_eq!(status_of(&h, "/readyz").await.0, 200);
    assert_eq!(status_of(&h, "/healthz").await.0, 200);
    // Frappe sends the refused deliveries again.
    h.deliver(refused).await;
    h.wait_level("web", "LAMP", 7).await;
    h.stop().await;
}
