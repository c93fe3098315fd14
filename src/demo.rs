//! `shoprelay demo`: a simulated ERPNext and shop on loopback with the real relay between them,
//! playing a short scenario and saying in plain words what the shop receives and why.

use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::startup::{Application, Workers};
use crate::testkit::{relay_toml, Delivery, ErpEmulator, ShopMock, WEBHOOK_SECRET};

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

fn step(title: &str, why: &str) {
    println!("\n== {title}");
    for line in why.lines() {
        println!("   {line}");
    }
}

/// Runs the demo. Needs no configuration; keeps its data in a temporary directory.
pub async fn run() -> DemoResult<()> {
    let erp = ErpEmulator::start(WEBHOOK_SECRET).await?;
    let shop = ShopMock::start().await?;
    let dir = std::env::temp_dir().join(format!("shoprelay-demo-{}", std::process::id()));
    let settings = Settings::from_toml(&relay_toml(&erp.url(), &shop.base_url(), &dir), &[])?;
    let app = Application::build(settings, Workers::Background).await?;
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
    let transport = crate::testkit::erp::Transport {
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
