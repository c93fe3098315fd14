//! Paid orders into ERPNext's books through the real relay on loopback and the ERPNext
//! emulator: taxes to the cent with prices with and without tax, the order as state (newer,
//! equal and older deliveries), the Sales Invoice and one Payment Entry per payment exactly
//! once (partial, cash on delivery, the same payment twice, ERPNext down, a refused payment),
//! and the comments on the Sales Order.

use crate::common;

use common::orders::{admin_order, erp_list, order, post_order, with_orders, CHAIR};
use common::{wait_until_async, Harness, STORES};
use serde_json::{json, Value};
use shoprelay::startup::Workers;

pub const VAT19: &str = "VAT 19% - ACME";
pub const VAT7: &str = "VAT 7% - ACME";

/// The test relay's `[orders]` with tax and payment accounts, and cash on delivery unpaid.
pub fn with_books(toml: String) -> String {
    with_orders(toml)
        + "unpaid_methods = [\"COD\"]\n\
           [orders.tax_accounts]\n\"VAT 19%\" = \"VAT 19% - ACME\"\n\"VAT 7%\" = \"VAT 7% - ACME\"\n\
           [orders.payment_accounts]\n\
           card = { account = \"Bank Account - ACME\", mode_of_payment = \"Credit Card\" }\n\
           default = \"Cash - ACME\"\n"
}

async fn start() -> Harness {
    let h = Harness::start_with(Workers::Manual, with_books).await;
    for item in [CHAIR, "LAMP", "MUG"] {
        h.erp.save_item(item, &[]).expect("item");
        h.erp.stock_move(item, STORES, 100.0).expect("stock");
    }
    h.erp.add_account(VAT19, "Tax", false);
    h.erp.add_account(VAT7, "Tax", false);
    h
}

/// Steps the order queue until `order_id` has `status` and `done` holds for its admin view.
async fn step_until(h: &Harness, order_id: &str, status: &str) -> Value {
    let relay = h.url("");
    wait_until_async(&format!("{order_id} {status}"), || async {
        h.relay.orders.step().await.expect("order step");
        admin_order(&relay, order_id).await["status"] == status
    })
    .await;
    admin_order(&relay, order_id).await
}

/// An order of `lines` (sku, qty, unit price) with `taxes` (title, rate, amount), paid by card.
fn taxed(id: &str, lines: &[(&str, f64, f64)], taxes: &[(&str, f64, f64)], incl: bool) -> Value {
    let mut o = order(id, &format!("{}@example.com", id.to_lowercase()));
    o["lines"] = json!(lines
        .iter()
        .map(|(s, q, p)| json!({"sku": s, "qty": q, "unit_price": p}))
        .collect::<Vec<_>>());
    o["taxes"] = json!(taxes
        .iter()
        .map(|(t, r, a)| json!({"title": t, "rate": r, "amount": a}))
        .collect::<Vec<_>>());
    o["prices_include_tax"] = json!(incl);
    o.as_object_mut().map(|m| m.remove("total"));
    o.as_object_mut().map(|m| m.remove("shipping"));
    o["updated_at"] = json!("2026-11-26T09:13:00Z");
    o
}

fn pay(o: &mut Value, payments: &[(&str, &str, f64)]) {
    o["payments"] = json!(payments
        .iter()
        .map(|(id, m, a)| json!({"id": id, "method": m, "amount": a,
                                 "paid_at": "2026-11-26T09:13:30Z", "reference": format!("ch_{id}")}))
        .collect::<Vec<_>>());
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(f64::NAN) * 100.0).round() as i64
}

/// The documents of `doctype` the emulator holds for Sales Order `so` or invoice `si`.
fn invoices_of(h: &Harness, so: &str) -> Vec<Value> {
    h.erp
        .docs_of("Sales Invoice")
        .into_iter()
        .filter(|d| {
            d["docstatus"].as_i64() == Some(1)
                && d["items"]
                    .as_array()
                    .is_some_and(|rows| rows.iter().any(|r| r["sales_order"].as_str() == Some(so)))
        })
        .collect()
}

