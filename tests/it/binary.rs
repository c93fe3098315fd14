//! The real binary: killed and restarted, it loses nothing it acknowledged; and its command-line tools.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{expected, wait_until, FINISHED, STORES};
use shoprelay_testkit::{relay_toml, ErpEmulator, ShopMock};

struct Relay {
    child: Child,
    port: u16,
}

fn spawn(config: &Path, log: &Path) -> Relay {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoprelay"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn shoprelay");
    let port = common::listening_port(&mut child);
    Relay { child, port }
}

fn terminate(mut relay: Relay) {
    let status = Command::new("kill")
        .args(["-TERM", &relay.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = relay.child.wait().expect("wait");
    assert!(exit.success(), "graceful stop exits 0, got {exit:?}");
}

async fn setup() -> (ErpEmulator, ShopMock, tempfile::TempDir, std::path::PathBuf) {
    let erp = common::emulator().await;
    let shop = ShopMock::start().await.expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("shoprelay.toml");
    std::fs::write(
        &config,
        relay_toml(&erp.url(), &shop.base_url(), &dir.path().join("data")),
    )
    .expect("config");
    (erp, shop, dir, config)
}

/// Moves stock for 30 items, delivering every webhook; returns what the web channel must show.
async fn burst(erp: &ErpEmulator, relay_port: u16) -> BTreeMap<String, u64> {
    erp.set_relay(&format!("http://127.0.0.1:{relay_port}"));
    let mut want = BTreeMap::new();
    for i in 0..30u64 {
        let item = format!("K{i:02}");
        let ds = [
            erp.stock_move(&item, STORES, (i + 1) as f64).expect("move"),
            erp.stock_move(&item, FINISHED, 2.0).expect("move"),
        ]
        .concat();
        let statuses = erp.deliver_all(&ds).await.expect("deliver");
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        want.insert(item, expected(&[((i + 1) as f64, 0.0), (2.0, 0.0)], 0.0));
    }
    want
}

/// Waits until the shop's web channel holds `want`; on time-out shows the relay's log.
async fn wait_for_web(shop: &ShopMock, want: &BTreeMap<String, u64>, log: &Path, what: &str) {
    wait_until(
        what,
        || web_levels(shop) == *want,
        || {
            format!(
                "{:?}\nlog:\n{}",
                web_levels(shop),
                std::fs::read_to_string(log).unwrap_or_default()
            )
        },
    )
    .await;
}

fn web_levels(shop: &ShopMock) -> BTreeMap<String, u64> {
    shop.levels()
        .into_iter()
        .filter(|((c, _), _)| c == "web")
        .map(|((_, s), v)| (s, v))
        .collect()
}

#[tokio::test]
async fn sigkill_after_acknowledging_loses_nothing() {
    let (erp, shop, dir, config) = setup().await;
    let log = dir.path().join("relay.log");
    shop.set_down(true);
    let mut relay = spawn(&config, &log);
    let want = burst(&erp, relay.port).await;
    // Killed at once after the last 200: inbox, dirty items and outbox may all hold work.
    relay.child.kill().expect("SIGKILL");
    relay.child.wait().expect("wait");
    assert!(
        web_levels(&shop).is_empty(),
        "the shop was down the whole time"
    );
    shop.set_down(false);
    let mut relay = spawn(&config, &log);
    wait_for_web(&shop, &want, &log, "every acknowledged change in the shop").await;
    relay.child.kill().expect("kill");
    let _ = relay.child.wait();
}

#[tokio::test]
async fn a_graceful_restart_with_pushes_pending_resumes_them() {
    let (erp, shop, dir, config) = setup().await;
    let log = dir.path().join("relay.log");
    shop.set_down(true);
    let relay = spawn(&config, &log);
    let want = burst(&erp, relay.port).await;
    wait_until(
        "pushes attempted and failing",
        || shop.requests().iter().any(|r| r.status == 503),
        || format!("{}", shop.requests().len()),
    )
    .await;
    terminate(relay);
    shop.set_down(false);
    let relay = spawn(&config, &log);
    wait_until(
        "pending pushes delivered",
        || web_levels(&shop) == want,
        || format!("{:?}", web_levels(&shop)),
    )
    .await;
    terminate(relay);
}

#[tokio::test]
async fn changes_made_while_the_relay_was_down_are_repaired_when_it_starts() {
    let (erp, shop, dir, config) = setup().await;
    let log = dir.path().join("relay.log");
    let relay = spawn(&config, &log);
    let mut want = burst(&erp, relay.port).await;
    wait_until(
        "the burst in the shop",
        || web_levels(&shop) == want,
        || format!("{:?}", web_levels(&shop)),
    )
    .await;
    terminate(relay);
    // While it is down, stock moves; Frappe's deliveries fail and are dropped after 3 tries.
    for i in 0..5u64 {
        let item = format!("K{i:02}");
        let _dropped = erp.stock_move(&item, STORES, 100.0).expect("move");
        *want.get_mut(&item).expect("known item") += 100;
    }
    let relay = spawn(&config, &log);
    wait_for_web(&shop, &want, &log, "the start-up reconcile repaired them").await;
    terminate(relay);
}

#[tokio::test]
async fn shop_mock_and_shop_check_work_from_the_command_line() {
    let mut mock = Command::new(env!("CARGO_BIN_EXE_shoprelay"))
        .args([
            "shop",
            "mock",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "t0k",
            "--signing-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the mock");
    let mut line = String::new();
    BufReader::new(mock.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its address");
    let base = line
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no base_url in {line:?}"))
        .to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("shoprelay.toml");
    let toml = relay_toml("http://127.0.0.1:9", &base, &dir.path().join("data"))
        .replace("token = \"shop-token\"", "token = \"t0k\"");
    let run = |toml: &str| {
        std::fs::write(&config, toml).expect("config");
        Command::new(env!("CARGO_BIN_EXE_shoprelay"))
            .args(["shop", "check", "--config"])
            .arg(&config)
            .output()
            .expect("run shop check")
    };
    // Unsigned pushes: the mock refuses them, and the check says so and fails.
    let out = run(&toml);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "FAIL  levels: POST /inventory/levels is accepted (2xx): expected 2xx, answered 401"
        ),
        "{text}"
    );
    // Signed with the mock's secret: every rule passes, exit 0.
    let signed = toml.replace(
        "max_batch = 100",
        "max_batch = 100\nsigning_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
    );
    let out = run(&signed);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("verdict: the shop keeps the contract (11 passed, 0 skipped)"),
        "{text}"
    );
    mock.kill().expect("kill");
    let _ = mock.wait();
}

#[tokio::test]
async fn a_channel_mapping_set_through_the_admin_api_survives_a_restart() {
    let (_erp, _shop, dir, config) = setup().await;
    let log = dir.path().join("relay.log");
    let relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}/admin/channels", relay.port);
    let mapping = serde_json::json!({"channels": [{"name": "outlet", "warehouses": ["Outlet - ACME"], "policy": "actual", "buffer": 0.0}]});
    let client = reqwest::Client::new();
    let resp = client
        .put(&url)
        .bearer_auth("admin-token-0123456789")
        .json(&mapping)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    terminate(relay);
    let relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}/admin/channels", relay.port);
    let view: serde_json::Value = client
        .get(&url)
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(view["source"], "admin", "{view}");
    assert_eq!(view["channels"], mapping["channels"], "{view}");
    terminate(relay);
}

