//! `shoprelay erpnext setup` and `check` against the ERPNext emulator.

mod common;

use common::{Harness, STORES};
use serde_json::{json, Value};
use shoprelay::cli::{erpnext_check, erpnext_setup};
use shoprelay::erpnext::webhooks::shipped;
use shoprelay::startup::Workers;
use shoprelay::testkit::erp::{API_KEY, API_SECRET};
use shoprelay::testkit::ErpEmulator;

async fn bare() -> Harness {
    Harness::start_on(
        ErpEmulator::start_bare().await.expect("emulator"),
        Workers::Background,
        |t| t,
    )
    .await
}

async fn setup(h: &Harness, dry_run: bool) -> (Result<usize, String>, String) {
    let mut out = Vec::new();
    let r = erpnext_setup(&h.tool_settings(), dry_run, false, &mut out)
        .await
        .map_err(|e| e.to_string());
    (r, String::from_utf8_lossy(&out).into_owned())
}

/// Changes a Webhook on the site over REST, as an admin would in the form.
async fn edit_webhook(h: &Harness, name: &str, changes: Value) {
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/api/resource/Webhook/{}",
            h.erp.url(),
            name.replace(' ', "%20")
        ))
        .header("Authorization", format!("token {API_KEY}:{API_SECRET}"))
        .json(&changes)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
}