fn payments_of(h: &Harness, si: &str) -> Vec<Value> {
    h.erp
        .docs_of("Payment Entry")
        .into_iter()
        .filter(|d| {
            d["docstatus"].as_i64() == Some(1)
                && d["references"].as_array().is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r["reference_name"].as_str() == Some(si))
                })
        })
        .collect()
}

/// Sends `o` paid in full by card, steps it to "created" and checks the Sales Order, the
/// invoice and the payment against `grand` and `taxes` (ERPNext's total_taxes_and_charges).
async fn paid_order_books_to_the_cent(h: &Harness, mut o: Value, grand: f64, charges: f64) {
    let id = o["order_id"].as_str().expect("id").to_owned();
    pay(&mut o, &[(&format!("pay_{id}"), "card", grand)]);
    let (status, answer) = post_order(&h.url(""), &format!("msg_{id}"), &o).await;
    assert_eq!(status, 202, "{id}: {answer}");
    let view = step_until(h, &id, "created").await;
    let so = h
        .erp
        .doc("Sales Order", view["sales_order"].as_str().expect("so"))
        .expect("sales order");
    assert_eq!(
        cents(&so["grand_total"]),
        (grand * 100.0).round() as i64,
        "{id}: {so}"
    );
    assert_eq!(
        cents(&so["total_taxes_and_charges"]),
        (charges * 100.0).round() as i64,
        "{id}: {so}"
    );
    let so_name = so["name"].as_str().expect("name");
    let invoices = invoices_of(h, so_name);
    assert_eq!(invoices.len(), 1, "{id}: {invoices:?}");
    let si = &invoices[0];
    assert_eq!(view["invoice"], si["name"], "{id}");
    assert_eq!(cents(&si["grand_total"]), cents(&so["grand_total"]), "{id}");
    assert_eq!(cents(&si["outstanding_amount"]), 0, "{id}: paid in full");
    assert_eq!(si["status"], "Paid");
    let pes = payments_of(h, si["name"].as_str().expect("si"));
    assert_eq!(pes.len(), 1, "{id}: {pes:?}");
    assert_eq!(pes[0]["reference_no"], format!("pay_{id}"));
    assert_eq!(pes[0]["paid_to"], "Bank Account - ACME");
    assert_eq!(pes[0]["mode_of_payment"], "Credit Card");
    assert_eq!(
        cents(&pes[0]["paid_amount"]),
        (grand * 100.0).round() as i64
    );
    assert_eq!(view["owed"], Value::Null, "{id}: {view}");
    assert_eq!(view["payments"][0]["payment_entry"], pes[0]["name"]);
}