/// `GET` an admin path of the relay on `port`, as JSON.
async fn admin_get(port: u16, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("admin GET")
        .json()
        .await
        .expect("admin JSON")
}

/// The outbox row of the `web` levels, if one is waiting.
async fn web_outbox(port: u16) -> Option<serde_json::Value> {
    admin_get(port, "/admin/outbox").await["outbox"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["kind"] == "levels" && r["channel"] == "web")
                .cloned()
        })
}

fn web_requests(shop: &ShopMock) -> usize {
    shop.requests()
        .iter()
        .filter(|r| r.path.ends_with("/inventory/levels") && r.json()["channel"] == "web")
        .count()
}

#[tokio::test]
async fn the_retry_schedule_survives_a_restart_mid_backoff_and_ends_in_a_dead_letter() {
    let (erp, shop, dir, config) = setup().await;
    let log = dir.path().join("relay.log");
    // Three attempts: at once, 0.3 s later, 3 s after that; then a dead letter.
    let toml = std::fs::read_to_string(&config).expect("config");
    let (start, end) = (
        toml.find("retry_schedule_secs").expect("schedule key"),
        toml.find("[[channels]]").expect("channels"),
    );
    let toml = format!(
        "{}retry_schedule_secs = [0, 0.3, 3]\n\n{}",
        &toml[..start],
        &toml[end..]
    );
    std::fs::write(&config, toml).expect("config");
    shop.set_down(true);
    let mut relay = spawn(&config, &log);
    erp.set_relay(&format!("http://127.0.0.1:{}", relay.port));
    let statuses = erp
        .deliver_all(&erp.stock_move("RETRY-1", STORES, 5.0).expect("move"))
        .await
        .expect("deliver");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Two attempts failed; the relay waits 3 s for the third. Its state is on disk once
    // /readyz (a probe that flushes every earlier write) has answered.
    let port = relay.port;
    common::wait_until_async("two failed attempts recorded", || async move {
        web_outbox(port)
            .await
            .is_some_and(|row| row["attempts"] == 2)
    })
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    relay.child.kill().expect("SIGKILL");
    relay.child.wait().expect("wait");

    let mut relay = spawn(&config, &log);
    let port = relay.port;
    // The restarted relay resumes the schedule where it was: attempt 3, then a dead letter.
    let row = web_outbox(port).await;
    if let Some(row) = &row {
        assert_eq!(
            row["attempts"], 2,
            "the attempts survived the restart: {row}"
        );
        assert!(row["next_attempt_ms"].as_u64().is_some(), "{row}");
        assert!(
            row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("503")),
            "{row}"
        );
    }
    common::wait_until_async("the web levels dead-lettered", || async move {
        admin_get(port, "/admin/dead-letters").await["dead_letters"]
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|d| d["kind"] == "levels" && d["channel"] == "web")
            })
    })
    .await;
    let letters = admin_get(port, "/admin/dead-letters").await;
    let letter = letters["dead_letters"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["channel"] == "web"))
        .cloned()
        .expect("the letter");
    assert_eq!(letter["status"], 503);
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["levels"], serde_json::json!([["RETRY-1", 5]]));
    assert_eq!(
        web_requests(&shop),
        3,
        "three attempts in all, across the restart, and none after the schedule ended"
    );
    assert!(
        web_outbox(port).await.is_none(),
        "nothing stale left to send"
    );
    relay.child.kill().expect("kill");
    let _ = relay.child.wait();
}

