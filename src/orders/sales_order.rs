//! Pure: the Sales Order body for a shop order, and the dates it carries.
//!
//! What ERPNext 15 does with such a body, and why it is built this way:
//! - A line with only `rate` gets the Item Price as `price_list_rate`; a `rate` of 0 is replaced
//!   by the list price; an active Pricing Rule replaces the rate unless the document says
//!   `ignore_pricing_rule: 1`. So every line carries `price_list_rate` and the final per-unit
//!   `rate`, a free line is a 100 % `discount_percentage`, and the document ignores pricing rules.
//! - The order discount is the document's `discount_amount` on the net total; shipping is an
//!   "Actual" taxes row on a configured account (a description is mandatory), and so is each
//!   shop tax (see `taxes`). The document discount is never taken off an "Actual" charge.
//! - A Sales Order POSTed with `docstatus: 1` is submitted (stock is reserved), but ERPNext does
//!   not compute its status while inserting: it would stay "Draft" and its title would read
//!   `{customer_name}`. The body therefore carries the status a freshly submitted order has,
//!   "To Deliver and Bill", and a title; one request instead of a POST and a PUT.
//! - `delivery_date` may not be before `transaction_date`: both are derived from `placed_at`.

use serde_json::{json, Map, Value};

use super::context::{map_fields, OrderContext};
use super::customer::CustomerRef;
use super::taxes::TaxedMoney;
use crate::model::{civil_from_days, rfc3339};
use crate::orders::model::ShopOrder;

/// A Sales Order body and the mapped fields to find again in ERPNext's answer.
#[derive(Debug, Clone)]
pub(crate) struct SalesOrderBody {
    pub body: Value,
    /// Mapped order fields sent with a value.
    pub order_fields: Vec<String>,
    /// Per line, mapped line fields sent with a value.
    pub line_fields: Vec<Vec<String>>,
}

/// The UTC day (days since 1970-01-01) of an RFC 3339 date-time such as
/// `2026-11-29T23:30:00.5-02:00`.
pub(crate) fn utc_day(placed_at: &str) -> Option<i64> {
    let (secs, _) = rfc3339(placed_at.trim())?;
    Some(secs.div_euclid(86_400))
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Builds the Sales Order for `order`: `items[i]` is the item code of line i.
pub(crate) fn build(
    ctx: &OrderContext,
    order: &ShopOrder,
    taxed: &TaxedMoney,
    customer: &CustomerRef,
    items: &[String],
    warehouse: Option<&str>,
) -> Result<SalesOrderBody, String> {
    let day = utc_day(&order.placed_at).ok_or_else(|| {
        format!(
            "placed_at {:?} is not an RFC 3339 date-time",
            order.placed_at
        )
    })?;
    let settings = &ctx.settings;
    let money = &taxed.money;
    let mut lines = Vec::with_capacity(order.lines.len());
    let mut line_fields = Vec::with_capacity(order.lines.len());
    for ((line, price), item) in order.lines.iter().zip(&money.lines).zip(items) {
        let mut row = Map::new();
        row.insert("item_code".into(), json!(item));
        row.insert("qty".into(), json!(price.qty.to_f64()));
        row.insert(
            "price_list_rate".into(),
            json!(price.price_list_rate.to_f64()),
        );
        if price.free {
            row.insert("discount_percentage".into(), json!(100));
        }
        row.insert("rate".into(), json!(price.rate.to_f64()));
        if let Some(wh) = warehouse {
            row.insert("warehouse".into(), json!(wh));
        }
        line_fields.push(map_fields(&settings.fields.line, &line.fields, &mut row));
        lines.push(Value::Object(row));
    }
    let mut body = Map::new();
    for (k, v) in [
        ("customer", json!(customer.name)),
        (
            "title",
            json!(format!("{} {}", customer.name, order.order_id)),
        ),
        ("order_type", json!("Sales")),
        ("transaction_date", json!(iso_date(day))),
        (
            "delivery_date",
            json!(iso_date(day + i64::from(settings.lead_time_days))),
        ),
        (ctx.order_id_field.as_str(), json!(order.order_id)),
        ("currency", json!(order.currency.trim().to_uppercase())),
        ("ignore_pricing_rule", json!(1)),
        ("items", Value::Array(lines)),
    ] {
        body.insert(k.into(), v);
    }
    if let Some(addr) = &customer.shipping_address {
        body.insert("shipping_address_name".into(), json!(addr));
    }
    if let Some(wh) = warehouse {
        body.insert("set_warehouse".into(), json!(wh));
    }
    if !money.discount_amount.is_zero() {
        body.insert("apply_discount_on".into(), json!("Net Total"));
        body.insert(
            "discount_amount".into(),
            json!(money.discount_amount.to_f64()),
        );
    }
    let mut taxes = Vec::new();
    if !money.shipping.is_zero() {
        let account = settings
            .shipping_account
            .as_deref()
            .ok_or("the order charges shipping but orders.shipping_account is not configured")?;
        let method = order
            .shipping
            .as_ref()
            .map(|s| s.method.trim())
            .filter(|m| !m.is_empty())
            .unwrap_or("shop");
        taxes.push(json!({
            "charge_type": "Actual",
            "account_head": account,
            "description": format!("Shipping ({method})"),
            "tax_amount": money.shipping.to_f64(),
        }));
    }
    for t in &taxed.taxes {
        taxes.push(json!({
            "charge_type": "Actual",
            "account_head": t.account,
            "description": t.title,
            "tax_amount": t.amount.to_f64(),
        }));
    }
    // Rows sent: no template's taxes are merged in. An empty link keeps a default template
    // from being named on the order.
    body.insert("taxes_and_charges".into(), json!(""));
    if !taxes.is_empty() {
        body.insert("taxes".into(), Value::Array(taxes));
    }
    if settings.submit {
        body.insert("docstatus".into(), json!(1));
        body.insert("status".into(), json!("To Deliver and Bill"));
    }
    let order_fields = map_fields(&settings.fields.order, &order.fields, &mut body);
    Ok(SalesOrderBody {
        body: Value::Object(body),
        order_fields,
        line_fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_at_becomes_its_utc_date() {
        let day = |s| utc_day(s).map(iso_date);
        assert_eq!(day("2026-11-29T10:00:00Z").as_deref(), Some("2026-11-29"));
        assert_eq!(
            day("2026-11-29T23:30:00.25-02:00").as_deref(),
            Some("2026-11-30")
        );
        assert_eq!(
            day("2026-03-01T00:30:00+01:00").as_deref(),
            Some("2026-02-28")
        );
        assert_eq!(
            day("2024-02-28T23:00:00-01:00").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            utc_day("2026-12-31T12:00:00Z").map(|d| iso_date(d + 3)),
            Some("2027-01-03".into())
        );
        for bad in [
            "",
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "2026-11-29T10:00:00",
        ] {
            assert_eq!(utc_day(bad), None, "{bad}");
        }
    }
}
