//! End to end over real HTTP: ERPNext emulator -> relay -> recording shop, for stock levels.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{expected, wait_until, Harness, ELSEWHERE, FINISHED, STORES};
use shoprelay::startup::Workers;
use shoprelay_testkit::Scripted;

/// The levels requests the shop received, as (channel, sku, available) in arrival order.
fn pushed(h: &Harness) -> Vec<(String, String, u64)> {
    h.shop
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/erp/inventory/levels" && r.status == 200)
        .flat_map(|r| {
            let v = r.json();
            let ch = v["channel"].as_str().unwrap_or_default().to_owned();
            v["levels"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |l| {
                    (
                        ch.clone(),
                        l["sku"].as_str().unwrap_or_default().to_owned(),
                        l["available"].as_u64().unwrap_or(u64::MAX),
                    )
                })
        })
        .collect()
}

#[tokio::test]
async fn receipts_reservation_and_cancellation_reach_the_shop_as_absolute_levels() {
    let h = Harness::start(Workers::Background).await;
    // A receipt into a new Bin: the Bin after_insert payload says 0.0; the shop must see 10.
    h.deliver(h.erp.stock_move("CHAIR", STORES, 10.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("CHAIR", FINISHED, 4.0).expect("move"))
        .await;
    wait_until(
        "web 14, marketplace 8",
        || {
            h.shop.level("web", "CHAIR") == Some(14)
                && h.shop.level("marketplace", "CHAIR") == Some(8)
        },
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    // A Sales Order reserves 3 in Stores: only Sales Order webhooks fire, no Bin webhook.
    let (so, ds) = h
        .erp
        .submit_sales_order("SHOP-1001", &[("CHAIR", STORES, 3.0)])
        .expect("so");
    assert!(
        ds.iter().all(|d| d.webhook.contains("Sales Order")),
        "only SO webhooks fire"
    );
    h.deliver(ds).await;
    wait_until(
        "web 11, marketplace 5",
        || {
            h.shop.level("web", "CHAIR") == Some(11)
                && h.shop.level("marketplace", "CHAIR") == Some(5)
        },
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    h.deliver(h.erp.cancel_sales_order(&so).expect("cancel"))
        .await;
    wait_until(
        "web 14 again",
        || {
            h.shop.level("web", "CHAIR") == Some(14)
                && h.shop.level("marketplace", "CHAIR") == Some(8)
        },
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    // Every request carried the contract's headers.
    for r in h.shop.requests() {
        assert_eq!(r.header("authorization"), Some("Bearer shop-token"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("idempotency-key").is_some_and(|k| k.len() == 32));
    }
    // A warehouse that feeds no channel pushes nothing.
    let before = h.shop.requests().len();
    h.deliver(h.erp.stock_move("CHAIR", ELSEWHERE, 50.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("TABLE", STORES, 1.0).expect("move"))
        .await;
    h.wait_level("web", "TABLE", 1).await;
    assert!(
        pushed(&h)
            .iter()
            .all(|(_, sku, v)| sku != "CHAIR" || *v <= 14),
        "{:?}",
        pushed(&h)
    );
    assert!(h.shop.requests().len() > before);
    h.stop().await;
}

#[tokio::test]
async fn bursts_over_many_items_end_with_exactly_the_right_level_everywhere() {
    let h = Harness::start(Workers::Background).await;
    let mut rng = fastrand::Rng::with_seed(7);
    // Oracle: actual and reserved per (item, warehouse), kept by the test.
    let mut truth: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for round in 0..300 {
        let item = format!("SKU-{:03}", rng.usize(0..40));
        let wh = [STORES, FINISHED][rng.usize(0..2)];
        let e = truth
            .entry((item.clone(), wh.to_owned()))
            .or_insert((0.0, 0.0));
        if round % 7 == 3 && e.0 - e.1 >= 2.0 {
            e.1 += 2.0;
            let (_, ds) = h
                .erp
                .submit_sales_order(&format!("SHOP-{round}"), &[(&item, wh, 2.0)])
                .expect("so");
            deliveries.extend(ds);
        } else {
            let qty = rng.i32(-3..12) as f64;
            e.0 += qty;
            deliveries.extend(h.erp.stock_move(&item, wh, qty).expect("move"));
        }
    }
    // Out of order and duplicated: shuffle, repeat a third, deliver 8 at a time concurrently.
    let mut extra: Vec<_> = deliveries.iter().step_by(3).cloned().collect();
    deliveries.append(&mut extra);
    rng.shuffle(&mut deliveries);
    for chunk in deliveries.chunks(8) {
        let statuses = futures_util::future::join_all(chunk.iter().map(|d| h.erp.deliver(d))).await;
        assert!(
            statuses.iter().all(|s| matches!(s, Ok(200))),
            "{statuses:?}"
        );
    }
    let want: BTreeMap<(String, String), u64> = truth
        .keys()
        .map(|(item, _)| item.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .flat_map(|item| {
            let get = |wh: &str| {
                truth
                    .get(&(item.clone(), wh.to_owned()))
                    .copied()
                    .unwrap_or((0.0, 0.0))
            };
            [
                (
                    ("web".to_owned(), item.clone()),
                    expected(&[get(STORES), get(FINISHED)], 0.0),
                ),
                (
                    ("marketplace".to_owned(), item.clone()),
                    expected(&[get(STORES)], 2.0),
                ),
            ]
        })
        .collect();
    wait_until(
        "every level right",
        || h.shop.levels() == want,
        || {
            let got = h.shop.levels();
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, v)| (k.clone(), *v, got.get(k).copied()))
                .collect();
            format!(
                "{} wrong, e.g. {:?}; depths {:?}",
                diff.len(),
                &diff[..diff.len().min(5)],
                h.relay.store.depths()
            )
        },
    )
    .await;
    // For each (channel, sku) the last value the shop received is the current one.
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (c, s, v) in pushed(&h) {
        last.insert((c, s), v);
    }
    assert_eq!(last, want);
    h.stop().await;
}

#[tokio::test]
async fn an_early_or_late_event_never_shows_an_older_state() {
    let h = Harness::start(Workers::Background).await;
    let first = h.erp.stock_move("LAMP", STORES, 5.0).expect("move");
    let second = h.erp.stock_move("LAMP", STORES, 7.0).expect("move");
    // The newer event arrives first, the older one after it: both are only signals.
    h.deliver(second).await;
    h.wait_level("web", "LAMP", 12).await;
    h.deliver(first).await;
    // The late one causes a read-back of the current truth, which is still 12.
    wait_until(
        "inbox drained",
        || h.relay.store.depths().inbox == 0 && h.relay.store.depths().dirty == 0,
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    assert_eq!(h.shop.level("web", "LAMP"), Some(12));
    assert!(
        pushed(&h).iter().all(|(c, _, v)| c != "web" || *v == 12),
        "{:?}",
        pushed(&h)
    );
    h.stop().await;
}

#[tokio::test]
async fn a_shop_that_is_down_gets_everything_once_it_is_back() {
    let h = Harness::start(Workers::Background).await;
    h.shop.set_down(true);
    for i in 0..20 {
        h.deliver(
            h.erp
                .stock_move(&format!("P{i}"), STORES, (i + 3) as f64)
                .expect("move"),
        )
        .await;
    }
    let failed = || h.shop.requests().iter().filter(|r| r.status == 503).count();
    let after_deliveries = failed();
    wait_until(
        "several failed attempts",
        || failed() >= after_deliveries + 4,
        || format!("{} requests", h.shop.requests().len()),
    )
    .await;
    assert!(h.shop.levels().is_empty());
    h.shop.set_down(false);
    wait_until(
        "all 20 items on both channels",
        || {
            (0..20).all(|i| {
                h.shop.level("web", &format!("P{i}")) == Some(i + 3)
                    && h.shop.level("marketplace", &format!("P{i}")) == Some(i + 1)
            })
        },
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    // A retried body carries the same Idempotency-Key every time; different bodies, different keys.
    let mut key_of: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut retried = 0;
    for r in h.shop.requests() {
        let key = r.header("idempotency-key").expect("key").to_owned();
        if let Some(old) = key_of.insert(r.body.clone(), key.clone()) {
            assert_eq!(old, key, "same body, other key");
            retried += 1;
        }
    }
    assert!(retried > 0, "some body was retried as it was");
    let distinct: std::collections::BTreeSet<_> = key_of.values().collect();
    assert_eq!(distinct.len(), key_of.len());
    h.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let h = Harness::start(Workers::Background).await;
    h.shop
        .script([Scripted::status(429).with_header("Retry-After", "1")]);
    h.deliver(h.erp.stock_move("SOFA", STORES, 2.0).expect("move"))
        .await;
    wait_until(
        "SOFA pushed",
        || h.shop.level("web", "SOFA") == Some(2) && h.shop.level("marketplace", "SOFA") == Some(0),
        || format!("{:?}", h.shop.requests().len()),
    )
    .await;
    let reqs = h.shop.requests();
    let throttled = reqs.iter().find(|r| r.status == 429).expect("the 429");
    let channel = throttled.json()["channel"].clone();
    let next = reqs
        .iter()
        .find(|r| r.at > throttled.at && r.json()["channel"] == channel)
        .expect("a retry");
    assert!(
        next.at - throttled.at >= Duration::from_millis(990),
        "retried after {:?}",
        next.at - throttled.at
    );
    h.stop().await;
}

#[tokio::test]
async fn a_refused_push_is_dead_lettered_with_the_shops_answer_and_can_be_retried() {
    let h = Harness::start(Workers::Background).await;
    h.shop.script([Scripted {
        status: 422,
        headers: vec![],
        body: r#"{"error": "unknown sku DESK"}"#.into(),
    }]);
    h.deliver(h.erp.stock_move("DESK", STORES, 6.0).expect("move"))
        .await;
    let client = reqwest::Client::new();
    let auth = ("Authorization", "Bearer admin-token-0123456789");
    h.wait_dead_letters(1).await;
    let listed = h.dead_letters().await;
    let letter = &listed["dead_letters"][0];
    assert_eq!(letter["status"], 422);
    assert!(letter["response"]
        .as_str()
        .expect("response")
        .contains("unknown sku DESK"));
    // Only one attempt: a 4xx is not retried. (The other channel's push went through.)
    let refused_channel = h
        .shop
        .requests()
        .iter()
        .find(|r| r.status == 422)
        .expect("422")
        .json()["channel"]
        .clone();
    assert_eq!(
        h.shop
            .requests()
            .iter()
            .filter(|r| r.json()["channel"] == refused_channel)
            .count(),
        1
    );
    let other = if refused_channel == "web" {
        "marketplace"
    } else {
        "web"
    };
    wait_until(
        "the other channel pushed",
        || h.shop.level(other, "DESK").is_some(),
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    // No admin token, no access.
    let refused = client
        .get(h.url("/admin/dead-letters"))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status().as_u16(), 401);
    // The admin fixes the shop and retries.
    let id = letter["id"].as_u64().expect("id");
    let resp = client
        .post(h.url(&format!("/admin/dead-letters/{id}/retry")))
        .header(auth.0, auth.1)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    wait_until(
        "DESK pushed",
        || h.shop.level("web", "DESK") == Some(6) && h.shop.level("marketplace", "DESK") == Some(4),
        || format!("{:?}", h.shop.levels()),
    )
    .await;
    assert_eq!(h.relay.store.depths().dead, 0);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("shoprelay_dead_letters_total 1"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn erpnext_down_delays_the_read_back_but_loses_nothing() {
    let h = Harness::start(Workers::Background).await;
    h.erp.set_rest_down(true);
    h.deliver(h.erp.stock_move("BED", STORES, 3.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("BED", FINISHED, 1.0).expect("move"))
        .await;
    wait_until(
        "read-back attempts",
        || h.erp.rest_requests() >= 2,
        || format!("{}", h.erp.rest_requests()),
    )
    .await;
    assert_eq!(h.shop.level("web", "BED"), None);
    let d = h.relay.store.depths();
    assert!(d.inbox + d.dirty >= 1, "BED stays queued: {d:?}");
    h.erp.set_rest_down(false);
    wait_until(
        "BED pushed",
        || h.shop.level("web", "BED") == Some(4),
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn levels_are_coalesced_batched_and_pushed_only_when_they_change() {
    let h = Harness::start_with(Workers::Manual, |t| {
        t.replace("max_batch = 100", "max_batch = 4")
    })
    .await;
    for _ in 0..5 {
        h.deliver(h.erp.stock_move("RUG", STORES, 1.0).expect("move"))
            .await;
    }
    for i in 0..6 {
        h.deliver(
            h.erp
                .stock_move(&format!("MAT{i}"), FINISHED, 0.0)
                .expect("move"),
        )
        .await;
    }
    h.settle().await;
    let p = pushed(&h);
    // RUG: one value per channel, the latest (5 and 3), never the intermediate ones.
    let rug: Vec<_> = p.iter().filter(|(_, s, _)| s == "RUG").collect();
    assert_eq!(rug.len(), 2, "{rug:?}");
    assert_eq!(h.shop.level("web", "RUG"), Some(5));
    assert_eq!(h.shop.level("marketplace", "RUG"), Some(3));
    // A first value of zero is pushed too.
    assert_eq!(h.shop.level("web", "MAT0"), Some(0));
    // Batches respect max_batch.
    for r in h.shop.requests() {
        assert!(r.json()["levels"].as_array().expect("levels").len() <= 4);
    }
    // A signal that changes nothing pushes nothing.
    let before = h.shop.requests().len();
    h.deliver(h.erp.stock_move("RUG", ELSEWHERE, 9.0).expect("move"))
        .await;
    h.erp
        .set_bin_silently("MAT1", FINISHED, 0.0, 0.0)
        .expect("touch");
    h.deliver(h.erp.stock_move("MAT1", FINISHED, 0.0).expect("move"))
        .await;
    h.settle().await;
    assert_eq!(h.shop.requests().len(), before);
    h.stop().await;
}
