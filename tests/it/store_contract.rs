//! The store contract: what every backend must do, written against the role traits only
//! (`Inbox`, `DirtyWork`, `ReadBack`, `Outbox`, `DeadLetters`, `Meta`, `Durability`), called
//! through the `Store` handle over `dyn Backend`. Each check runs against every backend in
//! `backends()`: today sled; a backend on a database server adds itself there and must pass the
//! same suite.

use std::future::Future;
use std::path::Path;

use shoprelay::model::{BinRow, DocKind, Level, Modified, ShipmentOp, Tracking};
use shoprelay::store::{
    DeadTarget, FieldCache, Ingested, OutboxKind, RetryState, Store, StoreError, Target,
};

/// Opens a backend on `dir` (the same `dir` again: the same data, as after a restart).
type Open = fn(&Path, u64) -> Result<Store, StoreError>;

fn backends() -> Vec<(&'static str, Open)> {
    vec![("sled", Store::open)]
}

/// Runs `check` against a fresh store of every backend.
async fn each_backend<F, Fut>(dedup_window_secs: u64, check: F)
where
    F: Fn(Store, Open, std::path::PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    for (name, open) in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        let store = open(&path, dedup_window_secs).expect("open");
        check(store, open, path).await;
    }
}

/// Opens the store at `path` again once the closed one has let go of it (a backend may release
/// its files from a background task).
async fn reopen(open: Open, path: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open(path, 60) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e:?}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// The retry target of the `web` channel's levels.
fn web_levels() -> Target {
    Target {
        kind: OutboxKind::Levels,
        group: "web".into(),
        key: None,
    }
}

/// A retry state after `n` failed attempts.
fn attempts(n: u32) -> RetryState {
    RetryState {
        attempts: n,
        ..RetryState::default()
    }
}

fn level(channel: &str, sku: &str, available: u64) -> Level {
    Level {
        channel: channel.into(),
        sku: sku.into(),
        available,
    }
}

fn op(order: &str, shipment: &str, tracking: Option<&str>) -> ShipmentOp {
    ShipmentOp {
        order_id: order.into(),
        shipment_id: shipment.into(),
        body: match tracking {
            Some(t) => serde_json::json!({"status": "shipped", "tracking_number": t}),
            None => serde_json::json!({"status": "cancelled"}),
        },
    }
}

#[tokio::test]
async fn duplicates_are_stored_once_and_windows_rotate() {
    each_backend(10, |store, _, _| async move {
        assert_eq!(
            store.ingest(b"k1", b"a", 100).await.expect("ingest"),
            Ingested::New
        );
        assert_eq!(
            store.ingest(b"k1", b"a", 105).await.expect("ingest"),
            Ingested::Duplicate
        );
        // Next window: still remembered (previous generation).
        assert_eq!(
            store.ingest(b"k1", b"a", 112).await.expect("ingest"),
            Ingested::Duplicate
        );
        // Two windows later: forgotten.
        assert_eq!(
            store.ingest(b"k1", b"a", 131).await.expect("ingest"),
            Ingested::New
        );
        store.durable().await.expect("flush");
        assert_eq!(store.inbox_batch(10).await.expect("batch").len(), 2);
        assert_eq!(store.depths().inbox, 2);
    })
    .await;
}