#[tokio::test]
async fn taxes_with_and_without_tax_in_the_prices_reach_erpnext_to_the_cent() {
    let h = start().await;
    // Tax on top, two rates, a coupon and taxed shipping: 2 × 10 + 5 − 3 + 4.95 + 3.93 + 0.35.
    let mut o = taxed(
        "TX-1",
        &[(CHAIR, 2.0, 10.0), ("MUG", 1.0, 5.0)],
        &[("VAT 19%", 19.0, 3.93), ("VAT 7%", 7.0, 0.35)],
        false,
    );
    o["discount_total"] = json!(3.0);
    o["shipping"] = json!({"method": "DHL", "amount": 4.95});
    o["total"] = json!(31.23);
    paid_order_books_to_the_cent(&h, o, 31.23, 4.95 + 3.93 + 0.35).await;
    // Prices with tax where ERPNext's own rounding gives 35.70: 12 lines of 2.98 at 19 %.
    let lines: Vec<(&str, f64, f64)> = (0..12).map(|_| (CHAIR, 1.0, 2.98)).collect();
    let o = taxed("TX-2", &lines, &[("VAT 19%", 19.0, 5.71)], true);
    paid_order_books_to_the_cent(&h, o, 35.76, 5.71).await;
    // Many lines at 19.99, two rates, a coupon and shipping with tax inside.
    let mut o = taxed(
        "TX-3",
        &[
            (CHAIR, 1.0, 19.99),
            (CHAIR, 1.0, 19.99),
            (CHAIR, 1.0, 19.99),
            ("LAMP", 2.0, 9.99),
            ("MUG", 1.0, 4.99),
        ],
        &[("VAT 19%", 19.0, 8.78), ("VAT 7%", 7.0, 1.64)],
        true,
    );
    o["discount_total"] = json!(5.0);
    o["shipping"] = json!({"method": "DHL", "amount": 4.95});
    o["total"] = json!(84.89);
    // The shipping row holds 4.95 less its share of the tax (in proportion: 0.61).
    let erp_charges = {
        let m = shoprelay::orders::taxes::price(
            &serde_json::from_value(o.clone()).expect("order"),
            &[("VAT 19%", VAT19), ("VAT 7%", VAT7)]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
        )
        .expect("priced");
        m.erp_taxes_and_charges().to_f64()
    };
    paid_order_books_to_the_cent(&h, o, 84.89, erp_charges).await;
    h.stop().await;
}

#[tokio::test]
async fn an_unmapped_tax_title_is_a_dead_order_naming_it() {
    let h = start().await;
    let mut o = taxed(
        "TX-U",
        &[(CHAIR, 1.0, 10.0)],
        &[("Sales tax NY", 8.875, 0.89)],
        false,
    );
    pay(&mut o, &[("pay_u", "card", 10.89)]);
    assert_eq!(post_order(&h.url(""), "msg_u", &o).await.0, 202);
    let view = step_until(&h, "TX-U", "dead").await;
    let error = view["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`Sales tax NY`") && error.contains("[orders.tax_accounts]"),
        "{error}"
    );
    assert!(h.erp.docs_of("Sales Order").is_empty(), "nothing made");
    h.stop().await;
}

