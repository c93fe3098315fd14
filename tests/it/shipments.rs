//! End to end: Delivery Notes and Shipments in the ERPNext emulator become shipments with
//! tracking in the recording shop.

use crate::common;

use std::collections::BTreeMap;

use common::{wait_until, Harness, STORES};
use serde_json::{json, Value};
use shoprelay::startup::Workers;
use shoprelay_testkit::erp::Transport;

const DHL: Transport<'static> = Transport {
    transporter_name: Some("DHL"),
    lr_no: Some("LR-9"),
};

fn shipment(h: &Harness, order: &str, dn: &str) -> Option<Value> {
    h.shop
        .shipments()
        .get(&(order.to_owned(), dn.to_owned()))
        .cloned()
}

async fn wait_shipment(
    h: &Harness,
    what: &str,
    order: &str,
    dn: &str,
    ok: impl Fn(Option<&Value>) -> bool,
) {
    wait_until(
        what,
        || ok(shipment(h, order, dn).as_ref()),
        || {
            format!(
                "shipments {:?}; depths {:?}",
                h.shop.shipments(),
                h.relay.store.depths()
            )
        },
    )
    .await;
}

/// Waits until the relay has nothing left to do.
async fn quiet(h: &Harness) {
    wait_until(
        "the relay to be idle",
        || {
            let d = h.relay.store.depths();
            d.inbox == 0 && d.dirty_docs == 0 && d.shipment_outbox == 0 && d.outbox == 0
        },
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
}

/// The shop never received the same successful request twice, and one Idempotency-Key never
/// carried two different bodies.
fn assert_nothing_sent_twice(h: &Harness) {
    let mut by_key: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut last_ok: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for r in h
        .shop
        .requests()
        .iter()
        .filter(|r| r.path.contains("/shipments/"))
    {
        let key = r.header("idempotency-key").expect("key").to_owned();
        let this = (r.method.clone(), r.body.clone());
        if let Some(prev) = by_key.insert(key, this.clone()) {
            assert_eq!(prev, this, "one Idempotency-Key, two contents");
        }
        if (200..300).contains(&r.status) || r.status == 404 {
            if let Some(prev) = last_ok.insert(r.path.clone(), this.clone()) {
                assert_ne!(
                    prev, this,
                    "{} {} sent twice after success",
                    r.method, r.path
                );
            }
        }
    }
}

async fn order(h: &Harness, po_no: &str, lines: &[(&str, &str, f64)]) -> String {
    for (item, wh, qty) in lines {
        h.deliver(h.erp.stock_move(item, wh, qty + 10.0).expect("stock"))
            .await;
    }
    let (so, ds) = h.erp.submit_sales_order(po_no, lines).expect("so");
    h.deliver(ds).await;
    so
}

#[tokio::test]
async fn a_partial_delivery_gives_two_shipments_for_one_order() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-1", &[("A", STORES, 3.0)]).await;
    let (dn1, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 2.0)], DHL, None)
        .expect("dn1");
    h.deliver(ds).await;
    let (dn2, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], Transport::default(), None)
        .expect("dn2");
    h.deliver(ds).await;
    wait_shipment(&h, "dn2 shipped", "SHOP-1", &dn2, |s| s.is_some()).await;
    wait_shipment(&h, "dn1 shipped", "SHOP-1", &dn1, |s| s.is_some()).await;
    let s1 = shipment(&h, "SHOP-1", &dn1).expect("dn1");
    assert_eq!(s1["status"], "shipped");
    assert_eq!(s1["items"], json!([{"sku": "A", "qty": 2}]));
    assert_eq!(
        (s1["carrier"].as_str(), s1["tracking_number"].as_str()),
        (Some("DHL"), Some("LR-9"))
    );
    assert!(
        s1["shipped_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{s1}"
    );
    let s2 = shipment(&h, "SHOP-1", &dn2).expect("dn2");
    assert_eq!(s2["items"], json!([{"sku": "A", "qty": 1}]));
    assert_eq!(
        (&s2["carrier"], &s2["tracking_number"]),
        (&Value::Null, &Value::Null)
    );
    // Stock followed too: 13 received, 3 reserved then delivered.
    h.wait_level("web", "A", 10).await;
    quiet(&h).await;
    assert_nothing_sent_twice(&h);
    let put = h
        .shop
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a PUT");
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("authorization"), Some("Bearer shop-token"));
    h.stop().await;
}

