//! Places one shop order in ERPNext: finds or creates the Customer by email, then creates the
//! Sales Order once (looked up by the shop order id first). The caller owns the queue, the
//! retries and the order's status; this module only talks to ERPNext.

use serde_json::{json, Value};

use super::context::{erp_failure, missing_fields};
pub use super::context::{OrderContext, PlaceError, Placed};
use super::money::Decimal;
use super::{customer, sales_order, taxes};
use crate::erpnext::client::ErpError;
use crate::orders::model::ShopOrder;

/// A Sales Order already made for a shop order.
#[derive(Debug, serde::Deserialize)]
struct ExistingOrder {
    name: String,
    customer: String,
    docstatus: i64,
    #[serde(default)]
    grand_total: Option<f64>,
}

/// Places `order` in ERPNext, taking its items from `warehouse` (the channel's warehouse).
///
/// REST calls: the Sales Order is looked up by the shop order id (across all customers: a
/// crash after ERPNext created it but before the caller recorded it must not create a second
/// one), the Customer by email, and the Sales Order is created and submitted in one request:
/// three calls for a returning customer shipping to a known address (one more to resolve SKUs
/// through `sku_field`). A new customer adds the Contact lookup, the Country and the Customer
/// create.
pub async fn place(
    ctx: &OrderContext,
    order: &ShopOrder,
    warehouse: Option<&str>,
) -> Result<Placed, PlaceError> {
    let taxed = taxes::price(order, &ctx.settings.tax_accounts)
        .map_err(|e| PlaceError::Refused(e.to_string()))?;
    let money = &taxed.money;
    if order.lines.is_empty() {
        return Err(PlaceError::Refused("the order has no lines".into()));
    }
    if let Some(existing) = existing_order(ctx, &order.order_id).await? {
        return finish_existing(ctx, existing, money.total).await;
    }
    let customer = customer::find_or_create(ctx, order).await?;
    let items = item_codes(ctx, order).await?;
    let so = sales_order::build(ctx, order, &taxed, &customer, &items, warehouse)
        .map_err(PlaceError::Refused)?;
    let saved = ctx
        .erp
        .save_doc("Sales Order", None, &so.body)
        .await
        .map_err(|e| match &e {
            ErpError::Status { status: 404, .. } => PlaceError::Refused(format!(
                "an item of this order is unknown to ERPNext (SKUs {}): {e}",
                skus(order)
            )),
            _ => erp_failure(e, "creating the Sales Order"),
        })?;
    let name = saved["name"].as_str().unwrap_or_default().to_owned();
    let mut problems = Vec::new();
    let grand = saved["grand_total"]
        .as_f64()
        .and_then(|g| Decimal::from_f64(g, "grand_total").ok())
        .map(Decimal::round_cents);
    if grand != Some(money.total) {
        problems.push(format!(
            "ERPNext's grand total is {}, the shop's total is {}",
            grand.map_or_else(|| "missing".to_owned(), |g| g.to_string()),
            money.total
        ));
    }
    let charges = saved["total_taxes_and_charges"]
        .as_f64()
        .and_then(|g| Decimal::from_f64(g, "total_taxes_and_charges").ok())
        .map(Decimal::round_cents)
        .unwrap_or_default();
    if charges != taxed.erp_taxes_and_charges() {
        problems.push(format!(
            "ERPNext's taxes and charges are {charges}, the shop's are {} (taxes {} and shipping {}): did a tax template or an item tax template add a tax?",
            taxed.erp_taxes_and_charges(),
            taxed.tax_total,
            money.shipping
        ));
    }
    let mut dropped = missing_fields(&so.order_fields, &saved);
    let rows = saved["items"].as_array().cloned().unwrap_or_default();
    for (i, sent) in so.line_fields.iter().enumerate() {
        let row = rows.get(i).cloned().unwrap_or(Value::Null);
        for f in missing_fields(sent, &row) {
            if !dropped.contains(&f) {
                dropped.push(f);
            }
        }
    }
    if !dropped.is_empty() {
        problems.push(format!(
            "ERPNext dropped the mapped field(s) {} (no such field on Sales Order / Sales Order Item?)",
            dropped.join(", ")
        ));
    }
    if !problems.is_empty() {
        let undo = undo(ctx, &name, saved["docstatus"].as_i64().unwrap_or(0)).await;
        return Err(PlaceError::Refused(format!(
            "{}; {undo}",
            problems.join("; ")
        )));
    }
    tracing::info!(order_id = %order.order_id, sales_order = %name, customer = %customer.name, "placed the shop order in ERPNext");
    Ok(Placed {
        customer: customer.name,
        sales_order: name,
        created: true,
    })
}

