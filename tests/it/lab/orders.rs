//! The order side of the lab, shared by the lab order test and the lab benchmarks: the order
//! worker's context for the lab, and the fixtures (custom fields, `SRO-` items with prices and
//! stock) made idempotently.
#![allow(dead_code)]

use serde_json::{json, Value};
use shoprelay::config::Settings;
use shoprelay::erpnext::{ErpClient, ErpError};
use shoprelay::orders::model::{FieldMapping, OrderSettings, ShopOrder};
use shoprelay::orders::worker::OrderContext;

use super::env::{env_or_skip, LabEnv};

pub const WAREHOUSE: &str = "Stores - ACME";
pub const ITEM_A: &str = "SRO-LAB-A";
pub const ITEM_B: &str = "SRO-LAB-B";

/// What a lab benchmark starts from: the lab, and `BENCH_ORDERS` (orders per phase;
/// `default_orders` when unset or not a number). None, after printing why, without a lab.
pub fn bench_setup(bench: &str, default_orders: usize) -> Option<(LabEnv, usize)> {
    let lab = env_or_skip(bench)?;
    let n = std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_orders);
    Some((lab, n))
}

/// A client for `url` (the lab, or a proxy in front of it) with the lab's credentials.
pub fn client(url: &str, key: &str, secret: &str) -> ErpClient {
    let dir = std::env::temp_dir();
    let toml = shoprelay_testkit::relay_toml(url, "http://127.0.0.1:9", &dir);
    let s = Settings::from_toml(
        &toml,
        &[("erpnext_api_key", key), ("erpnext_api_secret", secret)],
    )
    .expect("settings");
    ErpClient::new(&s.erpnext).expect("client")
}

pub fn order_settings() -> OrderSettings {
    let mut fields = FieldMapping::default();
    fields
        .customer
        .insert("loyalty_tier".into(), "shop_loyalty_tier".into());
    fields
        .line
        .insert("assembly_required".into(), "shop_assembly_required".into());
    OrderSettings {
        shipping_account: Some("Freight and Forwarding Charges - ACME".into()),
        customer_group: "Individual".into(),
        territory: "Rest Of The World".into(),
        submit: true,
        lead_time_days: 3,
        fields,
        ..Default::default()
    }
}

pub fn context(erp: ErpClient) -> OrderContext {
    OrderContext {
        erp,
        settings: order_settings(),
        order_id_field: "po_no".into(),
        sku_field: None,
    }
}

async fn ensure(erp: &ErpClient, doctype: &str, name: &str, body: Value) {
    if erp
        .get_doc::<Value>(doctype, name)
        .await
        .expect("read fixture")
        .is_some()
    {
        return;
    }
    match erp.save_doc(doctype, None, &body).await {
        Ok(_) | Err(ErpError::Status { status: 409, .. }) => {}
        Err(e) => panic!("cannot create {doctype} {name}: {e}"),
    }
}

/// Custom fields, the two items with a Standard Selling price, and at least 1000 of each in
/// stock.
pub async fn ensure_fixtures(erp: &ErpClient) {
    ensure(
        erp,
        "Custom Field",
        "Customer-shop_loyalty_tier",
        json!({"dt": "Customer", "fieldname": "shop_loyalty_tier", "label": "Shop Loyalty Tier",
               "fieldtype": "Data", "insert_after": "customer_group"}),
    )
    .await;
    ensure(
        erp,
        "Custom Field",
        "Sales Order Item-shop_assembly_required",
        json!({"dt": "Sales Order Item", "fieldname": "shop_assembly_required",
               "label": "Shop Assembly Required", "fieldtype": "Check", "insert_after": "item_name"}),
    )
    .await;
    for (item, price) in [(ITEM_A, 12.0), (ITEM_B, 5.0)] {
        ensure(
            erp,
            "Item",
            item,
            json!({"item_code": item, "item_name": item, "item_group": "All Item Groups",
                   "stock_uom": "Nos", "is_stock_item": 1}),
        )
        .await;
        let prices: Vec<Value> = erp
            .list_page(
                "Item Price",
                &["name"],
                &json!([
                    ["item_code", "=", item],
                    ["price_list", "=", "Standard Selling"]
                ]),
                "name asc",
                0,
                1,
            )
            .await
            .expect("prices");
        if prices.is_empty() {
            erp.save_doc(
                "Item Price",
                None,
                &json!({"item_code": item, "price_list": "Standard Selling", "price_list_rate": price}),
            )
            .await
            .expect("item price");
        }
        let (actual, _) = bin(erp, item).await;
        if actual < 1000.0 {
            erp.save_doc(
                "Stock Entry",
                None,
                &json!({"stock_entry_type": "Material Receipt", "docstatus": 1,
                        "items": [{"item_code": item, "qty": 1000, "t_warehouse": WAREHOUSE, "basic_rate": 5}]}),
            )
            .await
            .expect("stock");
        }
    }
}

/// (actual_qty, reserved_qty) of `item` in the warehouse.
pub async fn bin(erp: &ErpClient, item: &str) -> (f64, f64) {
    let rows: Vec<Value> = erp
        .list_page(
            "Bin",
            &["actual_qty", "reserved_qty"],
            &json!([["item_code", "=", item], ["warehouse", "=", WAREHOUSE]]),
            "name asc",
            0,
            1,
        )
        .await
        .expect("bin");
    rows.first().map_or((0.0, 0.0), |r| {
        (
            r["actual_qty"].as_f64().unwrap_or(0.0),
            r["reserved_qty"].as_f64().unwrap_or(0.0),
        )
    })
}

/// A run id unique enough for shared test data.
pub fn run_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{:x}", t % 0xfff_ffff_ffff)
}

/// An order of 2 × A (1.00 off the line) and 1 × B, 2.00 off, 4.95 shipping: 30.95.
pub fn order(order_id: &str, email: &str, first: &str, last: &str) -> ShopOrder {
    serde_json::from_value(json!({
        "order_id": order_id,
        "channel": "web",
        "placed_at": "2026-11-29T10:15:00Z",
        "currency": "USD",
        "customer": {"email": email, "first_name": first, "last_name": last,
                     "phone": "+49 30 1234567", "fields": {"loyalty_tier": "Gold"}},
        "shipping_address": {"line1": "Rua São João «12», 山田ビル", "city": "São Paulo",
                             "postcode": "01000-000", "country": "BR"},
        "lines": [{"sku": ITEM_A, "qty": 2, "unit_price": 12.0, "discount": 1.0,
                   "fields": {"assembly_required": 1}},
                  {"sku": ITEM_B, "qty": 1, "unit_price": 5.0}],
        "discount_total": 2.0,
        "shipping": {"method": "DHL", "amount": 4.95},
        "total": 30.95
    }))
    .expect("order")
}

/// Cancels a submitted Sales Order (keeps the shared lab's reservations from growing).
pub async fn cancel(erp: &ErpClient, name: &str) {
    if let Err(e) = erp
        .post_method(
            "frappe.client.cancel",
            &json!({"doctype": "Sales Order", "name": name}),
        )
        .await
    {
        eprintln!("could not cancel {name}: {e}");
    }
}
