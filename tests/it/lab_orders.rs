//! End to end against a real ERPNext 15 site: a shop order becomes a submitted Sales Order for
//! a new Customer (international characters intact), stock is reserved, a returning customer
//! with a differently written email gets the same Customer, and placing an order again finds its
//! Sales Order. Skips, saying why, without a site. It needs `ERPNEXT_URL`, `ERPNEXT_API_KEY` and
//! `ERPNEXT_API_SECRET` (an API user allowed to create Customers, Items and Sales Orders), for
//! example from the test site's env file `$LAB/lab.env`:
//!
//! `set -a; source $LAB/lab.env; set +a; cargo test --test it lab_orders:: -- --nocapture`

use crate::lab::orders::*;
use serde_json::Value;
use shoprelay::orders::worker::{place, PlaceError};

#[tokio::test]
async fn a_shop_order_becomes_a_submitted_sales_order_in_erpnext() {
    let Some(lab) = crate::lab::env::env_or_skip("lab_orders") else {
        return;
    };
    let erp = client(&lab.url, &lab.key, &lab.secret);
    ensure_fixtures(&erp).await;
    let ctx = context(erp.clone());
    let run = run_id();
    let email = format!("sro-e2e-{run}@example.com");
    let last = format!("Straße «Ação» 山田 {run}");
    let (_, reserved_before) = bin(&erp, ITEM_A).await;

    let first = order(&format!("SRO-E2E-{run}-1"), &email, "SRO-Jürgen", &last);
    let placed = place(&ctx, &first, Some(WAREHOUSE)).await.expect("placed");
    println!("placed {} for {}", placed.sales_order, placed.customer);
    assert!(placed.created);
    assert_eq!(placed.customer, format!("SRO-Jürgen {last}"));

    let so: Value = erp
        .get_doc("Sales Order", &placed.sales_order)
        .await
        .expect("read")
        .expect("sales order");
    assert_eq!(so["docstatus"], 1);
    assert_eq!(so["status"], "To Deliver and Bill");
    assert_eq!(so["po_no"], first.order_id.as_str());
    assert_eq!(so["customer"], placed.customer.as_str());
    assert_eq!(so["grand_total"].as_f64(), Some(30.95));
    assert_eq!(so["items"][0]["rate"].as_f64(), Some(11.5));
    assert_eq!(so["items"][0]["shop_assembly_required"], 1);
    assert_eq!(so["items"][0]["warehouse"], WAREHOUSE);
    assert_eq!(so["delivery_date"], "2026-12-02");

    let customer: Value = erp
        .get_doc("Customer", &placed.customer)
        .await
        .expect("read")
        .expect("customer");
    assert_eq!(customer["customer_name"], placed.customer.as_str());
    assert_eq!(customer["email_id"], email.as_str());
    assert_eq!(customer["shop_loyalty_tier"], "Gold");
    let address: Value = erp
        .get_doc(
            "Address",
            customer["customer_primary_address"]
                .as_str()
                .expect("address"),
        )
        .await
        .expect("read")
        .expect("address");
    assert_eq!(address["address_line1"], "Rua São João «12», 山田ビル");
    assert_eq!(address["country"], "Brazil");
    println!(
        "customer {:?}, address {:?}",
        customer["customer_name"], address["name"]
    );

    let (_, reserved_after) = bin(&erp, ITEM_A).await;
    println!("{ITEM_A} reserved in {WAREHOUSE}: {reserved_before} -> {reserved_after}");
    assert_eq!(reserved_after, reserved_before + 2.0);

    let mut second = order(
        &format!("SRO-E2E-{run}-2"),
        &format!("  {}  ", email.to_uppercase()),
        "Someone",
        "Else",
    );
    second.lines.truncate(1);
    second.discount_total = None;
    second.total = Some(27.95);
    let again = place(&ctx, &second, Some(WAREHOUSE))
        .await
        .expect("returning");
    println!(
        "returning customer: {} for {}",
        again.sales_order, again.customer
    );
    assert_eq!(again.customer, placed.customer);

    let repeat = place(&ctx, &first, Some(WAREHOUSE)).await.expect("repeat");
    assert!(!repeat.created);
    assert_eq!(repeat.sales_order, placed.sales_order);
    println!(
        "placing {} again found {}",
        first.order_id, repeat.sales_order
    );

    let mut unknown = order(&format!("SRO-E2E-{run}-3"), &email, "SRO-Jürgen", &last);
    unknown.lines[1].sku = format!("SRO-NO-SUCH-{run}");
    match place(&ctx, &unknown, Some(WAREHOUSE)).await {
        Err(PlaceError::Refused(msg)) => {
            println!("unknown SKU refused: {msg}");
            assert!(msg.contains(&format!("SRO-NO-SUCH-{run}")), "{msg}");
        }
        other => panic!("an unknown SKU must be refused, got {other:?}"),
    }

    for so in [&placed.sales_order, &again.sales_order] {
        cancel(&erp, so).await;
    }
}