/// Killed (SIGKILL) after ERPNext created the Sales Order but before the relay heard back, the
/// relay places the order again when it restarts, finds that Sales Order by the shop order id,
/// and records it: exactly one Sales Order.
#[tokio::test]
async fn sigkill_between_the_sales_order_create_and_its_record_gives_one_sales_order() {
    use common::orders::{
        admin_order, post_order, sales_orders_of, with_orders, HoldingProxy, CHAIR,
    };
    let erp = common::emulator().await;
    erp.save_item(CHAIR, &[]).expect("item");
    erp.stock_move(CHAIR, STORES, 10.0).expect("stock");
    let shop = ShopMock::start().await.expect("shop");
    let proxy = HoldingProxy::start(&erp.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("shoprelay.toml");
    let toml = relay_toml(&proxy.url, &shop.base_url(), &dir.path().join("data"));
    std::fs::write(&config, with_orders(toml)).expect("config");
    let log = dir.path().join("relay.log");
    let mut relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}", relay.port);
    let (status, answer) = post_order(
        &url,
        "msg_crash",
        &common::orders::order("CRASH-1", "crash@example.com"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let held = proxy.held.clone();
    wait_until(
        "ERPNext to create the Sales Order (its answer held back)",
        || held.load(std::sync::atomic::Ordering::SeqCst),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )
    .await;
    relay.child.kill().expect("SIGKILL");
    relay.child.wait().expect("wait");
    assert_eq!(
        sales_orders_of(&erp.url(), "CRASH-1").await.len(),
        1,
        "made before the kill"
    );
    proxy.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}", relay.port);
    common::wait_until_async("the order recorded after the restart", || async {
        admin_order(&url, "CRASH-1").await["status"] == "created"
    })
    .await;
    let found = sales_orders_of(&erp.url(), "CRASH-1").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        admin_order(&url, "CRASH-1").await["sales_order"],
        found[0]["name"]
    );
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("shoprelay_orders_total{outcome=\"existing\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shoprelay_orders_total{outcome=\"created\"} 0\n"),
        "{metrics}"
    );
    relay.child.kill().expect("kill");
    let _ = relay.child.wait();
    proxy.handle.stop(false).await;
}

