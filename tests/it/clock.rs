//! The site's clock goes back under a running relay (its System Settings time zone corrected
//! from Asia/Kolkata to UTC, 5.5 hours back): the shop still follows ERPNext, through webhooks
//! and through reconcile alone, and a scheduled full pass repairs what nothing else saw.

use crate::common;

use common::{Harness, STORES};
use shoprelay::model::Modified;
use shoprelay::startup::Workers;

async fn pass(h: &Harness) -> shoprelay::erpnext::reconcile::PassReport {
    let r = h
        .relay
        .reconcile_pass(false, |_| {})
        .await
        .expect("reconcile pass");
    h.settle().await;
    r
}

#[tokio::test]
async fn after_the_time_zone_goes_back_a_webhook_still_brings_the_new_level() {
    let h = Harness::start(Workers::Background).await;
    assert!(h.erp.set_time_zone("Asia/Kolkata"));
    h.deliver(h.erp.stock_move("CHAIR", STORES, 7.0).expect("move"))
        .await;
    h.wait_level("web", "CHAIR", 7).await;
    let wrong = h.erp.bin("CHAIR", STORES).expect("bin")["modified"].clone();

    assert!(h.erp.set_time_zone("UTC"));
    h.deliver(h.erp.stock_move("CHAIR", STORES, 5.0).expect("move"))
        .await;
    let now = h.erp.bin("CHAIR", STORES).expect("bin")["modified"].clone();
    assert!(
        Modified(now.as_str().expect("text").into())
            < Modified(wrong.as_str().expect("text").into()),
        "the new stamp {now} lies behind the old {wrong}"
    );
    // Read back with an older `modified` than the stored row: still the truth.
    h.wait_level("web", "CHAIR", 12).await;
    h.stop().await;
}

#[tokio::test]
async fn after_the_time_zone_goes_back_reconcile_alone_starts_over_and_rows_from_the_wrong_hours_do_not_lift_the_watermark(
) {
    let h = Harness::start(Workers::Manual).await;
    assert!(h.erp.set_time_zone("Asia/Kolkata"));
    // No webhook reaches the relay in this test: reconcile alone.
    let _lost = h.erp.stock_move("CHAIR", STORES, 7.0).expect("move");
    let _lost = h.erp.stock_move("LAMP", STORES, 2.0).expect("move");
    let first = pass(&h).await;
    assert!(first.full);
    assert_eq!(h.shop.level("web", "CHAIR"), Some(7));
    let wrong_watermark = first.watermark.clone().expect("watermark");

    assert!(h.erp.set_time_zone("UTC"));
    h.erp.advance_clock(60);
    let _lost = h.erp.stock_move("CHAIR", STORES, 5.0).expect("move");
    let second = pass(&h).await;
    assert!(second.clock_went_back, "{second:?}");
    assert!(second.full, "{second:?}");
    assert_eq!(h.shop.level("web", "CHAIR"), Some(12));
    // LAMP is still stamped in the Kolkata hours, ahead of the site's clock: it must not lift the
    // watermark back up, or the next receipt would be missed again.
    let site_now = Modified(h.erp.site_time());
    let watermark = second.watermark.clone().expect("watermark");
    assert!(watermark <= site_now, "{watermark:?} > {site_now:?}");
    assert!(watermark < wrong_watermark);

    h.erp.advance_clock(60);
    let _lost = h.erp.stock_move("DESK", STORES, 3.0).expect("move");
    let third = pass(&h).await;
    assert!(
        !third.clock_went_back && !third.full,
        "an ordinary pass follows: {third:?}"
    );
    assert_eq!(h.shop.level("web", "DESK"), Some(3));
    assert_eq!(h.shop.level("web", "LAMP"), Some(2));
    h.stop().await;
}

#[tokio::test]
async fn the_scheduled_full_pass_repairs_an_old_silent_change_and_pushes_only_what_differs() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace(
            "page_size = 20",
            "page_size = 20\nfull_reconcile_interval_secs = 1",
        )
    })
    .await;
    for (item, qty) in [("A", 4.0), ("B", 5.0), ("C", 6.0)] {
        h.deliver(h.erp.stock_move(item, STORES, qty).expect("move"))
            .await;
    }
    for (item, qty) in [("A", 4), ("B", 5), ("C", 6)] {
        h.wait_level("web", item, qty).await;
    }
    let before = h.shop.requests().len();
    // A restored backup or a repost: B changes with a stamp an hour old, far outside the
    // overlap of an ordinary pass, and no webhook fires.
    h.erp.import_bin("B", STORES, 9.0, "2026-11-26 09:00:00");
    h.wait_level("web", "B", 9).await;
    let pushed: Vec<String> = h.shop.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/erp/inventory/levels")
        .flat_map(|r| {
            r.json()["levels"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|l| l["sku"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert!(
        !pushed.is_empty() && pushed.iter().all(|s| s == "B"),
        "{pushed:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_time_zone_corrected_long_before_the_next_pass_is_noticed_by_its_offset() {
    let h = Harness::start(Workers::Manual).await;
    assert!(h.erp.set_time_zone("Asia/Kolkata"));
    let _lost = h.erp.stock_move("CHAIR", STORES, 7.0).expect("move");
    pass(&h).await;
    assert!(h.erp.set_time_zone("UTC"));
    // Stamped 5.5 hours behind the watermark, then the relay makes no pass for 6 hours: by the
    // next pass the site's clock is past the watermark again, but that receipt lies far below.
    let _lost = h.erp.stock_move("CHAIR", STORES, 5.0).expect("move");
    h.erp.advance_clock(6 * 3600);
    let next = pass(&h).await;
    assert!(next.clock_went_back && next.full, "{next:?}");
    assert_eq!(h.shop.level("web", "CHAIR"), Some(12));
    let after = pass(&h).await;
    assert!(!after.clock_went_back && !after.full, "{after:?}");
    h.stop().await;
}
