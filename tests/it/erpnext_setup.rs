//! `shoprelay erpnext setup` and `check` against the ERPNext emulator.

use crate::common;

use common::{Harness, STORES};
use serde_json::{json, Value};
use shoprelay::cli::{erpnext_check, erpnext_setup};
use shoprelay::erpnext::webhooks::for_site;
use shoprelay::startup::Workers;
use shoprelay_testkit::erp::{API_KEY, API_SECRET};
use shoprelay_testkit::ErpEmulator;

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
    // No erpnext.sku_field: every shipped webhook but the Item one.
    let wanted = for_site(None).expect("shipped").len();
    let (dry, text) = setup(&h, true).await;
    assert_eq!(dry, Ok(0));
    assert!(
        text.contains(&format!(
            "dry run: {wanted} change(s) planned, nothing changed"
        )),
        "{text}"
    );
    assert!(h.erp.webhooks().is_empty(), "a dry run changes nothing");

    let (r, text) = setup(&h, false).await;
    assert_eq!(r, Ok(wanted), "{text}");
    assert!(
        text.contains("create    shoprelay Stock Entry on_submit"),
        "{text}"
    );
    assert!(!text.contains("Item"), "{text}");
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
        text.lines().filter(|l| l.contains("unchanged")).count() == wanted,
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
        "shoprelay Stock Entry on_submit",
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
            && text.contains("shoprelay Stock Entry on_submit")
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

#[tokio::test]
async fn item_saves_queue_a_job_only_when_a_sku_field_is_configured_and_set_or_changed() {
    // No sku_field: no Item webhook at all, and one left from an older setup is disabled.
    let h = bare().await;
    setup(&h, false).await.0.expect("setup");
    let old = for_site(Some("shop_sku"))
        .expect("shipped")
        .into_iter()
        .find(|w| w.webhook_doctype == "Item")
        .expect("the Item webhook");
    let mut doc = serde_json::to_value(&old).expect("doc");
    doc["condition"] = json!("");
    doc["webhook_secret"] = json!("an-old-secret");
    create_webhook(&h, doc).await;
    let (_, text) = setup(&h, false).await;
    assert!(
        text.contains("disable   shoprelay Item on_update"),
        "{text}"
    );
    let mut jobs = 0;
    for i in 0..100 {
        jobs += h
            .erp
            .save_item(&format!("NEW-{i:03}"), &[])
            .expect("item")
            .len();
    }
    assert_eq!(jobs, 0, "100 new items, no sku_field: no job");
    h.stop().await;

    // With sku_field: only saves that set or change it.
    let h = Harness::start_on(
        ErpEmulator::start_bare().await.expect("emulator"),
        Workers::Background,
        |t| t.replace("page_size = 20", "page_size = 20\nsku_field = \"shop_sku\""),
    )
    .await;
    setup(&h, false).await.0.expect("setup");
    let (item_hook, _) = h
        .erp
        .webhooks()
        .into_iter()
        .find(|(d, _)| d["webhook_doctype"] == "Item")
        .expect("installed");
    assert!(
        item_hook["condition"]
            .as_str()
            .is_some_and(|c| c.contains("has_value_changed(\"shop_sku\")")),
        "{item_hook}"
    );
    let mut jobs = 0;
    for i in 0..100 {
        let fields: Vec<(&str, Value)> = if i % 10 == 0 {
            vec![("shop_sku", json!(format!("S-{i}")))]
        } else {
            Vec::new()
        };
        jobs += h
            .erp
            .save_item(&format!("NEW-{i:03}"), &fields)
            .expect("item")
            .len();
    }
    assert_eq!(jobs, 10, "only the 10 items created with a SKU");
    let unchanged = h
        .erp
        .save_item("NEW-000", &[("description", json!("new text"))])
        .expect("item");
    assert!(unchanged.is_empty(), "an edit that leaves the SKU alone");
    let changed = h
        .erp
        .save_item("NEW-000", &[("shop_sku", json!("S-0b"))])
        .expect("item");
    assert_eq!(changed.len(), 1);
    let set_later = h
        .erp
        .save_item("NEW-001", &[("shop_sku", json!("S-1"))])
        .expect("item");
    assert_eq!(set_later.len(), 1);
    h.deliver(changed).await;
    h.stop().await;
}