#[tokio::test]
async fn partial_payments_wait_and_each_is_booked_once_whatever_the_order_of_deliveries() {
    let h = start().await;
    let relay = h.url("");
    let mut o = taxed(
        "PP-1",
        &[(CHAIR, 2.0, 20.0)],
        &[("VAT 19%", 19.0, 7.60)],
        false,
    );
    o["total"] = json!(47.60);
    pay(&mut o, &[("pay_a", "card", 20.0)]);
    o["updated_at"] = json!("2026-11-26T10:00:00Z");
    assert_eq!(post_order(&relay, "msg_pp1", &o).await.0, 202);
    let view = step_until(&h, "PP-1", "created").await;
    assert!(
        view["owed"]
            .as_str()
            .unwrap_or_default()
            .contains("20.00 of 47.60"),
        "{view}"
    );
    assert!(
        h.erp.docs_of("Sales Invoice").is_empty(),
        "not paid in full: no invoice"
    );
    // The rest is paid: a newer state.
    let mut paid = o.clone();
    pay(
        &mut paid,
        &[("pay_a", "card", 20.0), ("pay_b", "paypal", 27.60)],
    );
    paid["updated_at"] = json!("2026-11-26T10:05:00Z");
    let (status, answer) = post_order(&relay, "msg_pp2", &paid).await;
    assert_eq!(
        (status, &answer["status"]),
        (202, &json!("updated")),
        "{answer}"
    );
    // The same state again under another webhook id, and the older state late.
    let (status, answer) = post_order(&relay, "msg_pp3", &paid).await;
    assert_eq!(
        (status, &answer["status"]),
        (200, &json!("duplicate")),
        "{answer}"
    );
    let (status, answer) = post_order(&relay, "msg_pp4", &o).await;
    assert_eq!(
        (status, &answer["status"]),
        (200, &json!("stale")),
        "{answer}"
    );
    let view = step_until(&h, "PP-1", "created").await;
    wait_until_async("the books settled", || async {
        h.relay.orders.step().await.expect("step");
        admin_order(&relay, "PP-1").await["owed"].is_null()
    })
    .await;
    let so = view["sales_order"].as_str().expect("so").to_owned();
    let invoices = invoices_of(&h, &so);
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let si = invoices[0]["name"].as_str().expect("si").to_owned();
    let mut pes = payments_of(&h, &si);
    pes.sort_by_key(|p| p["reference_no"].as_str().unwrap_or_default().to_owned());
    let refs: Vec<(&str, i64, &str)> = pes
        .iter()
        .map(|p| {
            (
                p["reference_no"].as_str().unwrap_or_default(),
                cents(&p["paid_amount"]),
                p["paid_to"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("pay_a", 2000, "Bank Account - ACME"),
            ("pay_b", 2760, "Cash - ACME")
        ],
        "paypal falls back to the default account"
    );
    assert_eq!(
        h.erp.doc("Sales Invoice", &si).expect("si")["status"],
        "Paid"
    );
    // A state that repeats the payments (newer, nothing else new) books nothing more.
    paid["updated_at"] = json!("2026-11-26T10:09:00Z");
    assert_eq!(post_order(&relay, "msg_pp5", &paid).await.0, 202);
    step_until(&h, "PP-1", "created").await;
    assert_eq!(payments_of(&h, &si).len(), 2);
    assert_eq!(invoices_of(&h, &so).len(), 1);
    // The timeline says what was done.
    let comments: Vec<String> = h
        .erp
        .docs_of("Comment")
        .into_iter()
        .filter(|c| c["reference_name"] == json!(so))
        .map(|c| c["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    let all = comments.join("\n");
    assert!(all.contains(&format!("invoice {si}")), "{all}");
    assert!(all.contains("payment pay_b, paypal, 27.60 → "), "{all}");
    h.stop().await;
}

#[tokio::test]
async fn cash_on_delivery_is_invoiced_without_a_payment_entry() {
    let h = start().await;
    let mut o = taxed(
        "COD-1",
        &[(CHAIR, 1.0, 50.0)],
        &[("VAT 19%", 19.0, 7.98)],
        true,
    );
    pay(&mut o, &[("cod_1", "cod", 50.0)]);
    assert_eq!(post_order(&h.url(""), "msg_cod", &o).await.0, 202);
    let view = step_until(&h, "COD-1", "created").await;
    let so = view["sales_order"].as_str().expect("so");
    let invoices = invoices_of(&h, so);
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "Unpaid");
    assert!(h.erp.docs_of("Payment Entry").is_empty());
    assert_eq!(
        view["payments"][0]["booked"],
        "not booked: an unpaid method"
    );
    h.stop().await;
}

#[tokio::test]
async fn erpnext_down_delays_the_books_and_a_refused_payment_is_dead_until_retried() {
    let h = start().await;
    let relay = h.url("");
    let mut o = taxed(
        "DN-1",
        &[(CHAIR, 1.0, 30.0)],
        &[("VAT 19%", 19.0, 5.70)],
        false,
    );
    pay(&mut o, &[("pay_dn", "card", 35.70)]);
    h.erp.set_rest_down(true);
    assert_eq!(post_order(&relay, "msg_dn", &o).await.0, 202);
    let report = h.relay.orders.step().await.expect("step");
    assert_eq!(report.retried, 1, "{report:?}");
    assert_eq!(admin_order(&relay, "DN-1").await["status"], "received");
    h.erp.set_rest_down(false);
    h.erp.refuse_next(
        "Payment Entry",
        "Cannot create accounting entries against a closed accounting period 2026-11",
    );
    let view = step_until(&h, "DN-1", "dead").await;
    let error = view["error"].as_str().unwrap_or_default();
    assert!(error.contains("closed accounting period"), "{error}");
    assert!(view["invoice"].is_string(), "the invoice was made: {view}");
    assert!(h.erp.docs_of("Payment Entry").is_empty());
    let retried = reqwest::Client::new()
        .post(h.url("/admin/orders/DN-1/retry"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("retry");
    assert!(retried.status().is_success());
    let view = step_until(&h, "DN-1", "created").await;
    let si = view["invoice"].as_str().expect("invoice");
    assert_eq!(
        invoices_of(&h, view["sales_order"].as_str().expect("so")).len(),
        1
    );
    assert_eq!(payments_of(&h, si).len(), 1);
    assert!(view["owed"].is_null(), "{view}");
    let _ = erp_list;
    h.stop().await;
}

#[tokio::test]
async fn a_paid_order_of_a_returning_customer_costs_eight_rest_calls() {
    let h = start().await;
    let relay = h.url("");
    let mut first = taxed(
        "RC-1",
        &[(CHAIR, 1.0, 10.0)],
        &[("VAT 19%", 19.0, 1.90)],
        false,
    );
    first["customer"]["email"] = json!("returning@example.com");
    pay(&mut first, &[("pay_rc1", "card", 11.90)]);
    assert_eq!(post_order(&relay, "msg_rc1", &first).await.0, 202);
    step_until(&h, "RC-1", "created").await;
    let mut second = first.clone();
    second["order_id"] = json!("RC-2");
    pay(&mut second, &[("pay_rc2", "card", 11.90)]);
    assert_eq!(post_order(&relay, "msg_rc2", &second).await.0, 202);
    let before = h.erp.calls().len();
    step_until(&h, "RC-2", "created").await;
    // Only the calls made for the order (the admin reads go to the relay, not to ERPNext).
    let calls: Vec<String> = h.erp.calls()[before..]
        .iter()
        .filter(|c| !c.contains("/api/resource/Warehouse"))
        .cloned()
        .collect();
    assert_eq!(
        calls,
        [
            "GET /api/resource/Sales Order",
            "GET /api/resource/Customer",
            "POST /api/resource/Sales Order",
            "POST /api/method/erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice",
            "POST /api/resource/Sales Invoice",
            "POST /api/method/erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry",
            "POST /api/resource/Payment Entry",
            "POST /api/resource/Comment",
        ],
        "{calls:#?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn erpnext_check_names_missing_and_group_accounts_and_modes_of_payment() {
    let h = start().await;
    let mut settings = h.tool_settings();
    let erp = shoprelay::erpnext::ErpClient::new(&settings.erpnext).expect("client");
    let good = shoprelay::orders::check::check(&erp, &settings.orders).await;
    assert!(good.iter().all(|f| f.ok), "{good:?}");
    settings
        .orders
        .tax_accounts
        .insert("VAT 5%".into(), "Duties and Taxes - ACME".into());
    settings
        .orders
        .tax_accounts
        .insert("VAT 9%".into(), "No Such Account - ACME".into());
    settings.orders.payment_accounts.insert(
        "paypal".into(),
        shoprelay::config::PaymentAccount::Full {
            account: "Bank Account - ACME".into(),
            mode_of_payment: Some("PayPal".into()),
        },
    );
    let bad: Vec<String> = shoprelay::orders::check::check(&erp, &settings.orders)
        .await
        .into_iter()
        .filter(|f| !f.ok)
        .map(|f| f.text)
        .collect();
    let all = bad.join("\n");
    assert!(
        all.contains("\"Duties and Taxes - ACME\" is a group"),
        "{all}"
    );
    assert!(
        all.contains("no Account \"No Such Account - ACME\""),
        "{all}"
    );
    assert!(all.contains("no Mode of Payment \"PayPal\""), "{all}");
    h.stop().await;
}
