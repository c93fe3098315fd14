//! `shoprelay demo`: a simulated ERPNext and shop on loopback with the real relay between them,
//! playing a short scenario (stock, a shipment with tracking, a shop order that becomes a Sales
//! Order) and saying in plain words what the shop receives and why.

use std::time::{Duration, Instant};

use shoprelay::config::Settings;
use shoprelay::erpnext::webhooks::for_site;
use shoprelay::signing::standard_signature;
use shoprelay::startup::{Application, Relay, Workers};
use shoprelay_testkit::{
    relay_toml, with_orders, Delivery, ErpEmulator, ShopMock, SHOP_ORDER_SECRET, WEBHOOK_SECRET,
};

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

const STORES: &str = "Stores - ACME";
const FINISHED: &str = "Finished Goods - ACME";

struct Demo {
    erp: ErpEmulator,
    shop: ShopMock,
    seen: usize,
}

impl Demo {
    async fn send(&self, ds: &[Delivery]) -> DemoResult<()> {
        for d in ds {
            let (status, answer) = self.erp.deliver_with_answer(d).await?;
            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            let answer = answer["status"].as_str().unwrap_or_default().to_owned();
            let body: serde_json::Value = serde_json::from_slice(&d.body)?;
            let what = match (body["item_code"].as_str(), body["warehouse"].as_str()) {
                (Some(i), Some(w)) => format!("{i} in {w}"),
                _ => body["name"].as_str().unwrap_or("?").to_owned(),
            };
            println!(
                "  ERPNext -> relay  {:<44} {what:<32} answered {status} {answer}",
                d.webhook
            );
        }
        Ok(())
    }

    /// Waits until the shop shows `want`, then prints the requests it received meanwhile.
    async fn wait_for_levels(&mut self, want: &[(&str, &str, u64)]) -> DemoResult<()> {
        let what = format!("{want:?}");
        self.until(
            |shop| want.iter().all(|(c, s, v)| shop.level(c, s) == Some(*v)),
            &what,
        )
        .await
    }

