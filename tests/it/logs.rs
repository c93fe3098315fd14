//! The log of the real binary: one JSON object per line with `SHOPRELAY_LOG_FORMAT=json`, plain
//! text without escape codes when stderr is a file, one line per webhook and per push with its
//! outcome, and not one configured secret, token, session or signature in any line of a full
//! flow (webhooks good and forged, pushes accepted and refused, the admin API and pages).

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{wait_until, STORES};
use serde_json::Value;
use shoprelay_testkit::shop::{MockOptions, Scripted, SHOP_TOKEN};
use shoprelay_testkit::{erp, relay_toml, ErpEmulator, ShopMock, WEBHOOK_SECRET};

const ADMIN_TOKEN: &str = "log-test-admin-token-0123456789-5f2a";
const SIGNING_SECRET: &str = "whsec_bG9nLXRlc3Qtc2lnbmluZy1zZWNyZXQ=";
const SHOP_WEBHOOK_SECRET: &str = "whsec_bG9nLXRlc3Qtc2hvcC13ZWJob29rLXNlY3JldA==";

fn spawn(config: &Path, log: &Path, json: bool) -> (Child, u16) {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoprelay"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "debug")
        .env_remove("SHOPRELAY_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(file);
    if json {
        cmd.env("SHOPRELAY_LOG_FORMAT", "json");
    }
    let mut child = cmd.spawn().expect("spawn shoprelay");
    let port = common::listening_port(&mut child);
    (child, port)
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(child.wait().expect("wait").success());
}

async fn relay_config(dir: &Path, erp: &ErpEmulator, shop: &ShopMock) -> std::path::PathBuf {
    let toml = relay_toml(&erp.url(), &shop.base_url(), &dir.join("data"))
        .replace("admin-token-0123456789", ADMIN_TOKEN)
        .replace(
            "max_batch = 100",
            &format!("max_batch = 100\nsigning_secret = \"{SIGNING_SECRET}\"\nwebhook_secret = \"{SHOP_WEBHOOK_SECRET}\""),
        );
    let path = dir.join("shoprelay.toml");
    std::fs::write(&path, toml).expect("config");
    path
}

#[tokio::test]
async fn a_full_flow_logs_one_json_line_per_event_and_no_secret() {
    let erp = common::emulator().await;
    let shop = ShopMock::start_with(MockOptions {
        token: SHOP_TOKEN.into(),
        signing_secrets: vec![SIGNING_SECRET.into()],
        quirk: None,
    })
    .await
    .expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = relay_config(dir.path(), &erp, &shop).await;
    let log = dir.path().join("relay.log");
    let (child, port) = spawn(&config, &log, true);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    erp.set_relay(&url(""));

    // Webhooks: accepted, a duplicate, a forged signature. A push refused for good, one accepted.
    shop.script([Scripted::status(422)]);
    let moves = erp.stock_move("LOGITEM", STORES, 5.0).expect("move");
    let mut signatures: Vec<String> = moves.iter().map(|d| d.signature.clone()).collect();
    for d in &moves {
        assert_eq!(erp.deliver(d).await.expect("deliver"), 200);
    }
    assert_eq!(erp.deliver(&moves[0]).await.expect("again"), 200);
    let mut forged = moves[0].clone();
    forged.signature = "c2hvcHJlbGF5LWZvcmdlZC1zaWduYXR1cmUtMzItYnl0ZXMhIQ==".into();
    signatures.push(forged.signature.clone());
    assert_eq!(erp.deliver(&forged).await.expect("forged"), 401);
    wait_until(
        "both channels settled",
        || shop.levels().len() == 1,
        || {
            format!(
                "{:?}\n{}",
                shop.levels(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        },
    )
    .await;

    // The admin: the API with a wrong and the right token, the pages signed in wrongly and rightly.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let wrong = http
        .get(url("/admin/status"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("api");
    assert_eq!(wrong.status().as_u16(), 401);
    let dead: Value = http
        .get(url("/admin/dead-letters"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("json");
    assert_eq!(
        dead["dead_letters"].as_array().map(Vec::len),
        Some(1),
        "{dead}"
    );
    let refused = http
        .post(url("/admin/login"))
        .form(&[("token", "not-it")])
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status().as_u16(), 401);
    let login = http
        .post(url("/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("login");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    let session = cookie.split(';').next().expect("pair").to_owned();
    let status_page = http
        .get(url("/admin/"))
        .header("Cookie", &session)
        .send()
        .await
        .expect("page");
    let html = status_page.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf")
        .to_owned();
    let no_csrf = http
        .post(url("/admin/ui/reconcile"))
        .header("Cookie", &session)
        .form(&[("full", "on")])
        .send()
        .await
        .expect("form");
    assert_eq!(no_csrf.status().as_u16(), 403);
    let retry = http
        .post(url("/admin/ui/dead-letters"))
        .header("Cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("id", "all"), ("action", "retry")])
        .send()
        .await
        .expect("retry");
    assert_eq!(retry.status().as_u16(), 303);
    wait_until(
        "the retried level",
        || shop.levels().len() == 2,
        || format!("{:?}", shop.levels()),
    )
    .await;
    stop(child);

    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |msg: &str, outcome: &str| {
        lines
            .iter()
            .filter(|l| l["message"] == msg && (outcome.is_empty() || l["outcome"] == outcome))
            .count()
    };
    assert_eq!(with("erpnext webhook", "accepted"), moves.len(), "{text}");
    assert_eq!(with("erpnext webhook", "duplicate"), 1, "{text}");
    assert_eq!(
        with("erpnext webhook refused", "invalid_signature"),
        1,
        "{text}"
    );
    assert!(with("push accepted", "") >= 2, "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shop refused a push")))
            .count(),
        1,
        "{text}"
    );

    let session_value = session.split_once('=').map(|(_, v)| v).expect("value");
    let mut secrets = vec![
        ADMIN_TOKEN,
        erp::API_KEY,
        erp::API_SECRET,
        WEBHOOK_SECRET,
        "an-old-secret",
        SHOP_TOKEN,
        SIGNING_SECRET,
        SHOP_WEBHOOK_SECRET,
        session_value,
        csrf.as_str(),
    ];
    secrets.extend(signatures.iter().map(String::as_str));
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "the log holds a secret ({secret}):\n{text}"
        );
    }
    // Nor the bearer header as a whole, nor the signatures the relay made for the shop.
    assert!(!text.contains("Bearer"), "{text}");
    for r in shop.requests() {
        if let Some(sig) = r.header("webhook-signature") {
            assert!(!text.contains(sig), "a push signature is in the log");
        }
    }
    erp.stop().await;
    shop.stop().await;
}

#[tokio::test]
async fn a_log_file_gets_plain_text_without_escape_codes() {
    let erp = common::emulator().await;
    let shop = ShopMock::start().await.expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = relay_toml(&erp.url(), &shop.base_url(), &dir.path().join("data"));
    let config = dir.path().join("shoprelay.toml");
    std::fs::write(&config, toml).expect("config");
    let log = dir.path().join("relay.log");
    let (child, port) = spawn(&config, &log, false);
    erp.set_relay(&format!("http://127.0.0.1:{port}"));
    for d in erp.stock_move("PLAIN", STORES, 2.0).expect("move") {
        assert_eq!(erp.deliver(&d).await.expect("deliver"), 200);
    }
    wait_until(
        "a push",
        || shop.level("web", "PLAIN") == Some(2),
        || format!("{:?}", shop.levels()),
    )
    .await;
    stop(child);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file:\n{text}"
    );
    assert!(
        text.contains("erpnext webhook") && text.contains("outcome=\"accepted\"")
            || text.contains("outcome=accepted"),
        "{text}"
    );
    assert!(text.contains("push accepted"), "{text}");
    erp.stop().await;
    shop.stop().await;
}
