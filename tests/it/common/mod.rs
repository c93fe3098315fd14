//! Test harness: an ERPNext emulator, a recording shop and a relay between them, on loopback.
#![allow(dead_code)]

pub mod orders;
pub mod webdriver;

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use shoprelay::config::Settings;
use shoprelay::erpnext::webhooks::for_site;
use shoprelay::startup::{Application, Relay, Workers};
use shoprelay_testkit::shop::MockOptions;
use shoprelay_testkit::{relay_toml, Delivery, ErpEmulator, ShopMock, WEBHOOK_SECRET};

pub const STORES: &str = "Stores - ACME";
pub const FINISHED: &str = "Finished Goods - ACME";
pub const ELSEWHERE: &str = "Transit - ACME";

pub struct Harness {
    pub erp: ErpEmulator,
    pub shop: ShopMock,
    pub port: u16,
    pub relay: Relay,
    pub handle: ServerHandle,
    pub dir: tempfile::TempDir,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    toml: String,
}

impl Harness {
    pub async fn start(workers: Workers) -> Self {
        Self::start_with(workers, |t| t).await
    }

    /// Starts with the standard configuration, edited by `edit`.
    pub async fn start_with(workers: Workers, edit: impl FnOnce(String) -> String) -> Self {
        let erp = emulator().await;
        Self::start_on(erp, workers, edit).await
    }

    /// Starts a relay and a default shop in front of a given emulator.
    pub async fn start_on(
        erp: ErpEmulator,
        workers: Workers,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        Self::start_full(erp, MockOptions::default(), workers, edit).await
    }

    /// Starts a relay in front of a given emulator and a shop with `shop` options.
    pub async fn start_full(
        erp: ErpEmulator,
        shop: MockOptions,
        workers: Workers,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let shop = ShopMock::start_with(shop).await.expect("shop");
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = edit(relay_toml(
            &erp.url(),
            &shop.base_url(),
            &dir.path().join("data"),
        ));
        let settings = Settings::from_toml(&toml, &[]).expect("settings");
        let settings_for_tools = toml.clone();
        let app = Application::build(settings, workers).await.expect("build");
        let port = app.port();
        let relay = app.relay();
        let handle = app.handle();
        let join = tokio::spawn(app.run_until_stopped());
        erp.set_relay(&format!("http://127.0.0.1:{port}"));
        Self {
            erp,
            shop,
            port,
            relay,
            handle,
            dir,
            join,
            toml: settings_for_tools,
        }
    }

    /// A relay that signs pushes with `relay_secrets` and a shop that verifies `shop_secret`.
    pub async fn start_signed(relay_secrets: &[&str], shop_secret: &str) -> Self {
        let shop = MockOptions {
            token: shoprelay_testkit::shop::SHOP_TOKEN.into(),
            signing_secrets: vec![shop_secret.into()],
            quirk: None,
        };
        let erp = emulator().await;
        let list = serde_json::to_string(relay_secrets).expect("secrets");
        Self::start_full(erp, shop, Workers::Background, |t| {
            t.replace(
                "max_batch = 100",
                &format!("max_batch = 100\nsigning_secret = {list}"),
            )
        })
        .await
    }

    /// The relay's configuration with `server.public_url` set to where it listens.
    pub fn tool_settings_toml(&self) -> String {
        self.toml.replace(
            "[server]",
            &format!("[server]\npublic_url = \"{}\"", self.url("")),
        )
    }

