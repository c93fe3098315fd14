//! End to end against a real ERPNext 15 site: a paid shop order whose prices include VAT becomes
//! a submitted Sales Order, Sales Invoice and Payment Entry with the shop's totals to the cent,
//! and settling it again books nothing more. Skips, saying why, without a site (`ERPNEXT_URL`,
//! `ERPNEXT_API_KEY`, `ERPNEXT_API_SECRET`, for example from the lab's env file):
//!
//! `set -a; source $LAB/lab.env; set +a; cargo test --test it lab_books:: -- --nocapture`
//!
//! It creates the tax account `SRB-VAT 19% - ACME` when missing, and cancels what it made.

use crate::lab::orders::*;
use serde_json::{json, Value};
use shoprelay::orders::books::{settle, Settled};
use shoprelay::orders::worker::place;
use shoprelay::store::Store;

const VAT: &str = "SRB-VAT 19% - ACME";

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(f64::NAN) * 100.0).round() as i64
}

#[tokio::test]
async fn a_paid_order_with_vat_becomes_invoice_and_payment_to_the_cent() {
    let Some(lab) = crate::lab::env::env_or_skip("lab_books") else {
        return;
    };
    let erp = client(&lab.url, &lab.key, &lab.secret);
    ensure_fixtures(&erp).await;
    if erp
        .get_doc::<Value>("Account", VAT)
        .await
        .expect("account")
        .is_none()
    {
        erp.save_doc(
            "Account",
            None,
            &json!({"account_name": "SRB-VAT 19%", "parent_account": "Duties and Taxes - ACME",
                    "company": "ACME", "account_type": "Tax", "tax_rate": 19,
                    "root_type": "Liability", "is_group": 0}),
        )
        .await
        .expect("VAT account");
    }
    let mut ctx = context(erp.clone());
    ctx.settings
        .tax_accounts
        .insert("VAT 19%".into(), VAT.into());
    let run = run_id();
    // 2 × A at 12.00 less 1.00, B at 5.00, 2.00 off, 4.95 shipping: 30.95 with VAT inside.
    let mut o = order(
        &format!("SRB-{run}"),
        &format!("srb-{run}@example.com"),
        "SRB",
        &format!("Books {run}"),
    );
    o.prices_include_tax = true;
    o.taxes = vec![shoprelay::orders::model::OrderTax {
        title: "VAT 19%".into(),
        rate: Some(19.0),
        amount: 4.94,
    }];
    o.updated_at = Some("2026-11-29T10:16:00Z".into());
    o.payments = vec![shoprelay::orders::model::OrderPayment {
        id: format!("SRB-PAY-{run}"),
        method: "card".into(),
        amount: 30.95,
        paid_at: Some("2026-11-29T10:15:30Z".into()),
        reference: Some(format!("ch_{run}")),
    }];
    let placed = place(&ctx, &o, Some(WAREHOUSE)).await.expect("placed");
    let so: Value = erp
        .get_doc("Sales Order", &placed.sales_order)
        .await
        .expect("read")
        .expect("sales order");
    println!(
        "SO {} grand {} taxes {}",
        placed.sales_order, so["grand_total"], so["total_taxes_and_charges"]
    );
    assert_eq!(cents(&so["grand_total"]), 3095);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 60).expect("store");
    let body = serde_json::to_value(&o).expect("json");
    store
        .receive_order("msg_srb", &o.order_id, "srb", &body, 0)
        .await
        .expect("receive");
    let mut record = store
        .order(&o.order_id)
        .await
        .expect("read")
        .expect("record");
    record.sales_order = Some(placed.sales_order.clone());
    record.customer = Some(placed.customer.clone());
    let settled = settle(&ctx, &store, &mut record, &o)
        .await
        .expect("store")
        .expect("settled");
    assert_eq!(settled, Settled::Done);
    let si_name = record.books.invoice.clone().expect("invoice");
    let si: Value = erp
        .get_doc("Sales Invoice", &si_name)
        .await
        .expect("read")
        .expect("invoice");
    let pe_name = record.books.payments[0].entry.clone().expect("payment");
    let pe: Value = erp
        .get_doc("Payment Entry", &pe_name)
        .await
        .expect("read")
        .expect("payment");
    println!(
        "SI {si_name} grand {} taxes {} outstanding {} status {}; PE {pe_name} paid {} ref {}",
        si["grand_total"],
        si["total_taxes_and_charges"],
        si["outstanding_amount"],
        si["status"],
        pe["paid_amount"],
        pe["reference_no"]
    );
    assert_eq!(cents(&si["grand_total"]), 3095);
    assert_eq!(
        cents(&si["total_taxes_and_charges"]),
        cents(&so["total_taxes_and_charges"])
    );
    let vat: i64 = si["taxes"]
        .as_array()
        .expect("taxes")
        .iter()
        .filter(|t| t["account_head"] == VAT)
        .map(|t| cents(&t["tax_amount"]))
        .sum();
    assert_eq!(vat, 494, "the shop's VAT to the cent");
    assert_eq!(cents(&si["outstanding_amount"]), 0);
    assert_eq!(si["status"], "Paid");
    assert_eq!(pe["docstatus"], 1);
    assert_eq!(cents(&pe["paid_amount"]), 3095);
    assert_eq!(pe["reference_no"], o.payments[0].id.as_str());
    // Settling again books nothing more.
    let again = settle(&ctx, &store, &mut record, &o)
        .await
        .expect("store")
        .expect("settled");
    assert_eq!(again, Settled::Done);
    let pes: Vec<Value> = erp
        .list_page(
            "Payment Entry",
            &["name"],
            &json!([
                ["reference_no", "=", o.payments[0].id],
                ["docstatus", "<", 2]
            ]),
            "creation asc",
            0,
            0,
        )
        .await
        .expect("payments");
    assert_eq!(pes.len(), 1, "{pes:?}");
    for (doctype, name) in [
        ("Payment Entry", pe_name.as_str()),
        ("Sales Invoice", si_name.as_str()),
        ("Sales Order", placed.sales_order.as_str()),
    ] {
        if let Err(e) = erp
            .post_method(
                "frappe.client.cancel",
                &json!({"doctype": doctype, "name": name}),
            )
            .await
        {
            eprintln!("could not cancel {doctype} {name}: {e}");
        }
    }
}