async fn create_webhook(h: &Harness, doc: Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/resource/Webhook", h.erp.url()))
        .header("Authorization", format!("token {API_KEY}:{API_SECRET}"))
        .json(&doc)
        .send()
        .await
        .expect("post");
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn setup_on_an_empty_site_installs_every_webhook_and_they_deliver_to_the_relay() {
    let h = bare().await;
    let (dry, text) = setup(&h, true).await;
    assert_eq!(dry, Ok(0));
    assert!(
        text.contains("dry run: 12 change(s) planned, nothing changed"),
        "{text}"
    );
    assert!(h.erp.webhooks().is_empty(), "a dry run changes nothing");

    let (r, text) = setup(&h, false).await;
    assert_eq!(r, Ok(shipped().expect("shipped").len()), "{text}");
    assert!(
        text.contains("create    shoprelay Bin after_insert"),
        "{text}"
    );
    for (doc, secret) in h.erp.webhooks() {
        assert_eq!(
            secret.as_deref(),
            Some("an-old-secret"),
            "the first configured secret is installed"
        );
        assert_eq!(
            doc["request_url"],
            format!("{}/webhooks/erpnext", h.url(""))
        );
        assert_eq!(doc["enable_security"], 1);
        assert_eq!(doc["webhook_secret"], "*****", "ERPNext shows asterisks");
    }
    // The site now fires at the relay, signed with the installed secret.
    h.deliver(h.erp.stock_move("LAMP", STORES, 4.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 4).await;

    // A second run changes nothing and says so.
    let (r, text) = setup(&h, false).await;
    assert_eq!(r, Ok(0));
    assert!(text.contains("nothing to change"), "{text}");
    assert!(
        text.lines().filter(|l| l.contains("unchanged")).count() == 12,
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_changed_template_is_updated_in_place_and_old_shoprelay_webhooks_are_disabled() {
    let h = bare().await;
    setup(&h, false).await.0.expect("first setup");
    edit_webhook(
        &h,
        "shoprelay Bin on_change",
        json!({"webhook_json": "{\"old\": 1}", "request_url": "http://old-relay/webhooks/erpnext"}),
    )
    .await;
    let base = json!({"webhook_doctype": "Item", "webhook_docevent": "on_update", "enabled": 1, "request_url": "http://x/y",
                      "request_method": "POST", "request_structure": "JSON", "webhook_json": "{}", "enable_security": 0});
    let mut retired = base.clone();
    retired["name"] = json!("shoprelay Item on_trash");
    create_webhook(&h, retired).await;
    let mut foreign = base;
    foreign["name"] = json!("Slack: new items");
    create_webhook(&h, foreign).await;

    let (r, text) = setup(&h, false).await;
    assert_eq!(r, Ok(2), "{text}");
    assert!(
        text.contains("update    shoprelay Bin on_change (request_url, webhook_json)"),
        "{text}"
    );
    assert!(text.contains("disable   shoprelay Item on_trash"), "{text}");
    let hooks = h.erp.webhooks();
    let get = |n: &str| {
        hooks
            .iter()
            .find(|(d, _)| d["name"] == n)
            .map(|(d, s)| (d.clone(), s.clone()))
            .expect(n)
    };
    let (fixed, secret) = get("shoprelay Bin on_change");
    assert_eq!(
        fixed["request_url"],
        format!("{}/webhooks/erpnext", h.url(""))
    );
    assert_eq!(
        secret.as_deref(),
        Some("an-old-secret"),
        "the secret was not touched"
    );
    assert_eq!(get("shoprelay Item on_trash").0["enabled"], 0);
    assert_eq!(
        get("Slack: new items").0["enabled"],
        1,
        "never touch another's webhook"
    );
    assert_eq!(get("Slack: new items").0["request_url"], "http://x/y");
    h.stop().await;
}

#[tokio::test]
async fn a_user_without_permission_gets_erpnexts_refusal_in_plain_words() {
    let h = bare().await;
    h.erp.deny_webhook_writes(true);
    let (r, _) = setup(&h, false).await;
    let err = r.expect_err("403");
    assert!(
        err.contains("403") && err.contains("Insufficient Permission"),
        "{err}"
    );
    assert!(!err.contains(API_SECRET), "no secret in errors");
    h.stop().await;
}

#[tokio::test]
async fn check_passes_on_a_wired_site_and_names_each_problem_on_a_broken_one() {
    let h = bare().await;
    setup(&h, false).await.0.expect("setup");
    let mut out = Vec::new();
    assert!(
        erpnext_check(&h.tool_settings(), &mut out)
            .await
            .expect("check"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(String::from_utf8_lossy(&out).contains("verdict: OK"));

    edit_webhook(&h, "shoprelay Sales Order on_submit", json!({"enabled": 0})).await;
    edit_webhook(
        &h,
        "shoprelay Delivery Note on_submit",
        json!({"request_url": "http://elsewhere/webhooks/erpnext"}),
    )
    .await;
    // A delivery the relay refuses (signed with a secret it does not know) lands in the log.
    edit_webhook(
        &h,
        "shoprelay Stock Ledger Entry after_insert",
        json!({"webhook_secret": "rotated-wrongly"}),
    )
    .await;
    let ds = h.erp.stock_move("CHAIR", STORES, 1.0).expect("move");
    let statuses = h.erp.deliver_all(&ds).await.expect("deliver");
    assert!(statuses.contains(&401));

    let mut out = Vec::new();
    assert!(!erpnext_check(&h.tool_settings(), &mut out)
        .await
        .expect("check"));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("FAIL shoprelay Sales Order on_submit: disabled"),
        "{text}"
    );
    assert!(text.contains("FAIL shoprelay Delivery Note on_submit: points at \"http://elsewhere/webhooks/erpnext\""), "{text}");
    assert!(
        text.contains("failed delivery")
            && text.contains("shoprelay Stock Ledger Entry after_insert")
            && text.contains("401"),
        "{text}"
    );
    // Disabled, pointing elsewhere, one failed delivery.
    assert!(text.contains("verdict: 3 problem(s) found"), "{text}");

    // Wrong credentials: one clear line.
    let bad = shoprelay::config::Settings::from_toml(
        &h.tool_settings_toml().replace(API_SECRET, "wrong"),
        &[],
    )
    .expect("settings");
    let mut out = Vec::new();
    assert!(!erpnext_check(&bad, &mut out).await.expect("check"));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("FAIL credentials: ERPNext answered 401"),
        "{text}"
    );
    assert!(!text.contains("wrong"), "no secret in output: {text}");
    h.stop().await;
}
