//! Every stock voucher ERPNext posts, submitted and cancelled on the emulator, reaches the shop
//! through its own voucher-level webhook: one webhook job per voucher and one Bin read-back per
//! batch of items, whatever the number of rows.

use crate::common;

use common::{settle_counts, Harness, FINISHED, STORES};
use shoprelay::startup::Workers;
use shoprelay_testkit::erp::StockLine;
use shoprelay_testkit::Delivery;

/// The sellable level on `web` (Stores + Finished Goods, actual minus reservations), as the
/// emulated ERPNext holds it now.
fn truth(h: &Harness, item: &str) -> u64 {
    let total: f64 = [STORES, FINISHED]
        .iter()
        .filter_map(|wh| h.erp.bin(item, wh))
        .map(|b| {
            let f = |k: &str| b[k].as_f64().unwrap_or(0.0);
            f("actual_qty") - f("reserved_qty") - f("reserved_qty_for_production")
        })
        .sum();
    total.max(0.0).floor() as u64
}

/// Delivers one voucher's webhooks, lets the relay settle, and checks that the shop shows the
/// truth for `items`; returns (webhook jobs, Bin read-backs).
async fn post(h: &Harness, what: &str, ds: Vec<Delivery>, items: &[&str]) -> (usize, u64) {
    let jobs = ds.len();
    let reads = settle_counts(h, ds).await;
    for item in items {
        assert_eq!(
            h.shop.level("web", item),
            Some(truth(h, item)),
            "{what}: {item}"
        );
    }
    eprintln!("{what:<48} {jobs} webhook job(s), {reads} Bin read-back(s)");
    (jobs, reads)
}

#[tokio::test]
async fn every_voucher_type_submitted_and_cancelled_costs_one_job_and_one_read_back() {
    let h = Harness::start(Workers::Manual).await;
    let codes: Vec<String> = (0..40).map(|i| format!("RCPT-{i:02}")).collect();
    let items: Vec<&str> = codes.iter().map(String::as_str).collect();

    // A 40-line Material Receipt into new Bins.
    let lines: Vec<StockLine<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| StockLine::into(it, STORES, 1.0 + i as f64))
        .collect();
    let (ste, ds) = h
        .erp
        .submit_voucher("Stock Entry", &lines, true)
        .expect("receipt");
    assert_eq!(
        post(&h, "Stock Entry (Material Receipt, 40 lines)", ds, &items).await,
        (1, 1)
    );
    let ds = h.erp.cancel_voucher("Stock Entry", &ste).expect("cancel");
    assert_eq!(post(&h, "  cancelled", ds, &items).await, (1, 1));
    assert_eq!(h.shop.level("web", "RCPT-39"), Some(0));

    let all_one = |jobs_reads: (usize, u64)| assert_eq!(jobs_reads, (1, 1));
    // A transfer between two warehouses of the channel, and a Material Issue.
    let (_, ds) = h
        .erp
        .submit_voucher(
            "Stock Entry",
            &[StockLine::into("LAMP", STORES, 10.0)],
            true,
        )
        .expect("receipt");
    all_one(post(&h, "Stock Entry (receipt)", ds, &["LAMP"]).await);
    let transfer = StockLine {
        item: "LAMP",
        from: Some(STORES),
        to: Some(FINISHED),
        qty: 4.0,
    };
    let (ste, ds) = h
        .erp
        .submit_voucher("Stock Entry", &[transfer], true)
        .expect("transfer");
    all_one(post(&h, "Stock Entry (transfer)", ds, &["LAMP"]).await);
    assert_eq!(
        h.shop.level("marketplace", "LAMP"),
        Some(4),
        "6 in Stores, buffer 2"
    );
    let ds = h.erp.cancel_voucher("Stock Entry", &ste).expect("cancel");
    all_one(post(&h, "  cancelled", ds, &["LAMP"]).await);
    assert_eq!(h.shop.level("marketplace", "LAMP"), Some(8));
    let (_, ds) = h
        .erp
        .submit_voucher(
            "Stock Entry",
            &[StockLine::out_of("LAMP", STORES, 3.0)],
            true,
        )
        .expect("issue");
    all_one(post(&h, "Stock Entry (Material Issue)", ds, &["LAMP"]).await);

    // Purchase Receipt, Purchase and Sales Invoice with stock update, Subcontracting Receipt.
    for (doctype, line) in [
        ("Purchase Receipt", StockLine::into("DESK", STORES, 5.0)),
        ("Purchase Invoice", StockLine::into("DESK", FINISHED, 3.0)),
        ("Sales Invoice", StockLine::out_of("DESK", STORES, 2.0)),
    ] {
        let (name, ds) = h
            .erp
            .submit_voucher(doctype, &[line], true)
            .expect("submit");
        all_one(post(&h, &format!("{doctype} (update_stock)"), ds, &["DESK"]).await);
        let ds = h.erp.cancel_voucher(doctype, &name).expect("cancel");
        all_one(post(&h, "  cancelled", ds, &["DESK"]).await);
        // Keep it submitted for the next one to build on.
        let (_, ds) = h.erp.submit_voucher(doctype, &[line], true).expect("again");
        all_one(post(&h, "  submitted again", ds, &["DESK"]).await);
    }
    assert_eq!(h.shop.level("web", "DESK"), Some(6));
    // An invoice that moves no stock fires nothing (the webhooks' condition) and costs nothing.
    for doctype in ["Sales Invoice", "Purchase Invoice"] {
        let (name, ds) = h
            .erp
            .submit_voucher(doctype, &[StockLine::into("DESK", STORES, 1.0)], false)
            .expect("no stock");
        assert!(ds.is_empty(), "{doctype} without update_stock: {ds:?}");
        assert!(h
            .erp
            .cancel_voucher(doctype, &name)
            .expect("cancel")
            .is_empty());
    }

    // Subcontracting Receipt: finished goods in, supplied raw material out.
    let (_, ds) = h
        .erp
        .submit_voucher(
            "Stock Entry",
            &[StockLine::into("WOOD", FINISHED, 20.0)],
            true,
        )
        .expect("raw material");
    all_one(post(&h, "Stock Entry (raw material)", ds, &["WOOD"]).await);
    let (scr, ds) = h
        .erp
        .submit_voucher(
            "Subcontracting Receipt",
            &[
                StockLine::into("SHELF", STORES, 4.0),
                StockLine::out_of("WOOD", FINISHED, 8.0),
            ],
            true,
        )
        .expect("subcontracting receipt");
    all_one(post(&h, "Subcontracting Receipt", ds, &["SHELF", "WOOD"]).await);
    assert_eq!(h.shop.level("web", "WOOD"), Some(12));
    let ds = h
        .erp
        .cancel_voucher("Subcontracting Receipt", &scr)
        .expect("cancel");
    all_one(post(&h, "  cancelled", ds, &["SHELF", "WOOD"]).await);

    // Delivery Note (its own rows name the stock), Sales Order reservations.
    let (so, ds) = h
        .erp
        .submit_sales_order("SHOP-7", &[("LAMP", STORES, 2.0)])
        .expect("so");
    let (jobs, reads) = post(&h, "Sales Order (reservation)", ds, &["LAMP"]).await;
    assert_eq!((jobs, reads), (2, 1), "on_submit and on_change, read once");
    let (dn, ds) = h
        .erp
        .submit_delivery_note(
            &[(Some(so.as_str()), "LAMP", STORES, 2.0)],
            Default::default(),
            None,
        )
        .expect("dn");
    let (jobs, reads) = post(&h, "Delivery Note", ds, &["LAMP"]).await;
    assert_eq!((jobs, reads), (2, 1), "DN on_submit and SO on_change");
    let ds = h.erp.cancel_delivery_note(&dn).expect("cancel");
    post(&h, "  cancelled", ds, &["LAMP"]).await;
    let ds = h.erp.cancel_sales_order(&so).expect("cancel");
    post(&h, "Sales Order cancelled", ds, &["LAMP"]).await;

    // A Work Order reserves raw material (Bin db_set: Bin on_change).
    let ds = h
        .erp
        .reserve_for_production("WOOD", FINISHED, 5.0)
        .expect("work order");
    all_one(post(&h, "Work Order reservation (Bin on_change)", ds, &["WOOD"]).await);
    assert_eq!(h.shop.level("web", "WOOD"), Some(15));
    h.stop().await;
}

