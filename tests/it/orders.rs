//! Shop orders through the real relay on loopback: signed deliveries verified and deduplicated,
//! bad bodies refused with every problem listed, the order's fate in the admin API, and orders
//! placed in the ERPNext emulator exactly once, also while ERPNext is down and when one new
//! customer sends two orders at once.

use crate::common;

use common::orders::{
    admin_order, admin_order_as, erp_list, now_secs, order, post_order, post_signed,
    sales_orders_of, with_orders, CHAIR, OLD_SHOP_SECRET, SHOP_SECRET,
};
use common::{wait_until_async, Harness, STORES};
use serde_json::{json, Value};
use shoprelay::startup::Workers;

async fn start(workers: Workers) -> Harness {
    let h = Harness::start_with(workers, with_orders).await;
    h.erp.save_item(CHAIR, &[]).expect("item");
    h.erp.stock_move(CHAIR, STORES, 10.0).expect("stock");
    h
}

/// Steps the order queue until `order_id` has `status` (manual mode).
async fn step_until(h: &Harness, order_id: &str, status: &str) -> Value {
    let relay = h.url("");
    wait_until_async(&format!("{order_id} {status}"), || async {
        h.relay.orders.step().await.expect("order step");
        admin_order(&relay, order_id).await["status"] == status
    })
    .await;
    admin_order(&relay, order_id).await
}

/// Waits until `order_id` has `status` (background workers).
async fn wait_status(h: &Harness, order_id: &str, status: &str) -> Value {
    let relay = h.url("");
    wait_until_async(&format!("{order_id} {status}"), || async {
        admin_order(&relay, order_id).await["status"] == status
    })
    .await;
    admin_order(&relay, order_id).await
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused_and_nothing_is_stored() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    let body = serde_json::to_vec(&order("SIG-1", "sig@example.com")).expect("json");
    // A minute beyond the 300-second tolerance on either side: the cases are sent one after
    // another, and on a loaded machine a second may pass between signing and checking.
    let now = now_secs();
    let cases = [
        (
            "wrong secret",
            "whsec_d3Jvbmctc2VjcmV0",
            now,
            "matches the body",
        ),
        ("stale", SHOP_SECRET, now - 360, "300 seconds"),
        ("from the future", SHOP_SECRET, now + 360, "300 seconds"),
    ];
    for (what, secret, ts, says) in cases {
        let (status, answer) = post_signed(&relay, "msg_sig", ts, secret, &body).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_signature", "{what}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{what}: {message}");
        assert!(!message.contains("whsec_"), "no secret in {message}");
    }
    let unsigned = reqwest::Client::new()
        .post(h.url("/webhooks/shop/orders"))
        .body(body.clone())
        .send()
        .await
        .expect("unsigned");
    assert_eq!(unsigned.status().as_u16(), 401);
    let (status, _) = admin_order_as(&relay, "SIG-1", Some("admin-token-0123456789")).await;
    assert_eq!(status, 404, "nothing refused was stored");
    // The secret being rotated out still verifies, within the tolerance.
    let (status, answer) = post_signed(&relay, "msg_old", now - 299, OLD_SHOP_SECRET, &body).await;
    assert_eq!(
        (status, &answer["status"]),
        (202, &json!("accepted")),
        "{answer}"
    );
    assert_eq!(admin_order(&relay, "SIG-1").await["status"], "received");
    h.stop().await;
}

#[tokio::test]
async fn a_bad_order_gets_every_problem_listed_and_nothing_is_stored() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    let mut bad = order("BAD-1", "not-an-email");
    bad["currency"] = json!("dollars");
    bad["lines"][0]["qty"] = json!(-2);
    bad["shipping_address"]["country"] = json!("United States");
    bad["channel"] = json!("pos");
    let (status, answer) = post_order(&relay, "msg_bad", &bad).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_order");
    let fields: Vec<&str> = answer["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "channel",
            "currency",
            "customer.email",
            "shipping_address.country",
            "lines[0].qty"
        ],
        "{answer}"
    );
    assert!(answer["message"]
        .as_str()
        .unwrap_or_default()
        .contains("lines[0].qty must be greater than 0"));
    let (status, answer) =
        post_signed(&relay, "msg_bad2", now_secs(), SHOP_SECRET, b"{not json").await;
    assert_eq!((status, &answer["error"]), (400, &json!("malformed_body")));
    let (status, _) = admin_order_as(&relay, "BAD-1", Some("admin-token-0123456789")).await;
    assert_eq!(status, 404, "nothing stored");
    assert_eq!(h.relay.store.order_depths(), (0, 0));
    // The same body, fixed, under the same webhook id is accepted: a refusal left no trace.
    let (status, _) = post_order(&relay, "msg_bad", &order("BAD-1", "bad@example.com")).await;
    assert_eq!(status, 202);
    h.stop().await;
}