fn skus(order: &ShopOrder) -> String {
    order
        .lines
        .iter()
        .map(|l| l.sku.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Sales Order made for this shop order, if any (not cancelled, any customer).
async fn existing_order(
    ctx: &OrderContext,
    order_id: &str,
) -> Result<Option<ExistingOrder>, PlaceError> {
    let field = ctx.order_id_field.as_str();
    let rows: Vec<Value> = ctx
        .erp
        .list_page(
            "Sales Order",
            &["name", "customer", "docstatus", "grand_total", field],
            &json!([[field, "=", order_id], ["docstatus", "<", 2]]),
            "`tabSales Order`.`creation` asc",
            0,
            20,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the Sales Order by the shop order id"))?;
    // ERPNext compares case-insensitively and ignores trailing spaces; the id must be exact.
    let exact = rows
        .into_iter()
        .find(|r| r[field].as_str() == Some(order_id));
    Ok(exact.and_then(|r| serde_json::from_value(r).ok()))
}

/// A Sales Order found by the order id: submitted (a draft is submitted when `submit`), and
/// its grand total must still be the shop's.
async fn finish_existing(
    ctx: &OrderContext,
    existing: ExistingOrder,
    total: Decimal,
) -> Result<Placed, PlaceError> {
    let grand = existing
        .grand_total
        .and_then(|g| Decimal::from_f64(g, "grand_total").ok())
        .map(Decimal::round_cents);
    if grand.is_some_and(|g| g != total) {
        return Err(PlaceError::Refused(format!(
            "Sales Order {} exists for this order with grand total {}, but the shop's total is {}",
            existing.name,
            grand.unwrap_or_default(),
            total
        )));
    }
    if existing.docstatus == 0 && ctx.settings.submit {
        ctx.erp
            .save_doc(
                "Sales Order",
                Some(&existing.name),
                &json!({"docstatus": 1}),
            )
            .await
            .map_err(|e| erp_failure(e, "submitting the draft Sales Order"))?;
    }
    Ok(Placed {
        customer: existing.customer,
        sales_order: existing.name,
        created: false,
    })
}

/// Takes back a Sales Order the relay will not stand by: cancelled when submitted, deleted
/// when a draft. Says what happened.
async fn undo(ctx: &OrderContext, name: &str, docstatus: i64) -> String {
    let result = if docstatus == 1 {
        ctx.erp
            .post_method(
                "frappe.client.cancel",
                &json!({"doctype": "Sales Order", "name": name}),
            )
            .await
            .map(|_| "cancelled")
    } else {
        ctx.erp
            .delete_doc("Sales Order", name)
            .await
            .map(|_| "deleted")
    };
    match result {
        Ok(done) => format!("Sales Order {name} was {done}"),
        Err(e) => format!("Sales Order {name} could not be taken back: {e}"),
    }
}

/// The item code of each line: the SKU itself, or the Item whose `sku_field` holds it.
async fn item_codes(ctx: &OrderContext, order: &ShopOrder) -> Result<Vec<String>, PlaceError> {
    let Some(field) = ctx.sku_field.as_deref() else {
        return Ok(order.lines.iter().map(|l| l.sku.clone()).collect());
    };
    let mut wanted: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    wanted.sort();
    wanted.dedup();
    let rows: Vec<Value> = ctx
        .erp
        .list_page(
            "Item",
            &["name", field],
            &json!([[field, "in", wanted]]),
            "name asc",
            0,
            0,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the items by SKU"))?;
    let mut codes = Vec::with_capacity(order.lines.len());
    let mut unknown = Vec::new();
    for line in &order.lines {
        match rows
            .iter()
            .find(|r| r[field].as_str() == Some(line.sku.as_str()))
            .and_then(|r| r["name"].as_str())
        {
            Some(code) => codes.push(code.to_owned()),
            None => unknown.push(line.sku.clone()),
        }
    }
    if !unknown.is_empty() {
        unknown.dedup();
        return Err(PlaceError::Refused(format!(
            "unknown SKU(s) {}: no Item has them in {field}",
            unknown.join(", ")
        )));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erpnext::client::decode_frappe_error;

    #[test]
    fn validation_answers_refuse_and_outages_keep_the_order_owed() {
        let refused = |status: u16| {
            matches!(
                erp_failure(decode_frappe_error(status, "{}"), "x"),
                PlaceError::Refused(_)
            )
        };
        for status in [400, 404, 409, 417] {
            assert!(refused(status), "{status}");
        }
        // The relay's credentials or ERPNext's health, not the order: try again later.
        for status in [401, 403, 429, 500, 502, 503, 504] {
            assert!(!refused(status), "{status}");
        }
        let body = r#"{"exc_type": "LinkValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Could not find Customer Group: Retail\\\"}\"]"}"#;
        let PlaceError::Refused(msg) =
            erp_failure(decode_frappe_error(417, body), "creating the customer")
        else {
            panic!("refused");
        };
        assert_eq!(
            msg,
            "creating the customer: ERPNext answered 417 (LinkValidationError): Could not find Customer Group: Retail"
        );
    }
}