#[tokio::test]
async fn a_delivery_note_spanning_two_orders_gives_one_shipment_per_order() {
    let h = Harness::start(Workers::Background).await;
    let so1 = order(&h, "SHOP-1", &[("A", STORES, 1.0)]).await;
    let so2 = order(&h, "SHOP-2", &[("B", STORES, 2.0), ("C", STORES, 1.0)]).await;
    let (dn, ds) = h
        .erp
        .submit_delivery_note(
            &[
                (Some(&so1), "A", STORES, 1.0),
                (Some(&so2), "B", STORES, 2.0),
                (Some(&so2), "C", STORES, 1.0),
            ],
            DHL,
            None,
        )
        .expect("dn");
    h.deliver(ds).await;
    wait_shipment(&h, "order 2", "SHOP-2", &dn, |s| s.is_some()).await;
    wait_shipment(&h, "order 1", "SHOP-1", &dn, |s| s.is_some()).await;
    assert_eq!(
        shipment(&h, "SHOP-1", &dn).expect("1")["items"],
        json!([{"sku": "A", "qty": 1}])
    );
    assert_eq!(
        shipment(&h, "SHOP-2", &dn).expect("2")["items"],
        json!([{"sku": "B", "qty": 2}, {"sku": "C", "qty": 1}])
    );
    assert_eq!(h.shop.shipments().len(), 2);
    quiet(&h).await;
    assert_nothing_sent_twice(&h);
    h.stop().await;
}

#[tokio::test]
async fn a_shipment_adds_tracking_a_change_updates_it_and_a_cancel_clears_it() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-7", &[("A", STORES, 1.0)]).await;
    let (dn, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn");
    h.deliver(ds).await;
    wait_shipment(&h, "shipped", "SHOP-7", &dn, |s| s.is_some()).await;
    let shipped_at = shipment(&h, "SHOP-7", &dn).expect("s")["shipped_at"].clone();

    let (sh, ds) = h
        .erp
        .submit_shipment(
            &[&dn],
            Some("UPS"),
            Some("1Z001"),
            Some("https://ups.example/1Z001"),
        )
        .expect("shipment");
    h.deliver(ds).await;
    wait_shipment(&h, "UPS tracking", "SHOP-7", &dn, |s| {
        s.is_some_and(|s| s["tracking_number"] == "1Z001")
    })
    .await;
    let s = shipment(&h, "SHOP-7", &dn).expect("s");
    assert_eq!(
        (s["carrier"].as_str(), s["tracking_url"].as_str()),
        (Some("UPS"), Some("https://ups.example/1Z001"))
    );
    assert_eq!(s["shipped_at"], shipped_at, "the same shipment, re-PUT");

    h.deliver(
        h.erp
            .set_shipment_tracking(&sh, "1Z002", Some("https://ups.example/1Z002"))
            .expect("change"),
    )
    .await;
    wait_shipment(&h, "new tracking", "SHOP-7", &dn, |s| {
        s.is_some_and(|s| s["tracking_number"] == "1Z002")
    })
    .await;

    h.deliver(h.erp.cancel_shipment(&sh).expect("cancel")).await;
    wait_shipment(&h, "the note's own tracking", "SHOP-7", &dn, |s| {
        s.is_some_and(|s| {
            s["carrier"] == "DHL" && s["tracking_number"] == "LR-9" && s["tracking_url"].is_null()
        })
    })
    .await;
    quiet(&h).await;
    assert_nothing_sent_twice(&h);
    h.stop().await;
}

#[tokio::test]
async fn a_cancelled_delivery_note_puts_its_shipment_again_as_cancelled() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-3", &[("A", STORES, 2.0)]).await;
    let (dn, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 2.0)], DHL, None)
        .expect("dn");
    h.deliver(ds).await;
    wait_shipment(&h, "shipped", "SHOP-3", &dn, |s| s.is_some()).await;
    h.deliver(h.erp.cancel_delivery_note(&dn).expect("cancel"))
        .await;
    wait_shipment(&h, "cancelled", "SHOP-3", &dn, |s| {
        s.is_some_and(|s| s["status"] == "cancelled")
    })
    .await;
    let puts: Vec<Value> = h
        .shop
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&dn))
        .inspect(|r| {
            assert_eq!(r.method, "PUT");
            assert_eq!(r.header("content-type"), Some("application/json"));
        })
        .map(|r| r.json())
        .collect();
    // The same shipment, with its carrier, tracking and items, only the status changed.
    let [shipped, cancelled] = puts.as_slice() else {
        panic!("one PUT shipped, one cancelled: {puts:?}");
    };
    let mut expected = shipped.clone();
    expected["status"] = "cancelled".into();
    assert_eq!(*cancelled, expected);
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(cancelled["items"], json!([{"sku": "A", "qty": 2}]));
    assert_eq!(cancelled["carrier"], "DHL");
    // The stock came back: 12 on hand, 2 reserved again.
    h.wait_level("web", "A", 10).await;
    quiet(&h).await;
    assert_nothing_sent_twice(&h);
    h.stop().await;
}