#[tokio::test]
async fn absurd_amounts_and_huge_orders_are_refused_at_the_door_with_a_short_answer() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    // Two lines of 1e300 chairs: their sum cannot be priced (it once wrapped to -0.02).
    let mut absurd = order("HUGE-1", "huge@example.com");
    absurd["lines"] = json!([{"sku": CHAIR, "qty": 1e300, "unit_price": 19.9},
                             {"sku": CHAIR, "qty": 1e300, "unit_price": 19.9}]);
    absurd["total"] = json!(-0.02);
    let (status, answer) = post_order(&relay, "msg_huge_1", &absurd).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "lines[0].qty is too large: ERPNext holds amounts and quantities below 10^12"
        ),
        "{answer}"
    );
    assert!(!message.contains("-0.02 is not"), "{answer}");
    // One line that fits ERPNext field by field, but whose amount does not.
    let mut absurd = order("HUGE-2", "huge@example.com");
    absurd["lines"] = json!([{"sku": CHAIR, "qty": 1e9, "unit_price": 1e9}]);
    absurd.as_object_mut().expect("object").remove("total");
    let (status, answer) = post_order(&relay, "msg_huge_2", &absurd).await;
    assert_eq!(
        (status, &answer["problems"][0]["field"]),
        (400, &json!("lines[0]")),
        "{answer}"
    );
    // 25,000 lines: one problem, not 25,000 walks.
    let mut long = order("HUGE-3", "huge@example.com");
    long["lines"] = json!(vec![json!({"sku": "A", "qty": 1, "unit_price": 1}); 25_000]);
    let (status, answer) = post_order(&relay, "msg_huge_3", &long).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["problems"],
        json!([{"field": "lines", "problem": "holds 25000 lines; at most 500 are allowed (orders.max_lines)"}])
    );
    // A 300 KB order with three problems on each of its 500 lines: 50 listed, the rest counted.
    let mut bad = order("HUGE-4", "huge@example.com");
    let line = json!({"sku": "S".repeat(520), "qty": -1, "unit_price": "free"});
    bad["lines"] = json!(vec![line; 500]);
    let size = serde_json::to_vec(&bad).expect("json").len();
    assert!(size > 270_000, "{size}");
    let (status, answer) = post_order(&relay, "msg_huge_4", &bad).await;
    assert_eq!(status, 400);
    let problems = answer["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 50);
    assert_eq!(
        problems[0],
        json!({"field": "lines[0].sku", "problem": "is 520 characters long; at most 140 are allowed (orders.max_text_chars)"})
    );
    assert_eq!(answer["problems_not_listed"], 1450);
    assert!(
        message_ends_with_count(&answer, 1450),
        "{}",
        answer["message"]
    );
    let answer_size = serde_json::to_vec(&answer).expect("json").len();
    assert!(answer_size < 16_000, "the answer is {answer_size} bytes");
    assert_eq!(h.relay.store.order_depths(), (0, 0), "nothing stored");
    h.stop().await;
}

fn message_ends_with_count(answer: &Value, n: usize) -> bool {
    answer["message"]
        .as_str()
        .is_some_and(|m| m.ends_with(&format!("; and {n} more problems")))
}

