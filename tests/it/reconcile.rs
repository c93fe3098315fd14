//! Reconcile repairs what webhooks missed; group warehouses and a custom SKU field.

use crate::common;

use common::{wait_until, Harness, FINISHED, STORES};
use serde_json::json;
use shoprelay::config::Settings;
use shoprelay::startup::Workers;

async fn pass(h: &Harness, full: bool) -> shoprelay::erpnext::reconcile::PassReport {
    let r = h
        .relay
        .reconcile_pass(full, |_| {})
        .await
        .expect("reconcile pass");
    h.settle().await;
    r
}

#[tokio::test]
async fn a_missed_webhook_and_a_data_import_are_repaired_and_unchanged_levels_push_nothing() {
    let h = Harness::start(Workers::Manual).await;
    // Deliveries Frappe dropped after its 3 tries: nothing reached the relay.
    let _lost = h.erp.stock_move("CHAIR", STORES, 7.0).expect("move");
    let _lost = h.erp.stock_move("DESK", FINISHED, 2.0).expect("move");
    let first = pass(&h, false).await;
    assert_eq!(
        first.from, None,
        "no watermark yet: the first pass reads everything"
    );
    assert_eq!(
        (h.shop.level("web", "CHAIR"), h.shop.level("web", "DESK")),
        (Some(7), Some(2))
    );
    let sent = h.shop.requests().len();
    // Nothing changed: a second pass pushes nothing.
    let second = pass(&h, false).await;
    assert!(second.from.is_some());
    assert_eq!(h.shop.requests().len(), sent);
    // A Data Import writes Bins and fires no webhook.
    h.erp
        .import_bin("CHAIR", STORES, 30.0, "2026-11-26 23:00:00");
    pass(&h, false).await;
    assert_eq!(h.shop.level("web", "CHAIR"), Some(30));
    assert_eq!(h.shop.level("marketplace", "CHAIR"), Some(28));
    h.stop().await;
}