#[tokio::test]
async fn processed_inbox_records_become_dirty_work_and_a_newer_mark_survives_a_clear() {
    each_backend(60, |store, _, _| async move {
        store.ingest(b"a", b"one", 1).await.expect("ingest");
        store.ingest(b"b", b"two", 1).await.expect("ingest");
        let batch = store.inbox_batch(10).await.expect("batch");
        assert_eq!(
            batch.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            [b"one".to_vec(), b"two".to_vec()]
        );
        let ids: Vec<u64> = batch.iter().map(|(id, _)| *id).collect();
        let docs = [(DocKind::DeliveryNote, "DN-1".to_owned())];
        store
            .inbox_into_dirty(&ids, &["A".into(), "B".into()], &docs)
            .await
            .expect("into dirty");
        assert!(store.inbox_batch(10).await.expect("batch").is_empty());
        let d = store.depths();
        assert_eq!((d.inbox, d.dirty, d.dirty_docs), (0, 2, 1));
        let dirty = store.dirty_batch(10).await.expect("dirty");
        assert_eq!(
            dirty.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
        // A is marked again after it was read: clearing the old read leaves it dirty.
        store.mark_dirty(&["A".into()]).await.expect("mark");
        store.dirty_clear(&dirty).await.expect("clear");
        let left = store.dirty_batch(10).await.expect("dirty");
        assert_eq!(
            left.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
            ["A"]
        );
        assert_eq!(store.depths().dirty, 1);
        let notes = store
            .dirty_docs_batch(DocKind::DeliveryNote, 10)
            .await
            .expect("docs");
        assert_eq!(notes.len(), 1);
        assert!(store
            .dirty_docs_batch(DocKind::Shipment, 10)
            .await
            .expect("docs")
            .is_empty());
        store
            .dirty_doc_clear(DocKind::DeliveryNote, "DN-1", notes[0].1)
            .await
            .expect("clear doc");
        assert_eq!(store.depths().dirty_docs, 0);
    })
    .await;
}

#[tokio::test]
async fn a_row_read_back_replaces_the_stored_one_whatever_its_modified() {
    each_backend(60, |store, _, _| async move {
        let row = |qty: f64, modified: &str| BinRow {
            item_code: "A".into(),
            warehouse: "W".into(),
            actual_qty: qty,
            modified: Modified(modified.into()),
            ..BinRow::default()
        };
        store
            .apply_bins(&[row(7.0, "2026-11-26 17:51:00")], &[])
            .await
            .expect("apply");
        // The site's time zone was corrected: the newer state carries an older stamp.
        store
            .apply_bins(&[row(12.0, "2026-11-26 12:21:00")], &[])
            .await
            .expect("apply");
        assert_eq!(
            store
                .bin("A", "W")
                .await
                .expect("bin")
                .map(|b| b.actual_qty),
            Some(12.0)
        );
        assert!(store.has_bins("A").await.expect("has"));
        store
            .apply_bins(&[], &[("A".into(), "W".into())])
            .await
            .expect("absent");
        assert!(!store.has_bins("A").await.expect("has"));
    })
    .await;
}

#[tokio::test]
async fn fields_tracking_and_the_first_shipped_time_are_kept() {
    each_backend(60, |store, _, _| async move {
        assert_eq!(
            store
                .cached_field(FieldCache::ItemSku, "A")
                .await
                .expect("get"),
            None
        );
        store
            .set_cached_field(FieldCache::ItemSku, "A", None)
            .await
            .expect("set");
        assert_eq!(
            store
                .cached_field(FieldCache::ItemSku, "A")
                .await
                .expect("get"),
            Some(None)
        );
        store
            .set_cached_field(FieldCache::OrderId, "SO-1", Some("SHOP-1"))
            .await
            .expect("set");
        assert_eq!(
            store
                .cached_field(FieldCache::OrderId, "SO-1")
                .await
                .expect("get"),
            Some(Some("SHOP-1".into()))
        );
        assert_eq!(
            store
                .cached_field(FieldCache::ItemSku, "SO-1")
                .await
                .expect("get"),
            None
        );
        store
            .forget_cached_field(FieldCache::OrderId, "SO-1")
            .await
            .expect("forget");
        assert_eq!(
            store
                .cached_field(FieldCache::OrderId, "SO-1")
                .await
                .expect("get"),
            None
        );

        let t = |awb: &str, modified: &str| Tracking {
            shipment: "S1".into(),
            carrier: Some("UPS".into()),
            tracking_number: Some(awb.into()),
            tracking_url: None,
            modified: Modified(modified.into()),
            active: true,
        };
        store
            .set_tracking("DN-1", &t("1Z1", "2026-01-01 11:00:00"))
            .await
            .expect("t");
        store
            .set_tracking("DN-1", &t("1Z2", "2026-01-01 10:00:00"))
            .await
            .expect("t");
        let kept = store.trackings("DN-1").await.expect("trackings");
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].tracking_number.as_deref(),
            Some("1Z2"),
            "the latest read is kept, whatever its modified says"
        );

        assert_eq!(store.first_shipped_at("DN-1", 5).await.expect("at"), 5);
        assert_eq!(store.first_shipped_at("DN-1", 9).await.expect("at"), 5);
    })
    .await;
}