#[tokio::test]
async fn repeated_deliveries_and_new_webhook_ids_for_one_order_are_accepted_once() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    let body = order("DUP-1", "dup@example.com");
    let (status, answer) = post_order(&relay, "msg_dup_1", &body).await;
    assert_eq!(
        (status, answer),
        (202, json!({"status": "accepted", "order_id": "DUP-1"}))
    );
    for webhook_id in ["msg_dup_1", "msg_dup_2"] {
        let (status, answer) = post_order(&relay, webhook_id, &body).await;
        assert_eq!(
            (status, answer),
            (200, json!({"status": "duplicate", "order_id": "DUP-1"})),
            "{webhook_id}"
        );
    }
    // A webhook id reused for another order would lose that order: refused, not swallowed.
    let (status, answer) =
        post_order(&relay, "msg_dup_1", &order("DUP-2", "dup@example.com")).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "webhook_id_reused");
    assert_eq!(h.relay.store.order_depths(), (1, 0), "one order owed");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("shoprelay_orders_received_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shoprelay_orders_duplicate_total 2\n"),
        "{metrics}"
    );
    let placed = step_until(&h, "DUP-1", "created").await;
    assert_eq!(
        sales_orders_of(&h.erp.url(), "DUP-1").await.len(),
        1,
        "{placed}"
    );
    // Delivered again after it was placed: still one Sales Order.
    let (status, _) = post_order(&relay, "msg_dup_3", &body).await;
    assert_eq!(status, 200);
    h.relay.orders.step().await.expect("step");
    assert_eq!(sales_orders_of(&h.erp.url(), "DUP-1").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn the_admin_order_route_needs_the_token_and_knows_only_received_orders() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    let (status, _) = post_order(&relay, "msg_adm", &order("ADM-1", "adm@example.com")).await;
    assert_eq!(status, 202);
    for token in [None, Some("wrong-token")] {
        let (status, answer) = admin_order_as(&relay, "ADM-1", token).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(
            answer.get("status").is_none(),
            "nothing about the order leaks"
        );
    }
    let (status, answer) =
        admin_order_as(&relay, "NEVER-SENT", Some("admin-token-0123456789")).await;
    assert_eq!(status, 404);
    assert!(answer["error"]
        .as_str()
        .unwrap_or_default()
        .contains("NEVER-SENT"));
    let seen = admin_order(&relay, "ADM-1").await;
    assert_eq!(
        (
            &seen["order_id"],
            &seen["status"],
            &seen["sales_order"],
            &seen["error"]
        ),
        (
            &json!("ADM-1"),
            &json!("received"),
            &Value::Null,
            &Value::Null
        )
    );
    let created = step_until(&h, "ADM-1", "created").await;
    let so = created["sales_order"].as_str().expect("sales order name");
    let customer = created["customer"].as_str().expect("customer name");
    let found = sales_orders_of(&h.erp.url(), "ADM-1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0]["name"].as_str(), found[0]["customer"].as_str()),
        (Some(so), Some(customer))
    );
    assert!(h
        .metrics()
        .await
        .contains("shoprelay_orders_total{outcome=\"created\"} 1\n"));
    h.stop().await;
}

