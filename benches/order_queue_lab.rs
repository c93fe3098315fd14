//! The order queue against a real ERPNext 15 site: the relay (in process, on loopback) takes
//! signed orders over HTTP and places them; how long until every order is a Sales Order, with
//! `orders.concurrency` 1 (every order after the other: the baseline in the same run) and 4
//! (up to 4 customers at once). Each phase has its own data directory and its own new
//! customers (`SRQ-` prefix); the Sales Orders are cancelled at the end. Skips without a site:
//!
//! `set -a; source $LAB/lab.env; set +a; cargo bench --bench order_queue_lab`
//! (`BENCH_ORDERS=N` orders per phase, default 16.)

#[path = "../tests/it/lab/env.rs"]
mod env;
#[path = "../tests/it/lab/orders.rs"]
mod orders;

use std::time::{Duration, Instant};

use orders::*;
use serde_json::Value;
use shoprelay::config::Settings;
use shoprelay::signing::standard_signature;
use shoprelay::startup::{Application, Relay, Workers};
use shoprelay_testkit::{relay_toml, with_orders, ShopMock, SHOP_ORDER_SECRET};

struct Phase {
    concurrency: usize,
    orders: usize,
    accepted: Duration,
    placed: Duration,
    created: Vec<String>,
}

async fn post(port: u16, body: &Value) -> u16 {
    let bytes = serde_json::to_vec(body).expect("order JSON");
    let id = format!("msg_{}", body["order_id"].as_str().unwrap_or_default());
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/shop/orders"))
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            standard_signature(SHOP_ORDER_SECRET, &id, ts, &bytes),
        )
        .body(bytes)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn phase(
    lab: &env::LabEnv,
    shop: &ShopMock,
    run: &str,
    concurrency: usize,
    n: usize,
) -> Phase {
    let (url, key, secret) = (&lab.url, &lab.key, &lab.secret);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = with_orders(&relay_toml(url, &shop.base_url(), dir.path()), &[])
        + &format!("concurrency = {concurrency}\n");
    let settings = Settings::from_toml(
        &toml,
        &[("erpnext_api_key", key), ("erpnext_api_secret", secret)],
    )
    .expect("settings");
    let app = Application::build(settings, Workers::Background)
        .await
        .expect("relay");
    let port = app.port();
    let relay: Relay = app.relay();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let ids: Vec<String> = (0..n)
        .map(|i| format!("SRQ-{run}-C{concurrency}-{i}"))
        .collect();
    eprintln!("phase {concurrency}: relay on {port}");
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let email = format!("srq-{run}-c{concurrency}-{i}@example.com");
        let mut body = serde_json::to_value(order(id, &email, "SRQ-Queue", &format!("Kunde {i}")))
            .expect("order");
        body["placed_at"] = serde_json::json!("2026-11-29T10:15:00Z");
        assert_eq!(post(port, &body).await, 202, "order {id}");
    }
    let accepted = started.elapsed();
    eprintln!("phase {concurrency}: {n} accepted");
    let deadline = Instant::now() + Duration::from_secs(600);
    let created = loop {
        let mut records = Vec::new();
        for id in &ids {
            if let Ok(Some(r)) = relay.store.order(id).await {
                records.push(r);
            }
        }
        let ended = records.iter().filter(|r| !r.status.is_owed()).count();
        if ended == n || Instant::now() > deadline {
            for r in records.iter().filter(|r| r.sales_order.is_none()) {
                eprintln!("{}: {:?} {:?}", r.order_id, r.status, r.error);
            }
            break records.into_iter().filter_map(|r| r.sales_order).collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let placed = started.elapsed();
    handle.stop(true).await;
    let _ = server.await;
    Phase {
        concurrency,
        orders: n,
        accepted,
        placed,
        created,
    }
}

#[tokio::main]
async fn main() {
    let Some((lab, n)) = bench_setup("order_queue_lab", 16) else {
        return;
    };
    let erp = client(&lab.url, &lab.key, &lab.secret);
    eprintln!("fixtures...");
    ensure_fixtures(&erp).await;
    eprintln!("fixtures ready");
    let shop = ShopMock::start().await.expect("shop");
    let run = run_id();
    let mut phases = Vec::new();
    for concurrency in [1, 4] {
        phases.push(phase(&lab, &shop, &run, concurrency, n).await);
    }
    println!(
        "\nERPNext at {}, {n} orders of {n} new customers per phase, run {run}\n",
        lab.url
    );
    println!("| orders.concurrency | orders | all accepted (202) after | all Sales Orders after | orders/s |");
    println!("|---|---|---|---|---|");
    for p in &phases {
        println!(
            "| {}{} | {} | {:.2} s | {:.1} s | {:.2} |",
            p.concurrency,
            if p.concurrency == 1 {
                " (baseline)"
            } else {
                ""
            },
            p.created.len(),
            p.accepted.as_secs_f64(),
            p.placed.as_secs_f64(),
            p.created.len() as f64 / p.placed.as_secs_f64()
        );
    }
    for p in &phases {
        if p.created.len() != p.orders {
            println!(
                "{} of {} orders were not placed (see above)",
                p.orders - p.created.len(),
                p.orders
            );
        }
    }
    let mut all: Vec<String> = phases.into_iter().flat_map(|p| p.created).collect();
    all.sort();
    all.dedup();
    println!("\ncancelling the {} Sales Orders made", all.len());
    for so in all {
        cancel(&erp, &so).await;
    }
    shop.stop().await;
}