#[tokio::test]
async fn the_outbox_coalesces_and_keeps_newer_values_on_ack() {
    each_backend(60, |store, _, _| async move {
        assert_eq!(
            store
                .queue_levels(&[level("web", "A", 3), level("web", "B", 0)])
                .await
                .expect("q"),
            2
        );
        assert_eq!(
            store
                .queue_levels(&[level("web", "A", 3)])
                .await
                .expect("q"),
            0,
            "unchanged"
        );
        assert_eq!(
            store
                .queue_levels(&[level("web", "A", 5)])
                .await
                .expect("q"),
            1
        );
        let batch = store.outbox_batch("web", 10).await.expect("batch");
        assert_eq!(batch, vec![("A".to_owned(), 5), ("B".to_owned(), 0)]);
        assert_eq!(store.depths().outbox, 2);
        store
            .queue_levels(&[level("web", "A", 7)])
            .await
            .expect("q");
        store.outbox_acked("web", &batch).await.expect("ack");
        assert_eq!(
            store.outbox_batch("web", 10).await.expect("batch"),
            vec![("A".to_owned(), 7)]
        );
        assert_eq!(
            store.outbox_channels().await.expect("channels"),
            vec!["web".to_owned()]
        );
        assert_eq!(store.depths().outbox, 1);

        // Shipments are the same outbox of another kind.
        let put = op("SHOP-1", "DN-1", Some("1Z1"));
        assert_eq!(
            store
                .queue_shipments(std::slice::from_ref(&put))
                .await
                .expect("q"),
            1
        );
        assert_eq!(
            store
                .queue_shipments(std::slice::from_ref(&put))
                .await
                .expect("q"),
            0
        );
        let newer = op("SHOP-1", "DN-1", Some("1Z2"));
        store
            .queue_shipments(std::slice::from_ref(&newer))
            .await
            .expect("q");
        store.shipment_acked(&put).await.expect("ack the old");
        assert_eq!(
            store.shipment_batch(10).await.expect("batch"),
            vec![newer.clone()]
        );
        store.shipment_acked(&newer).await.expect("ack");
        assert!(store.shipment_batch(10).await.expect("batch").is_empty());
        assert_eq!(store.depths().shipment_outbox, 0);
        assert_eq!(
            store
                .pending_groups(OutboxKind::Shipments)
                .await
                .expect("groups"),
            Vec::<String>::new()
        );
    })
    .await;
}

#[tokio::test]
async fn retry_state_is_kept_per_target_and_survives_reopening() {
    each_backend(60, |store, open, path| async move {
        let web = web_levels();
        let ship = Target {
            kind: OutboxKind::Shipments,
            group: "SHOP-1".into(),
            key: Some("DN-1".into()),
        };
        assert_eq!(store.retry_state(&web).await.expect("get"), None);
        let state = RetryState {
            attempts: 2,
            next_attempt_ms: 1_800_000_000_000,
            last_error: Some("503 down".into()),
        };
        store
            .set_retry_state(&web, Some(&state))
            .await
            .expect("set");
        store
            .set_retry_state(&ship, Some(&attempts(1)))
            .await
            .expect("set");
        store.durable().await.expect("flush");
        drop(store);
        let store = reopen(open, &path).await;
        assert_eq!(
            store.retry_state(&web).await.expect("get"),
            Some(state.clone())
        );
        let all = store.retry_states().await.expect("all");
        assert_eq!(all.len(), 2);
        assert!(all.contains(&(web.clone(), state)));
        store.set_retry_state(&web, None).await.expect("clear");
        assert_eq!(store.retry_state(&web).await.expect("get"), None);
    })
    .await;
}