#[tokio::test]
async fn a_stock_take_of_500_items_is_read_back_in_short_requests() {
    let h = Harness::start(Workers::Manual).await;
    let codes: Vec<String> = (0..500)
        .map(|i| format!("STOCK-TAKE-ITEM-{i:04}"))
        .collect();
    let items: Vec<&str> = codes.iter().map(String::as_str).collect();
    let lines: Vec<StockLine<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| StockLine::into(it, STORES, (i % 17) as f64 + 1.0))
        .collect();
    let (sr, ds) = h
        .erp
        .submit_voucher("Stock Reconciliation", &lines, true)
        .expect("stock take");
    // The emulated site refuses request lines over 4,094 bytes, as gunicorn does.
    let (jobs, reads) = post(&h, "Stock Reconciliation (500 items)", ds, &items).await;
    assert_eq!(jobs, 1);
    assert!(reads <= 10, "{reads} read-backs");
    let ds = h
        .erp
        .cancel_voucher("Stock Reconciliation", &sr)
        .expect("cancel");
    let (jobs, _) = post(&h, "  cancelled", ds, &items).await;
    assert_eq!(jobs, 1);
    assert_eq!(h.shop.level("web", "STOCK-TAKE-ITEM-0499"), Some(0));
    h.stop().await;
}

#[tokio::test]
async fn a_signal_that_arrived_before_the_items_latest_read_back_costs_no_second_read_back() {
    use shoprelay::model::StockSignal;
    use shoprelay::model::{ErpEvent, InboxRecord};

    let h = Harness::start(Workers::Manual).await;
    let _ = h.erp.stock_move("LAMP", STORES, 3.0).expect("receipt");
    // More signals than the processor drains in one step (1000): the last, for LAMP again,
    // waits in the inbox while the first LAMP signal is read back.
    for i in 0..1001 {
        let (item, wh) = match i {
            0 | 1000 => ("LAMP".to_owned(), STORES),
            _ => (format!("ELSEWHERE-{i}"), common::ELSEWHERE),
        };
        let record = InboxRecord {
            received_ms: 0,
            event: ErpEvent::Stock(StockSignal {
                doctype: "Stock Entry".into(),
                event: Some("on_submit".into()),
                name: Some(format!("MAT-STE-{i}")),
                keys: vec![(item, wh.to_owned())],
            }),
        };
        let bytes = serde_json::to_vec(&record).expect("record");
        h.relay
            .store
            .ingest(format!("key-{i}").as_bytes(), &bytes, 1)
            .await
            .expect("ingest");
    }
    let first = h.relay.processor.step().await.expect("step");
    assert_eq!((first.events, first.readbacks), (1000, 1), "{first:?}");
    let second = h.relay.processor.step().await.expect("step");
    assert_eq!(
        (second.events, second.skipped_signals, second.readbacks),
        (1, 1, 0),
        "{second:?}"
    );
    h.settle().await;
    assert_eq!(h.shop.level("web", "LAMP"), Some(3));
    h.stop().await;
}
