//! On a real ERPNext 15 site: its System Settings time zone goes from Asia/Kolkata back to UTC
//! (every new `modified` 5.5 hours behind the old ones) under running relays; receipts still
//! reach the shop through webhooks and through reconcile alone. Changes the site's time zone
//! (restored at the end) and installs the shipped webhooks (disabled at the end).
//!
//! `set -a; source $LAB/lab.env; set +a; flock /tmp/lab.lock cargo test --test it lab_clock:: -- --nocapture`
//! Without `ERPNEXT_URL` it says so and passes.

use crate::lab;

use std::time::{Duration, Instant};

use lab::{Lab, LabRelay};
use shoprelay::model::Modified;
use shoprelay::startup::Workers;

#[tokio::test]
async fn on_a_real_site_a_time_zone_corrected_backwards_does_not_freeze_the_shop() {
    let Some(lab) = Lab::from_env("lab_clock") else {
        return;
    };
    let original = lab.time_zone().await;
    let p = Lab::prefix("CLK");
    let (a, b, c) = (format!("{p}-A"), format!("{p}-B"), format!("{p}-C"));
    for item in [&a, &b, &c] {
        lab.item(item).await;
    }
    let wh = lab.warehouse.clone();
    // W hears the webhooks and runs no reconcile; R hears no webhook and runs reconcile alone.
    let w = LabRelay::start(
        &lab,
        Workers::Background,
        "reconcile_interval_secs = 0\nfull_reconcile_interval_secs = 0",
    )
    .await;
    w.install_webhooks().await;
    let r = LabRelay::start(&lab, Workers::Manual, "").await;
    let pass = || async {
        let report = r.relay.reconcile_pass(false, |_| {}).await.expect("pass");
        r.settle().await;
        report
    };
    let limit = Duration::from_secs(60);

    lab.set_time_zone("Asia/Kolkata").await;
    let (_, t) = lab.receipt(&wh, &[(a.clone(), 7.0)]).await;
    let a7 = w.wait_level(&a, 7, limit).await.map(|at| at - t);
    lab.receipt(&wh, &[(b.clone(), 7.0)]).await;
    let first = pass().await;
    let b7 = r.shop.level("web", &b);

    lab.set_time_zone("UTC").await;
    let (_, t) = lab.receipt(&wh, &[(a.clone(), 5.0)]).await;
    let a12 = w.wait_level(&a, 12, limit).await.map(|at| at - t);
    lab.receipt(&wh, &[(b.clone(), 5.0)]).await;
    let started = Instant::now();
    let second = pass().await;
    let second_took = started.elapsed();
    let b12 = r.shop.level("web", &b);
    lab.receipt(&wh, &[(c.clone(), 3.0)]).await;
    let third = pass().await;
    let c3 = r.shop.level("web", &c);

    lab.set_time_zone(&original).await;
    lab.disable_webhooks().await;
    w.stop().await;
    r.stop().await;

    println!("lab_clock: items {a}, {b}, {c}; time zone Asia/Kolkata, then UTC (was {original})");
    println!("  webhooks: {a} = 7 in the shop after {a7:?} from the submit; after the change, = 12 after {a12:?}");
    println!(
        "  reconcile alone: pass 1 (Asia/Kolkata) full={} rows={} watermark={:?}; {b} = {b7:?}",
        first.full,
        first.rows,
        first.watermark.as_ref().map(|m| &m.0)
    );
    println!(
        "  pass 2 (UTC) clock_went_back={} full={} rows={} site_now={:?} watermark={:?} in {second_took:?}; {b} = {b12:?}",
        second.clock_went_back,
        second.full,
        second.rows,
        second.site_now.as_ref().map(|m| &m.0),
        second.watermark.as_ref().map(|m| &m.0)
    );
    println!(
        "  pass 3 clock_went_back={} full={} rows={} from={:?}; {c} = {c3:?}",
        third.clock_went_back,
        third.full,
        third.rows,
        third.from.as_ref().map(|m| &m.0)
    );

    assert!(
        a7.is_some() && a12.is_some(),
        "webhook path: {a7:?} {a12:?}"
    );
    assert_eq!(b7, Some(7));
    assert!(second.clock_went_back && second.full, "{second:?}");
    assert_eq!(b12, Some(12));
    let (Some(wm), Some(now)) = (&second.watermark, &second.site_now) else {
        panic!("{second:?}");
    };
    assert!(
        *wm <= now.plus_secs(2).unwrap_or_else(|| Modified(now.0.clone())),
        "{second:?}"
    );
    assert!(!third.clock_went_back && !third.full, "{third:?}");
    assert_eq!(c3, Some(3));
}
