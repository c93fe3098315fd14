//! `/metrics` after a flow that moves every counter: the names of before are kept, the
//! histograms are there, and `promtool check metrics` (Debian package `prometheus`) accepts the
//! text. Skipped, saying so, where promtool is not installed (`.ci/run` installs it).

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{wait_until, Harness, STORES};
use shoprelay::startup::Workers;
use shoprelay_testkit::shop::Scripted;

fn promtool() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn the_metrics_keep_their_names_have_histograms_and_pass_promtool() {
    let h = Harness::start(Workers::Background).await;
    h.shop
        .script([Scripted::status(503), Scripted::status(422)]);
    // One webhook per receipt (its Stock Entry). The first receipt's pushes meet the 503 and
    // the 422 before the second one changes the levels again.
    h.deliver(h.erp.stock_move("GAUGE", STORES, 4.0).expect("move"))
        .await;
    wait_until(
        "the refused push",
        || h.relay.store.depths().dead == 1,
        || format!("{:?} {:?}", h.relay.store.depths(), h.shop.levels()),
    )
    .await;
    let d = h.erp.stock_move("GAUGE", STORES, 1.0).expect("move");
    h.deliver(d.clone()).await;
    h.deliver(d.clone()).await;
    let mut forged = d[0].clone();
    forged.signature = "bm90LXRoZS1zaWduYXR1cmUtb2YtdGhpcy1ib2R5ISE=".into();
    assert_eq!(h.erp.deliver(&forged).await.expect("forged"), 401);
    wait_until(
        "a dead letter and a push",
        || h.relay.store.depths().dead == 1 && h.shop.level("web", "GAUGE") == Some(5),
        || format!("{:?} {:?}", h.relay.store.depths(), h.shop.levels()),
    )
    .await;
    let text = h.metrics().await;

    for line in [
        "# TYPE shoprelay_webhooks_accepted_total counter",
        "# TYPE shoprelay_webhooks_rejected_total counter",
        "shoprelay_webhooks_rejected_total{reason=\"signature\"} 1",
        "shoprelay_webhooks_rejected_total{reason=\"too_large\"} 0",
        "shoprelay_webhooks_duplicate_total 1",
        "shoprelay_dead_letters_total 1",
        "shoprelay_push_failures_total 1",
        "shoprelay_queue_depth{queue=\"dead\"} 1",
        "# TYPE shoprelay_queue_depth gauge",
        "# TYPE shoprelay_webhook_ingest_seconds histogram",
        "# TYPE shoprelay_readback_seconds histogram",
        "# TYPE shoprelay_push_seconds histogram",
        "shoprelay_webhook_ingest_seconds_bucket{le=\"+Inf\"} 4",
        "shoprelay_push_seconds_count{kind=\"levels\"}",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    for name in [
        "shoprelay_levels_pushed_total",
        "shoprelay_shipments_pushed_total",
        "shoprelay_returns_skipped_total",
        "shoprelay_rows_without_order_total",
        "shoprelay_documents_failed_total",
        "shoprelay_items_without_sku_total",
        "shoprelay_processor_errors_total",
    ] {
        assert_eq!(
            text.matches(&format!("# HELP {name} ")).count(),
            1,
            "{name} once, with its help:\n{text}"
        );
    }

    match promtool() {
        Some(tool) => {
            let mut child = Command::new(tool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool output");
            assert!(
                out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                "promtool check metrics refused it: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None if std::env::var("SHOPRELAY_REQUIRE_PROMTOOL").as_deref() == Ok("1") => {
            panic!("promtool is not installed (Debian: apt-get install prometheus)")
        }
        None => eprintln!(
            "SKIPPED the promtool check: promtool is not installed (Debian: apt-get install prometheus)"
        ),
    }
    h.stop().await;
}