#[tokio::test]
async fn returns_and_notes_without_a_shop_order_are_skipped_and_counted() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-4", &[("A", STORES, 1.0)]).await;
    let counter = order(&h, "", &[("B", STORES, 1.0)]).await;
    let (dn, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn");
    h.deliver(ds).await;
    wait_shipment(&h, "shipped", "SHOP-4", &dn, |s| s.is_some()).await;
    let (_, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, Some(&dn))
        .expect("return");
    h.deliver(ds).await;
    let (_, ds) = h
        .erp
        .submit_delivery_note(&[(None, "C", STORES, 1.0)], DHL, None)
        .expect("no order");
    h.deliver(ds).await;
    let (_, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&counter), "B", STORES, 1.0)], DHL, None)
        .expect("no po_no");
    h.deliver(ds).await;
    quiet(&h).await;
    assert_eq!(h.shop.shipments().len(), 1, "{:?}", h.shop.shipments());
    assert_eq!(
        h.shop
            .requests()
            .iter()
            .filter(|r| r.path.contains("/shipments/"))
            .count(),
        1
    );
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("shoprelay_returns_skipped_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shoprelay_rows_without_order_total 2"),
        "{metrics}"
    );
    assert_eq!(h.relay.store.depths().dead, 0, "skipped, not errors");
    h.stop().await;
}

#[tokio::test]
async fn the_shop_failing_then_recovering_ends_with_the_right_shipments() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-5", &[("A", STORES, 2.0)]).await;
    h.shop.set_down(true);
    let (dn1, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn1");
    h.deliver(ds).await;
    let (dn2, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn2");
    h.deliver(ds).await;
    let (_, ds) = h
        .erp
        .submit_shipment(&[&dn1], Some("UPS"), Some("1Z9"), None)
        .expect("shipment");
    h.deliver(ds).await;
    h.deliver(h.erp.cancel_delivery_note(&dn2).expect("cancel"))
        .await;
    wait_until(
        "failures",
        || h.shop.requests().iter().filter(|r| r.status == 503).count() >= 4,
        || format!("{}", h.shop.requests().len()),
    )
    .await;
    h.shop.set_down(false);
    wait_shipment(&h, "dn1 with tracking", "SHOP-5", &dn1, |s| {
        s.is_some_and(|s| s["tracking_number"] == "1Z9")
    })
    .await;
    quiet(&h).await;
    assert_eq!(
        shipment(&h, "SHOP-5", &dn2).expect("dn2")["status"],
        "cancelled",
        "a cancelled note shows as cancelled in the shop"
    );
    // The shop never accepted dn2 as shipped: once cancelled, its slot held the cancelled PUT.
    assert!(h.shop.requests().iter().all(|r| !(r.path.ends_with(&dn2)
        && r.status == 200
        && r.json()["status"] != "cancelled")));
    assert_nothing_sent_twice(&h);
    h.stop().await;
}

#[tokio::test]
async fn duplicated_and_out_of_order_deliveries_never_show_an_older_state() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-6", &[("A", STORES, 2.0), ("B", STORES, 1.0)]).await;
    // A note submitted then cancelled, its webhooks arriving cancel first, each twice.
    let (dn, submit) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 2.0)], DHL, None)
        .expect("dn");
    let cancel = h.erp.cancel_delivery_note(&dn).expect("cancel");
    h.deliver([cancel.clone(), cancel, submit.clone(), submit].concat())
        .await;
    // Tracking that changed twice, the newer change delivered first, the first one last.
    let (dn2, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "B", STORES, 1.0)], DHL, None)
        .expect("dn2");
    h.deliver(ds).await;
    let (sh, first) = h
        .erp
        .submit_shipment(&[&dn2], Some("UPS"), Some("OLD"), None)
        .expect("shipment");
    let second = h
        .erp
        .set_shipment_tracking(&sh, "NEW", None)
        .expect("change");
    h.deliver([second.clone(), first, second].concat()).await;
    wait_shipment(&h, "new tracking", "SHOP-6", &dn2, |s| {
        s.is_some_and(|s| s["tracking_number"] == "NEW")
    })
    .await;
    quiet(&h).await;
    assert!(shipment(&h, "SHOP-6", &dn).is_none_or(|s| s["status"] == "cancelled"));
    assert!(
        h.shop
            .requests()
            .iter()
            .all(|r| !(r.path.ends_with(&dn) && r.json()["status"] == "shipped")),
        "the cancelled note was never shown as shipped"
    );
    let puts: Vec<Value> = h
        .shop
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&dn2))
        .map(|r| r.json())
        .collect();
    assert_eq!(puts.last().expect("puts")["tracking_number"], "NEW");
    assert!(
        puts.iter().all(|p| p["tracking_number"] != "OLD"),
        "the stale tracking was never sent: {puts:?}"
    );
    assert_nothing_sent_twice(&h);
    h.stop().await;
}