#[tokio::test]
async fn dead_letters_take_entries_out_and_can_be_requeued_with_the_current_value() {
    each_backend(60, |store, _, _| async move {
        store
            .queue_levels(&[level("web", "A", 4)])
            .await
            .expect("q");
        let sent = store.outbox_batch("web", 10).await.expect("batch");
        let web = web_levels();
        store
            .set_retry_state(&web, Some(&attempts(3)))
            .await
            .expect("retry state");
        let id = store
            .dead_letter(
                DeadTarget::Levels {
                    channel: "web".into(),
                    levels: sent.clone(),
                },
                Some(400),
                "bad sku",
                1,
                3,
            )
            .await
            .expect("dead");
        let d = store.depths();
        assert_eq!((d.outbox, d.dead), (0, 1));
        assert_eq!(
            store.retry_state(&web).await.expect("get"),
            None,
            "its retry state ends with it"
        );
        let letters = store.dead_letters().await.expect("letters");
        assert_eq!(
            (letters[0].id, letters[0].status, letters[0].attempts),
            (id, Some(400), 3)
        );
        // The refused value is not queued again by an unchanged computation...
        assert_eq!(
            store
                .queue_levels(&[level("web", "A", 4)])
                .await
                .expect("q"),
            0
        );
        // ...and a retry sends the current value, not the letter's.
        store
            .queue_levels(&[level("web", "A", 9)])
            .await
            .expect("q");
        store
            .outbox_acked("web", &[("A".to_owned(), 9)])
            .await
            .expect("ack");
        assert!(store.resolve_dead(id, true).await.expect("retry"));
        assert_eq!(
            store.outbox_batch("web", 10).await.expect("batch"),
            vec![("A".to_owned(), 9)]
        );
        assert!(!store.resolve_dead(id, true).await.expect("gone"));
        let d = store.depths();
        assert_eq!((d.outbox, d.dead), (1, 0));

        let put = op("SHOP-2", "DN-2", Some("1Z"));
        store
            .queue_shipments(std::slice::from_ref(&put))
            .await
            .expect("q");
        let id = store
            .dead_letter(DeadTarget::Shipment { op: put }, None, "", 2, 8)
            .await
            .expect("dead");
        assert_eq!(store.depths().shipment_outbox, 0);
        assert!(store.resolve_dead(id, false).await.expect("discard"));
        assert!(store.dead_letters().await.expect("letters").is_empty());
        assert_eq!(store.depths().shipment_outbox, 0, "discarded, not requeued");
    })
    .await;
}

#[tokio::test]
async fn meta_values_are_set_read_and_removed() {
    each_backend(60, |store, _, _| async move {
        assert_eq!(store.meta("w").await.expect("get"), None);
        store.set_meta("w", b"2026").await.expect("set");
        assert_eq!(store.meta("w").await.expect("get"), Some(b"2026".to_vec()));
        store.remove_meta("w").await.expect("remove");
        assert_eq!(store.meta("w").await.expect("get"), None);
    })
    .await;
}

#[tokio::test]
async fn depths_are_counted_again_when_the_store_is_reopened() {
    each_backend(60, |store, open, path| async move {
        store.ingest(b"x", b"r", 1).await.expect("ingest");
        store
            .mark_dirty(&["A".into(), "B".into()])
            .await
            .expect("mark");
        store
            .queue_levels(&[level("web", "A", 1), level("b2b", "A", 1)])
            .await
            .expect("q");
        store.durable().await.expect("flush");
        let before = store.depths();
        drop(store);
        let store = reopen(open, &path).await;
        assert_eq!(store.depths(), before);
        assert_eq!((before.inbox, before.dirty, before.outbox), (1, 2, 2));
    })
    .await;
}

#[tokio::test]
async fn a_store_that_cannot_write_says_so_changes_nothing_and_recovers() {
    each_backend(60, |store, _, _| async move {
        store
            .probe()
            .await
            .expect("a healthy store passes the probe");
        store.inject_write_failure(true);
        assert!(store.probe().await.is_err());
        assert!(store.ingest(b"k", b"r", 1).await.is_err());
        assert!(store.durable().await.is_err());
        assert!(store.queue_levels(&[level("web", "A", 1)]).await.is_err());
        let err = store.set_meta("m", b"v").await.expect_err("refused");
        assert!(
            err.is_transient(),
            "a failed write is worth retrying: {err}"
        );
        assert_eq!(store.depths().inbox, 0);
        store.inject_write_failure(false);
        store.probe().await.expect("recovered");
        assert_eq!(
            store.ingest(b"k", b"r", 1).await.expect("ingest"),
            Ingested::New
        );
        store.durable().await.expect("flush");
    })
    .await;
}