#[tokio::test]
async fn paging_reads_every_bin_across_runs_of_equal_timestamps() {
    // Page size 20 (the test configuration); 45 Bins share one timestamp, more than two pages,
    // and groups of 7 equal timestamps straddle the other page edges.
    let h = Harness::start(Workers::Manual).await;
    for i in 0..95u32 {
        let modified = if (20..65).contains(&i) {
            "2026-11-26 12:00:00.500000".to_owned()
        } else {
            format!("2026-11-26 11:{:02}:00", i / 7)
        };
        h.erp
            .import_bin(&format!("P{i:03}"), STORES, f64::from(i + 1), &modified);
    }
    let report = pass(&h, false).await;
    assert_eq!(report.rows, 95, "{report:?}");
    let status: serde_json::Value = reqwest::Client::new()
        .get(h.url("/admin/status"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(
        status["reconcile_watermark"], "2026-11-26 12:00:00.500000",
        "{status}"
    );
    assert_eq!(
        status["channels_resolved"][0]["warehouses"],
        json!([FINISHED, STORES]),
        "{status}"
    );
    assert_eq!(status["queues"]["outbox"], 0, "{status}");
    assert_eq!(report.pages, 5);
    assert_eq!(
        report.watermark.map(|w| w.0),
        Some("2026-11-26 12:00:00.500000".to_owned())
    );
    for i in 0..95u32 {
        assert_eq!(
            h.shop.level("web", &format!("P{i:03}")),
            Some(u64::from(i + 1)),
            "P{i:03}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn late_commits_inside_the_overlap_are_caught_and_a_full_pass_catches_the_rest() {
    let h = Harness::start(Workers::Manual).await;
    h.erp.import_bin("A", STORES, 1.0, "2026-11-26 12:00:00");
    pass(&h, false).await;
    // Rows that commit late carry a `modified` older than the watermark.
    h.erp.import_bin("B", STORES, 2.0, "2026-11-26 11:58:00"); // 2 minutes: inside the 300 s overlap
    h.erp.import_bin("C", STORES, 3.0, "2026-11-26 11:00:00"); // an hour: outside
    pass(&h, false).await;
    assert_eq!(h.shop.level("web", "B"), Some(2));
    assert_eq!(h.shop.level("web", "C"), None);
    let full = pass(&h, true).await;
    assert_eq!(full.from, None);
    assert_eq!(h.shop.level("web", "C"), Some(3));
    h.stop().await;
}

#[tokio::test]
async fn a_channel_may_name_a_group_warehouse() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace(
            "warehouses = [\"Stores - ACME\", \"Finished Goods - ACME\"]",
            "warehouses = [\"All Stores - ACME\"]",
        )
    })
    .await;
    h.erp.add_warehouse("All Stores - ACME", None, true);
    h.erp
        .add_warehouse(STORES, Some("All Stores - ACME"), false);
    h.erp
        .add_warehouse("Shelf - ACME", Some("All Stores - ACME"), true);
    h.erp.add_warehouse(FINISHED, Some("Shelf - ACME"), false);
    h.relay
        .processor
        .refresh_channel_map()
        .await
        .expect("warehouse tree");
    h.deliver(h.erp.stock_move("LAMP", STORES, 3.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("LAMP", FINISHED, 4.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 7).await;
    h.stop().await;
}

#[tokio::test]
async fn an_api_user_who_may_not_read_warehouses_still_gets_stock_through() {
    let h = Harness::start(Workers::Background).await;
    h.erp.deny_reads("Warehouse", true);
    h.deliver(h.erp.stock_move("RUG", STORES, 4.0).expect("move"))
        .await;
    wait_until(
        "RUG",
        || h.shop.level("web", "RUG") == Some(4),
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_custom_sku_field_names_the_shop_sku_and_items_without_one_are_skipped() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace("page_size = 20", "page_size = 20\nsku_field = \"shop_sku\"")
    })
    .await;
    h.deliver(
        h.erp
            .save_item("CHAIR", &[("shop_sku", json!("CH-001"))])
            .expect("item"),
    )
    .await;
    h.deliver(h.erp.save_item("TABLE", &[]).expect("item"))
        .await;
    h.deliver(h.erp.stock_move("CHAIR", STORES, 5.0).expect("move"))
        .await;
    h.deliver(h.erp.stock_move("TABLE", STORES, 2.0).expect("move"))
        .await;
    h.wait_level("web", "CH-001", 5).await;
    wait_until(
        "TABLE counted",
        || h.relay.store.depths().dirty == 0 && h.relay.store.depths().inbox == 0,
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    assert!(
        h.shop
            .levels()
            .keys()
            .all(|(_, sku)| sku != "TABLE" && sku != "CHAIR"),
        "{:?}",
        h.shop.levels()
    );
    let metrics = h.metrics().await;
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shoprelay_items_without_sku_total "))
        .and_then(|v| v.parse().ok())
        .expect("the counter");
    assert!(skipped >= 1, "{metrics}");
    // The item gets a SKU later: its Item on_update webhook makes the relay re-price it.
    h.deliver(
        h.erp
            .save_item("TABLE", &[("shop_sku", json!("TB-9"))])
            .expect("item"),
    )
    .await;
    h.wait_level("web", "TB-9", 2).await;
    h.stop().await;
}

#[tokio::test]
async fn the_command_line_pass_shows_progress_and_a_summary_and_the_admin_api_triggers_one() {
    let h = Harness::start(Workers::Background).await;
    for i in 0..45 {
        h.erp.import_bin(
            &format!("Q{i}"),
            STORES,
            1.0,
            &format!("2026-11-26 12:00:{i:02}"),
        );
    }
    // The running relay holds its data directory: the tool says how to ask it instead.
    let mut out = Vec::new();
    let err = shoprelay::cli::reconcile(&h.tool_settings(), true, &mut out, &mut Vec::new())
        .await
        .expect_err("locked");
    assert!(err.to_string().contains("POST /admin/reconcile"), "{err}");
    let resp = reqwest::Client::new()
        .post(h.url("/admin/reconcile?full=true"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 202);
    wait_until(
        "Q44 pushed by the relay's own pass",
        || h.shop.level("web", "Q44") == Some(1),
        || format!("{}", h.shop.levels().len()),
    )
    .await;

    // The tool on a data directory of its own (the relay stopped, say).
    let other = tempfile::tempdir().expect("tempdir");
    let toml = h.tool_settings_toml().replace(
        &h.dir.path().join("data").display().to_string(),
        &other.path().display().to_string(),
    );
    let settings = Settings::from_toml(&toml, &[]).expect("settings");
    let (mut out, mut bar) = (Vec::new(), Vec::new());
    let summary = shoprelay::cli::reconcile(&settings, true, &mut out, &mut bar)
        .await
        .expect("reconcile");
    let (out, bar) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&bar));
    assert_eq!(summary.rows, 45);
    assert!(
        bar.contains("[####################] 100%  45/45 Bins"),
        "{bar}"
    );
    assert!(
        out.contains("reconcile (full): 45 Bins in 3 page(s)"),
        "{out}"
    );
    assert_eq!(summary.levels_waiting, 0);
    h.stop().await;
}