#[tokio::test]
async fn an_order_made_while_erpnext_is_down_stays_owed_and_is_placed_once_it_is_back() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    h.erp.set_rest_down(true);
    let (status, _) = post_order(&relay, "msg_down", &order("DOWN-1", "down@example.com")).await;
    assert_eq!(status, 202, "the relay takes orders while ERPNext is down");
    let report = h.relay.orders.step().await.expect("step");
    assert_eq!(report.retried, 1, "{report:?}");
    let owed = admin_order(&relay, "DOWN-1").await;
    assert_eq!(owed["status"], "received");
    assert_eq!(owed["attempts"], 1);
    assert!(
        owed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unavailable"),
        "{owed}"
    );
    h.erp.set_rest_down(false);
    let placed = step_until(&h, "DOWN-1", "created").await;
    assert_eq!(placed["error"], Value::Null, "{placed}");
    assert_eq!(sales_orders_of(&h.erp.url(), "DOWN-1").await.len(), 1);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("shoprelay_orders_total{outcome=\"retry\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shoprelay_orders_total{outcome=\"created\"} 1\n"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_outage_pauses_the_whole_queue_and_one_order_probes_before_the_rest() {
    let h = start(Workers::Manual).await;
    let relay = h.url("");
    h.erp.set_rest_down(true);
    for i in 1..=3 {
        let id = format!("OUT-{i}");
        let (status, _) = post_order(
            &relay,
            &format!("msg_out_{i}"),
            &order(&id, &format!("out{i}@example.com")),
        )
        .await;
        assert_eq!(status, 202);
    }
    let first = h.relay.orders.step().await.expect("step");
    assert_eq!(first.retried, 3, "{first:?}");
    // ERPNext is out for every order: the queue waits as a whole, attempting nothing.
    let paused = h.relay.orders.step().await.expect("step");
    assert!(paused.is_idle(), "{paused:?}");
    assert!(paused.next_due_ms.is_some(), "{paused:?}");
    // When the pause ends, one order probes; the others wait for its answer.
    let probe = std::cell::Cell::new((0, 0));
    wait_until_async("the probe after the pause", || async {
        let step = h.relay.orders.step().await.expect("step");
        probe.set((step.retried, step.placed));
        !step.is_idle()
    })
    .await;
    assert_eq!(probe.get(), (1, 0), "retried, placed");
    h.erp.set_rest_down(false);
    for i in 1..=3 {
        step_until(&h, &format!("OUT-{i}"), "created").await;
    }
    h.stop().await;
}

/// Issue: with ERPNext down and thousands of orders owed, every step of the queue read and
/// parsed every owed order (a core busy, memory growing with the backlog). Now the queue reads
/// only what it attempts: counted through the store's read counter, not by timing.
#[tokio::test]
async fn a_backlog_costs_no_reads_while_erpnext_is_down_and_placing_resumes_once_it_is_back() {
    const OWED: usize = 2_000;
    const PLACED: usize = 200;
    let h = Harness::start_with(Workers::Background, |toml| {
        with_orders(toml) + "concurrency = 16\n"
    })
    .await;
    h.erp.save_item(CHAIR, &[]).expect("item");
    let relay = h.url("");
    h.erp.set_rest_down(true);
    let ids: Vec<String> = (0..OWED).map(|i| format!("BACKLOG-{i}")).collect();
    for chunk in ids.chunks(32) {
        let posts = chunk.iter().enumerate().map(|(i, id)| {
            let relay = relay.clone();
            let body = order(id, &format!("backlog{}@example.com", i % 16));
            async move { post_order(&relay, &format!("msg_{id}"), &body).await.0 }
        });
        for status in futures_util::future::join_all(posts).await {
            assert_eq!(status, 202);
        }
    }
    assert_eq!(h.relay.store.order_depths(), (OWED, 0));
    // Let the queue meet the outage a few times (each retry pauses it with backoff).
    let retries = || async {
        let m = h.metrics().await;
        m.lines()
            .find_map(|l| l.strip_prefix("shoprelay_orders_total{outcome=\"retry\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_until_async("five outage retries", || async { retries().await >= 5 }).await;
    let (reads_before, retries_before) = (h.relay.store.order_records_read(), retries().await);
    wait_until_async("five more", || async {
        retries().await >= retries_before + 5
    })
    .await;
    let (reads, tried) = (
        h.relay.store.order_records_read() - reads_before,
        retries().await - retries_before,
    );
    // A record read or two per attempt (the probe, and the attempt reading its record back),
    // give or take the steps in flight: never the backlog (2,000 reads a step before).
    assert!(
        reads <= 2 * tried + 4,
        "{reads} records read for {tried} attempts"
    );
    // Back: the queue places the backlog, the oldest first (the first PLACED of it here; the
    // whole of it takes minutes against the emulator of a debug build).
    h.erp.set_rest_down(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while h.relay.store.order_depths().0 > OWED - PLACED {
        let (owed, dead) = h.relay.store.order_depths();
        assert_eq!(
            dead,
            0,
            "{:?}",
            h.relay
                .store
                .dead_orders()
                .await
                .map(|d| d[0].error.clone())
        );
        assert!(std::time::Instant::now() < deadline, "{owed} still owed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for id in &ids[..16] {
        assert_eq!(sales_orders_of(&h.erp.url(), id).await.len(), 1, "{id}");
    }
    h.stop().await;
}

#[tokio::test]
async fn an_order_survives_a_restart_while_erpnext_is_down() {
    let h = start(Workers::Manual).await;
    h.erp.set_rest_down(true);
    let (status, _) = post_order(&h.url(""), "msg_rs", &order("RESTART-1", "rs@example.com")).await;
    assert_eq!(status, 202);
    h.relay.orders.step().await.expect("step");
    // A second relay on the same data (the first stopped) finds the order still owed.
    let erp = h.erp.url();
    let data = h.dir.path().join("data");
    let toml = with_orders(shoprelay_testkit::relay_toml(
        &erp,
        &h.shop.base_url(),
        &data,
    ));
    h.handle.stop(true).await;
    drop(h.relay);
    let settings = shoprelay::config::Settings::from_toml(&toml, &[]).expect("settings");
    // Polls until the first relay has let go of its data directory.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let again = loop {
        match shoprelay::startup::Relay::open(&settings).await {
            Ok(relay) => break relay,
            Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    let owed = again
        .store
        .order("RESTART-1")
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(owed.attempts, 1);
    assert!(owed.status.is_owed());
    h.erp.set_rest_down(false);
    wait_until_async("placed after the restart", || async {
        again.orders.step().await.expect("step");
        again
            .store
            .order("RESTART-1")
            .await
            .expect("read")
            .is_some_and(|r| r.sales_order.is_some())
    })
    .await;
    assert_eq!(sales_orders_of(&erp, "RESTART-1").await.len(), 1);
    h.erp.stop().await;
    h.shop.stop().await;
}

#[tokio::test]
async fn an_unknown_sku_is_a_dead_letter_retried_once_the_item_exists() {
    let h = start(Workers::Background).await;
    let relay = h.url("");
    let mut body = order("SKU-1", "sku@example.com");
    body["lines"][0]["sku"] = json!("NO-SUCH-SKU");
    let (status, _) = post_order(&relay, "msg_sku", &body).await;
    assert_eq!(
        status, 202,
        "the shop's order is valid; ERPNext lacks the item"
    );
    let dead = wait_status(&h, "SKU-1", "dead").await;
    assert!(
        dead["error"]
            .as_str()
            .unwrap_or_default()
            .contains("NO-SUCH-SKU"),
        "{dead}"
    );
    let letters = h.dead_letters().await;
    assert_eq!(letters["orders"][0]["order_id"], "SKU-1", "{letters}");
    let client = reqwest::Client::new();
    let retry = |id: &str| {
        client
            .post(h.url(&format!("/admin/orders/{id}/retry")))
            .bearer_auth("admin-token-0123456789")
            .send()
    };
    assert_eq!(retry("NOPE").await.expect("retry").status().as_u16(), 404);
    h.erp
        .save_item("NO-SUCH-SKU", &[])
        .expect("the item is created");
    let answer = retry("SKU-1").await.expect("retry");
    assert_eq!(answer.status().as_u16(), 200);
    let placed = wait_status(&h, "SKU-1", "created").await;
    assert_eq!(
        sales_orders_of(&h.erp.url(), "SKU-1").await.len(),
        1,
        "{placed}"
    );
    assert_eq!(
        retry("SKU-1").await.expect("retry").status().as_u16(),
        409,
        "not dead any more"
    );
    h.stop().await;
}

#[tokio::test]
async fn two_orders_of_one_new_customer_at_once_make_one_customer() {
    let h = start(Workers::Background).await;
    let relay = h.url("");
    let a = order("TWIN-1", "twins@example.com");
    let b = order("TWIN-2", "  Twins@Example.COM ");
    let (ra, rb) = tokio::join!(
        post_order(&relay, "msg_twin_1", &a),
        post_order(&relay, "msg_twin_2", &b)
    );
    assert_eq!((ra.0, rb.0), (202, 202));
    let first = wait_status(&h, "TWIN-1", "created").await;
    let second = wait_status(&h, "TWIN-2", "created").await;
    assert_eq!(first["customer"], second["customer"], "{first} {second}");
    let customers = erp_list(
        &h.erp.url(),
        "Customer",
        json!([["email_id", "=", "twins@example.com"]]),
        &["name", "email_id"],
    )
    .await;
    assert_eq!(customers.len(), 1, "{customers:?}");
    h.stop().await;
}

/// The official Python Standard Webhooks library (`standardwebhooks`, as a shop would use it)
/// signs and sends an order (`shop_adapter_spec/send_order.py`); the relay accepts it. Skips, saying why, without Python or the
/// library (`SHOPRELAY_PYTHON` names an interpreter, e.g. a virtualenv's).
#[tokio::test]
async fn an_order_signed_by_the_python_standardwebhooks_library_is_accepted() {
    let python = std::env::var("SHOPRELAY_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            };
            if std::env::var("SHOPRELAY_INTEROP_REQUIRED").is_ok() {
                panic!("SHOPRELAY_INTEROP_REQUIRED is set but {python} cannot import standardwebhooks: {why}");
            }
            eprintln!("SKIP: needs {python} with standardwebhooks (pip install standardwebhooks==1.1.0): {why}");
            return;
        }
    }
    let h = start(Workers::Manual).await;
    // The worked example of shop_adapter_spec/README.md, run as a shop developer would.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shop_adapter_spec/send_order.py"
    );
    let relay = h.url("");
    // Off the test's runtime: the relay's flushes run on it while Python waits for the answer.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args([script, &relay, SHOP_SECRET, "PY-1"])
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.starts_with("202 "), "{printed}");
    let seen = admin_order(&h.url(""), "PY-1").await;
    assert_eq!(seen["status"], "received");
    let stored = h
        .relay
        .store
        .order("PY-1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        stored.order["shipping_address"]["line1"], "Hauptstraße 1",
        "UTF-8 kept"
    );
    assert_eq!(stored.order["customer"]["fields"]["loyalty_tier"], "gold");
    h.stop().await;
}

#[tokio::test]
async fn without_a_shop_webhook_secret_orders_are_refused_with_503_and_not_stored() {
    let h = Harness::start(Workers::Manual).await;
    let (status, answer) =
        post_order(&h.url(""), "msg_off", &order("OFF-1", "off@example.com")).await;
    assert_eq!(
        status, 503,
        "the shop keeps retrying until a secret is set: {answer}"
    );
    assert_eq!(answer["error"], "orders_disabled");
    assert!(answer["message"]
        .as_str()
        .unwrap_or_default()
        .contains("shop.webhook_secret"));
    assert_eq!(h.relay.store.order_depths(), (0, 0));
    h.stop().await;
}

#[tokio::test]
async fn erpnext_check_names_what_the_order_settings_lack_in_erpnext() {
    let h = Harness::start_with(Workers::Manual, |t| {
        with_orders(t).replace("\"Rest Of The World\"", "\"All Territories\"")
            + "[orders.fields]\ncustomer = { loyalty_tier = \"shop_loyalty_tier\" }\n"
    })
    .await;
    let check = || async {
        let mut out = Vec::new();
        shoprelay::cli::erpnext_check(&h.tool_settings(), &mut out)
            .await
            .expect("check");
        String::from_utf8_lossy(&out).into_owned()
    };
    let out = check().await;
    for line in [
        "ok   orders.shipping_account: Account \"Freight and Forwarding Charges - ACME\" exists",
        "ok   orders.customer_group: Customer Group \"Individual\" exists",
        "FAIL orders.territory: Territory \"All Territories\" is a group",
        "FAIL orders.fields: loyalty_tier -> Customer.shop_loyalty_tier: Customer has no field",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    h.erp.add_custom_field("Customer", "shop_loyalty_tier");
    let out = check().await;
    assert!(
        out.contains("ok   orders.fields: loyalty_tier -> Customer.shop_loyalty_tier exists"),
        "{out}"
    );
    h.stop().await;
}

/// The order example of the shop contract (`shop_adapter_spec/openapi.yaml`) is accepted as it
/// stands, and placed.
#[tokio::test]
async fn the_contracts_example_order_is_accepted_and_placed() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shop_adapter_spec/openapi.yaml"
    ))
    .expect("spec");
    let spec: Value = yaml_serde::from_str(&text).expect("spec YAML");
    let example = spec["webhooks"]["shopOrder"]["post"]["requestBody"]["content"]
        ["application/json"]["example"]
        .clone();
    let order_id = example["order_id"]
        .as_str()
        .expect("example order id")
        .to_owned();
    let h = start(Workers::Manual).await;
    h.erp.save_item("SKU-001", &[]).expect("the example's item");
    let (status, answer) = post_order(&h.url(""), "msg_example", &example).await;
    assert_eq!(status, 202, "{answer}");
    let placed = step_until(&h, &order_id, "created").await;
    assert_eq!(
        sales_orders_of(&h.erp.url(), &order_id).await.len(),
        1,
        "{placed}"
    );
    h.stop().await;
}