    /// Waits until `done` holds for the shop, then prints the requests it received meanwhile.
    async fn until(&mut self, done: impl Fn(&ShopMock) -> bool, what: &str) -> DemoResult<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(&self.shop) {
            if Instant::now() > deadline {
                return Err(format!(
                    "the shop did not reach {what}; it holds {:?}",
                    self.shop.levels()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reqs = self.shop.requests();
        for r in &reqs[self.seen..] {
            let body = r.json();
            let detail = match body["levels"].as_array() {
                Some(ls) => format!(
                    "channel={} {}",
                    body["channel"].as_str().unwrap_or("?"),
                    ls.iter()
                        .map(|l| format!("{}={}", l["sku"].as_str().unwrap_or("?"), l["available"]))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                None if r.method == "PUT" => format!(
                    "carrier={} tracking={} items={}",
                    body["carrier"], body["tracking_number"], body["items"]
                ),
                None => String::new(),
            };
            let answer = if r.status == 200 {
                "ok".to_owned()
            } else {
                format!("{} (will retry)", r.status)
            };
            println!(
                "  relay -> shop     {} {} {detail}  -> {answer}",
                r.method, r.path
            );
        }
        self.seen = reqs.len();
        Ok(())
    }
}

/// Sends `order` to the relay as the shop would: signed with the shop's order secret.
async fn send_order(
    port: u16,
    webhook_id: &str,
    order: &serde_json::Value,
) -> DemoResult<(u16, serde_json::Value)> {
    let body = serde_json::to_vec(order)?;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/shop/orders"))
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            standard_signature(SHOP_ORDER_SECRET, webhook_id, ts, &body),
        )
        .body(body)
        .send()
        .await?;
    Ok((answer.status().as_u16(), answer.json().await?))
}

/// Waits until the relay has placed `order_id`; its Customer and Sales Order.
async fn placed(relay: &Relay, order_id: &str) -> DemoResult<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let record = relay.store.order(order_id).await?;
        if let Some(r) = &record {
            if let (Some(c), Some(so)) = (&r.customer, &r.sales_order) {
                return Ok((c.clone(), so.clone()));
            }
        }
        if Instant::now() > deadline {
            let why = record.and_then(|r| r.error).unwrap_or_default();
            return Err(format!("order {order_id} was not placed: {why}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn step(title: &str, why: &str) {
    println!("\n== {title}");
    for line in why.lines() {
        println!("   {line}");
    }
}

/// Runs the demo. Needs no configuration; keeps its data in a temporary directory.
pub async fn run() -> DemoResult<()> {
    let erp = ErpEmulator::start(WEBHOOK_SECRET, for_site(Some(ErpEmulator::SKU_FIELD))?).await?;
    let shop = ShopMock::start().await?;
    let dir = std::env::temp_dir().join(format!("shoprelay-demo-{}", std::process::id()));
    let toml = with_orders(&relay_toml(&erp.url(), &shop.base_url(), &dir), &[]);
    let settings = Settings::from_toml(&toml, &[])?;
    let app = Application::build(settings, Workers::Background).await?;
    let relay = app.relay();
    let port = app.port();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    erp.set_relay(&format!("http://127.0.0.1:{port}"));

    println!("shoprelay demo: a simulated ERPNext ({}) and shop ({}), the real relay on 127.0.0.1:{port}.", erp.url(), shop.base_url());
    println!("Channels: web = Stores + Finished Goods, stock minus reservations;");
    println!("          marketplace = Stores only, minus a safety buffer of 2.");
    let mut demo = Demo { erp, shop, seen: 0 };

    step(
        "1. 20 chairs arrive in Stores",
        "ERPNext posts a Stock Entry; its one webhook names every row's item and warehouse.\n\
         No webhook carries a quantity the relay could trust (ERPNext writes Bins with set_value),\n\
         so the relay treats it as a signal and reads the Bin back over REST.",
    );
    let ds = demo.erp.stock_move("CHAIR", STORES, 20.0)?;
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 20), ("marketplace", "CHAIR", 18)])
        .await?;

    step(
        "2. 5 chairs are finished in Finished Goods",
        "Only the web channel sells from Finished Goods.",
    );
    let ds = demo.erp.stock_move("CHAIR", FINISHED, 5.0)?;
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 25)]).await?;

    step(
        "3. A Sales Order reserves 3 chairs in Stores",
        "ERPNext fires no Bin webhook for a reservation; the Sales Order webhooks name the items,\n\
         and the read-back shows reserved_qty 3, so the shop must not sell those 3 again.",
    );
    let (so, ds) = demo
        .erp
        .submit_sales_order("SHOP-1001", &[("CHAIR", STORES, 3.0)])?;
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 22), ("marketplace", "CHAIR", 15)])
        .await?;

    step(
        "4. The shop is down while 2 chairs are sold at the counter",
        "The relay keeps the levels in its durable outbox and retries with backoff.",
    );
    demo.shop.set_down(true);
    let ds = demo.erp.stock_move("CHAIR", STORES, -2.0)?;
    demo.send(&ds).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo
        .shop
        .requests()
        .iter()
        .filter(|r| r.status == 503)
        .count()
        < 2
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    demo.shop.set_down(false);
    demo.wait_for_levels(&[("web", "CHAIR", 20), ("marketplace", "CHAIR", 13)])
        .await?;

    step(
        "5. Frappe delivers the same webhook twice (it retries after a timeout)",
        "The relay answers 200 again but does nothing twice.",
    );
    demo.send(ds.get(..1).unwrap_or_default()).await?;

    step(
        "6. Shop order SHOP-1002 for 2 chairs is delivered",
        "Its Sales Order reserves 2; the Delivery Note (transporter DHL, receipt LR-4711) ships them.\n\
         The shop gets the shipment under its own order id, read from the Sales Order's po_no.",
    );
    let (so2, ds) = demo
        .erp
        .submit_sales_order("SHOP-1002", &[("CHAIR", STORES, 2.0)])?;
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 18)]).await?;
    let transport = shoprelay_testkit::erp::Transport {
        transporter_name: Some("DHL"),
        lr_no: Some("LR-4711"),
    };
    let (dn, ds) =
        demo.erp
            .submit_delivery_note(&[(Some(&so2), "CHAIR", STORES, 2.0)], transport, None)?;
    demo.send(&ds).await?;
    let key = ("SHOP-1002".to_owned(), dn.clone());
    demo.until(|shop| shop.shipments().contains_key(&key), "the shipment")
        .await?;

    step(
        "7. The carrier's tracking number arrives on a Shipment document",
        "The relay PUTs the same shipment again, now with the carrier's tracking.",
    );
    let (_, ds) = demo.erp.submit_shipment(
        &[&dn],
        Some("UPS"),
        Some("1Z999AA10123456784"),
        Some("https://track.example/1Z999AA10123456784"),
    )?;
    demo.send(&ds).await?;
    demo.until(
        |shop| {
            shop.shipments()
                .get(&key)
                .is_some_and(|s| s["tracking_number"] == "1Z999AA10123456784")
        },
        "the tracking",
    )
    .await?;

    step(
        "8. The first Sales Order is cancelled",
        "The reservation is released; the shop can sell those 3 again.",
    );
    let ds = demo.erp.cancel_sales_order(&so)?;
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 21), ("marketplace", "CHAIR", 14)])
        .await?;

    step(
        "9. The delivery note is cancelled",
        "The relay PUTs the same shipment once more, with \"status\": \"cancelled\" (every push \
         has a JSON body, so Standard Webhooks libraries verify it). The stock is back on hand and \
         reserved again for the order, so the levels stay.",
    );
    let ds = demo.erp.cancel_delivery_note(&dn)?;
    demo.send(&ds).await?;
    demo.until(
        |shop| {
            shop.shipments()
                .get(&key)
                .is_some_and(|s| s["status"] == "cancelled")
        },
        "the cancellation",
    )
    .await?;
    demo.wait_for_levels(&[("web", "CHAIR", 21), ("marketplace", "CHAIR", 14)])
        .await?;

    step(
        "10. The shop sends order SHOP-2001: 2 chairs for a new customer, Ada Lovelace",
        "Signed with Standard Webhooks, stored and flushed before the relay answers 202. The relay\n\
         looks the customer up by email, creates her (with contact and address), and creates one\n\
         submitted Sales Order with po_no SHOP-2001, taking the chairs from the web channel's first\n\
         warehouse. The reservation this causes reaches the shop through the stock path.",
    );
    demo.erp.add_item("CHAIR", Some(19.9), &[]);
    let order = serde_json::json!({
        "order_id": "SHOP-2001", "channel": "web", "placed_at": "2026-11-26T09:30:00Z",
        "currency": "USD",
        "customer": {"email": "Ada.Lovelace@example.com", "first_name": "Ada",
                     "last_name": "Lovelace", "phone": "+44 20 7946 0000"},
        "shipping_address": {"line1": "12 St James's Square", "city": "London",
                             "postcode": "SW1Y 4JH", "country": "GB"},
        "lines": [{"sku": "CHAIR", "qty": 2, "unit_price": 19.9}],
        "shipping": {"method": "Royal Mail", "amount": 4.9},
        "total": 44.7
    });
    let (status, answer) = send_order(port, "msg_shop_2001", &order).await?;
    println!(
        "  shop -> relay     POST /webhooks/shop/orders SHOP-2001  answered {status} {answer}"
    );
    let (customer, so) = placed(&relay, "SHOP-2001").await?;
    let doc = demo.erp.doc("Sales Order", &so).unwrap_or_default();
    println!(
        "  relay -> ERPNext  Customer {customer:?}, Sales Order {so} ({}, grand total {} {})",
        doc["status"].as_str().unwrap_or("?"),
        doc["grand_total"],
        doc["currency"].as_str().unwrap_or("?")
    );
    let bin = demo.erp.bin("CHAIR", STORES).unwrap_or_default();
    println!(
        "  ERPNext           Bin CHAIR in {STORES}: actual {} reserved {}",
        bin["actual_qty"], bin["reserved_qty"]
    );
    let ds = demo.erp.take_order_deliveries();
    demo.send(&ds).await?;
    demo.wait_for_levels(&[("web", "CHAIR", 19), ("marketplace", "CHAIR", 12)])
        .await?;
    let (status, answer) = send_order(port, "msg_shop_2001_again", &order).await?;
    println!("  shop -> relay     the same order under a new webhook-id  answered {status} {answer}: no second Sales Order");

    println!("\nThe shop now shows: {:?}", demo.shop.levels());
    for ((order, shipment), body) in demo.shop.shipments() {
        println!("and shipment {shipment} of order {order}: {body}");
    }
    println!(
        "Every level was sent as an absolute number, read from ERPNext, never from a payload."
    );
    handle.stop(true).await;
    let _ = server.await;
    demo.erp.stop().await;
    demo.shop.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