#[tokio::test]
async fn a_refused_shipment_is_dead_lettered_and_retried_with_its_current_state() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-8", &[("A", STORES, 1.0)]).await;
    quiet(&h).await;
    h.shop.script([shoprelay_testkit::Scripted {
        status: 409,
        headers: vec![],
        body: r#"{"error": "order SHOP-8 is archived"}"#.into(),
    }]);
    let (dn, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn");
    // Only the note's own webhook, so that the scripted 409 meets the PUT.
    h.deliver(
        ds.into_iter()
            .filter(|d| d.webhook.contains("Delivery Note"))
            .collect(),
    )
    .await;
    h.wait_dead_letters(1).await;
    let client = reqwest::Client::new();
    let listed = h.dead_letters().await;
    let letter = &listed["dead_letters"][0];
    assert_eq!(
        (letter["kind"].as_str(), letter["status"].as_u64()),
        (Some("shipment"), Some(409))
    );
    assert!(letter["response"]
        .as_str()
        .expect("response")
        .contains("archived"));
    // Meanwhile the carrier's tracking arrived; the retry sends the state as it is now.
    let (_, ds) = h
        .erp
        .submit_shipment(&[&dn], Some("UPS"), Some("1Z5"), None)
        .expect("shipment");
    h.deliver(ds).await;
    wait_shipment(&h, "tracking PUT after the letter", "SHOP-8", &dn, |s| {
        s.is_some_and(|s| s["tracking_number"] == "1Z5")
    })
    .await;
    let id = letter["id"].as_u64().expect("id");
    let resp = client
        .post(h.url(&format!("/admin/dead-letters/{id}/retry")))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    quiet(&h).await;
    assert_eq!(
        shipment(&h, "SHOP-8", &dn).expect("s")["tracking_number"],
        "1Z5"
    );
    assert_eq!(h.relay.store.depths().dead, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_delivery_note_erpnext_refuses_to_explain_is_skipped_and_stock_goes_on() {
    let h = Harness::start(Workers::Background).await;
    let so = order(&h, "SHOP-9", &[("A", STORES, 1.0)]).await;
    quiet(&h).await;
    // The API user may not read Sales Orders: the note's shop order id cannot be known.
    h.erp.deny_reads("Sales Order", true);
    let (_, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "A", STORES, 1.0)], DHL, None)
        .expect("dn");
    h.deliver(ds).await;
    h.deliver(h.erp.stock_move("B", STORES, 6.0).expect("move"))
        .await;
    wait_until(
        "stock still flows",
        || h.shop.level("web", "B") == Some(6),
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    quiet(&h).await;
    assert!(h.shop.shipments().is_empty());
    assert!(h
        .metrics()
        .await
        .contains("shoprelay_documents_failed_total 1"));
    h.stop().await;
}

#[tokio::test]
async fn a_cancellation_queued_under_contract_1_is_kept_as_a_dead_letter_not_sent() {
    let h = Harness::start(Workers::Background).await;
    // What a relay speaking shop contract 1 stored for a cancelled note: no body (a DELETE).
    let legacy: shoprelay::model::ShipmentOp =
        serde_json::from_str(r#"{"order_id": "SHOP-9", "shipment_id": "DN-OLD", "put": null}"#)
            .expect("a contract 1 operation");
    h.relay
        .store
        .queue_shipments(&[legacy])
        .await
        .expect("queued");
    h.wait_dead_letters(1).await;
    let listed = h.dead_letters().await;
    let letter = &listed["dead_letters"][0];
    assert_eq!(letter["kind"], "shipment");
    assert!(
        letter["response"]
            .as_str()
            .is_some_and(|r| r.contains("shop contract 1")),
        "{letter}"
    );
    assert_eq!(h.relay.store.depths().shipment_outbox, 0);
    assert!(
        h.shop.requests().iter().all(|r| !r.path.contains("DN-OLD")),
        "nothing was sent for it"
    );
    h.stop().await;
}