#[tokio::test]
async fn sigkill_between_the_invoice_create_and_its_record_gives_one_invoice_and_one_payment() {
    use common::orders::{admin_order, order, post_order, HoldingProxy, CHAIR};
    let erp = common::emulator().await;
    erp.save_item(CHAIR, &[]).expect("item");
    erp.stock_move(CHAIR, STORES, 10.0).expect("stock");
    let shop = ShopMock::start().await.expect("shop");
    let proxy = HoldingProxy::holding(&erp.url(), "Sales%20Invoice");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("shoprelay.toml");
    let toml = relay_toml(&proxy.url, &shop.base_url(), &dir.path().join("data"));
    std::fs::write(&config, crate::orders_books::with_books(toml)).expect("config");
    let log = dir.path().join("relay.log");
    let mut relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}", relay.port);
    let mut paid = order("CRASH-SI", "crash-si@example.com");
    paid["updated_at"] = serde_json::json!("2026-11-26T09:13:00Z");
    paid["payments"] = serde_json::json!([{"id": "pay_crash", "method": "card", "amount": 44.7}]);
    let (status, answer) = post_order(&url, "msg_crash_si", &paid).await;
    assert_eq!(status, 202, "{answer}");
    let held = proxy.held.clone();
    wait_until(
        "ERPNext to create the Sales Invoice (its answer held back)",
        || held.load(std::sync::atomic::Ordering::SeqCst),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )
    .await;
    relay.child.kill().expect("SIGKILL");
    relay.child.wait().expect("wait");
    let submitted = |doctype: &str| {
        erp.docs_of(doctype)
            .into_iter()
            .filter(|d| d["docstatus"].as_i64() == Some(1))
            .count()
    };
    assert_eq!(submitted("Sales Invoice"), 1, "made before the kill");
    assert_eq!(submitted("Payment Entry"), 0);
    proxy.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut relay = spawn(&config, &log);
    let url = format!("http://127.0.0.1:{}", relay.port);
    common::wait_until_async("the books settled after the restart", || async {
        let view = admin_order(&url, "CRASH-SI").await;
        view["status"] == "created" && view["owed"].is_null() && view["invoice"].is_string()
    })
    .await;
    assert_eq!(submitted("Sales Invoice"), 1, "exactly one invoice");
    assert_eq!(submitted("Payment Entry"), 1, "exactly one payment");
    let view = admin_order(&url, "CRASH-SI").await;
    let si = erp
        .docs_of("Sales Invoice")
        .into_iter()
        .find(|d| d["docstatus"].as_i64() == Some(1))
        .expect("invoice");
    assert_eq!(view["invoice"], si["name"]);
    assert_eq!(si["status"], "Paid");
    relay.child.kill().expect("kill");
    let _ = relay.child.wait();
    proxy.handle.stop(false).await;
}