    /// The relay's settings with `server.public_url` set to where it listens (for setup/check).
    pub fn tool_settings(&self) -> Settings {
        Settings::from_toml(&self.tool_settings_toml(), &[]).expect("tool settings")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Delivers and asserts that the relay accepted every one.
    pub async fn deliver(&self, ds: Vec<Delivery>) {
        for d in &ds {
            let status = self.erp.deliver(d).await.expect("deliver");
            assert_eq!(
                status,
                200,
                "delivery of {} refused: {}",
                d.webhook,
                String::from_utf8_lossy(&d.body)
            );
        }
    }

    /// Waits until the relay holds `n` dead letters.
    pub async fn wait_dead_letters(&self, n: usize) {
        wait_until(
            "dead letters",
            || self.relay.store.depths().dead == n,
            || format!("{:?}", self.relay.store.depths()),
        )
        .await;
    }

    /// Waits until the shop shows `value` for (`channel`, `sku`).
    pub async fn wait_level(&self, channel: &str, sku: &str, value: u64) {
        wait_until(
            &format!("{channel}/{sku} = {value}"),
            || self.shop.level(channel, sku) == Some(value),
            || {
                format!(
                    "{:?}; depths {:?}",
                    self.shop.levels(),
                    self.relay.store.depths()
                )
            },
        )
        .await;
    }

    /// Steps the processor and the pusher until both are idle (manual mode).
    pub async fn settle(&self) {
        settle(&self.relay).await;
    }

    /// The relay's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `GET /admin/dead-letters` with the admin token.
    pub async fn dead_letters(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.url("/admin/dead-letters"))
            .bearer_auth("admin-token-0123456789")
            .send()
            .await
            .expect("GET /admin/dead-letters")
            .json()
            .await
            .expect("dead letters JSON")
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.join.await;
        self.erp.stop().await;
        self.shop.stop().await;
    }
}

/// Delivers `ds`, settles the relay (manual mode) and returns how many Bin lists it read.
pub async fn settle_counts(h: &Harness, ds: Vec<Delivery>) -> u64 {
    let before = h.erp.list_reads("Bin");
    h.deliver(ds).await;
    h.settle().await;
    h.erp.list_reads("Bin") - before
}

/// An emulated site with the relay's shipped Webhook documents installed, signing with
/// [`WEBHOOK_SECRET`].
pub async fn emulator() -> ErpEmulator {
    let hooks = for_site(Some(ErpEmulator::SKU_FIELD)).expect("the shipped Webhook documents");
    ErpEmulator::start(WEBHOOK_SECRET, hooks)
        .await
        .expect("emulator")
}

/// Steps a relay's processor and pusher until both are idle (manual mode).
pub async fn settle(relay: &Relay) {
    for _ in 0..10_000 {
        let p = relay.processor.step().await.expect("process step");
        let q = relay.pusher.step().await.expect("push step");
        if p.is_idle() && q.is_idle() && relay.store.depths().outbox == 0 {
            return;
        }
    }
    panic!("the relay did not settle");
}

/// Waits (polling) until `cond` holds, up to 30 s; panics with `what` and `state()` otherwise.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}; state: {}", state());
}

/// Same as [`wait_until`] for an async condition.
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Expected level under actual_minus_reserved: floor(sum(actual - reserved) - buffer), >= 0.
pub fn expected(parts: &[(f64, f64)], buffer: f64) -> u64 {
    let total: f64 = parts.iter().map(|(a, r)| a - r).sum::<f64>() - buffer;
    if total > 0.0 {
        total.floor() as u64
    } else {
        0
    }
}

/// Stock for "SKU 1/A", a Sales Order with shop order id SHOP-1 for 2 of it, and a delivery note
/// for 1 (carrier DHL, LR-1) that a Shipment then tracks (UPS, 1Z1, with `tracking_url`):
/// levels and two shipment PUTs. Returns (the Sales Order, the delivery note).
pub async fn ship_and_track(h: &Harness, tracking_url: Option<&str>) -> (String, String) {
    h.deliver(h.erp.stock_move("SKU 1/A", STORES, 5.0).expect("move"))
        .await;
    let (so, ds) = h
        .erp
        .submit_sales_order("SHOP-1", &[("SKU 1/A", STORES, 2.0)])
        .expect("so");
    h.deliver(ds).await;
    let (dn, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "SKU 1/A", STORES, 1.0)], DHL_LR_1, None)
        .expect("dn");
    h.deliver(ds).await;
    let (_, ds) = h
        .erp
        .submit_shipment(&[&dn], Some("UPS"), Some("1Z1"), tracking_url)
        .expect("shipment");
    h.deliver(ds).await;
    (so, dn)
}

/// A delivery note's own transport details: carrier DHL, transport receipt LR-1.
pub const DHL_LR_1: shoprelay_testkit::erp::Transport = shoprelay_testkit::erp::Transport {
    transporter_name: Some("DHL"),
    lr_no: Some("LR-1"),
};

/// The port a spawned `shoprelay serve` listens on, from the line it prints first on stdout.
pub fn listening_port(child: &mut std::process::Child) -> u16 {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    line.trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}
