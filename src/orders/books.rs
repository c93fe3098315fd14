//! A paid order into ERPNext's books: once the shop's payments cover the order's total, a
//! submitted Sales Invoice made from the Sales Order by ERPNext's own mapping, then one
//! submitted Payment Entry per payment against it, and a comment on the Sales Order's timeline
//! for what was done. Each exactly once across crashes and redeliveries.
//!
//! ERPNext facts this relies on (ERPNext 15, measured on a live site):
//! - `make_sales_invoice` (source: the Sales Order) answers an unsaved invoice with the order's
//!   lines, taxes and discount; POSTed with `docstatus: 1` it is submitted ("Unpaid"), and the
//!   order becomes fully billed. Once the order is fully billed it maps no lines (and inserting
//!   that fails with 500 IndexError), so an empty mapping means "invoiced already".
//! - `get_payment_entry` (source: the invoice; `party_amount` for part of it, `bank_account` an
//!   Account name) answers an unsaved "Receive" entry; on a paid invoice it answers a "Pay"
//!   entry of 0 rather than an error. A Payment Entry into a Bank account needs `reference_no`.
//! - Neither `reference_no` nor an invoice's `po_no` is unique in ERPNext: the relay keeps them
//!   unique. Before a step is asked of ERPNext it is marked in progress and flushed; a step
//!   found marked (an attempt that ended in a crash or an outage) is looked up first: the
//!   invoice by its Sales Order, a payment by its `reference_no` against the invoice.
//!
//! REST calls for a paid order: the invoice mapping and insert, then per payment the entry
//! mapping and insert, then one Comment; a lookup more per step found in progress.

use serde_json::{json, Value};

use super::context::{erp_failure, OrderContext, PlaceError};
use super::money::Decimal;
use super::taxes;
use crate::config::InvoicePolicy;
use crate::orders::model::ShopOrder;
use crate::store::{BookedPayment, OrderRecord, Store, StoreError};

const MAKE_INVOICE: &str = "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice";
const MAKE_PAYMENT: &str = "erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry";

/// Where an order's books stand after [`settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing is owed: invoiced and every payment booked (or the policy books nothing).
    Done,
    /// The payments do not cover the total yet; a newer state of the order will bring more.
    AwaitingPayment { paid: Decimal, total: Decimal },
}

fn amount(v: f64, what: &str) -> Result<Decimal, PlaceError> {
    Decimal::from_f64(v, what)
        .map(Decimal::round_cents)
        .map_err(|e| PlaceError::Refused(e.to_string()))
}

fn erp_amount(v: &Value) -> Option<Decimal> {
    v.as_f64()
        .and_then(|g| Decimal::from_f64(g, "amount").ok())
        .map(Decimal::round_cents)
}

/// Takes into `record` a newer state of its order stored meanwhile (a delivery while an
/// attempt runs); true when there was one.
pub async fn adopt_newer_state(
    store: &Store,
    record: &mut OrderRecord,
) -> Result<bool, StoreError> {
    let Some(current) = store.order(&record.order_id).await? else {
        return Ok(false);
    };
    if current.books.version > record.books.version {
        record.order = current.order;
        record.books.version = current.books.version;
        record.books.updated_at = current.books.updated_at;
        return Ok(true);
    }
    Ok(false)
}

/// Saves the record (keeping a newer state stored meanwhile) and waits until it is on disk.
async fn flush(store: &Store, record: &mut OrderRecord) -> Result<(), StoreError> {
    adopt_newer_state(store, record).await?;
    store.save_order(record).await?;
    store.durable().await
}

/// The UTC date (`YYYY-MM-DD`) of an RFC 3339 date-time.
fn date_of(text: Option<&str>) -> Option<String> {
    let t = text?;
    super::sales_order::utc_day(t).map(super::sales_order::iso_date)
}

/// Brings the record's books up to the order's state: called once the Sales Order
/// `record.sales_order` exists. Flushes the record before every create it asks of ERPNext.
pub async fn settle(
    ctx: &OrderContext,
    store: &Store,
    record: &mut OrderRecord,
    order: &ShopOrder,
) -> Result<Result<Settled, PlaceError>, StoreError> {
    let out = settle_steps(ctx, store, record, order).await;
    // Whatever happened, tell the timeline what was done (best effort: it is a note).
    if !record.books.untold.is_empty() {
        if let Some(so) = record.sales_order.clone() {
            let text = format!(
                "shoprelay, shop order {}: {}",
                order.order_id,
                record.books.untold.join("; ")
            );
            let body = json!({"comment_type": "Comment", "reference_doctype": "Sales Order",
                              "reference_name": so, "content": text});
            match ctx.erp.save_doc("Comment", None, &body).await {
                Ok(_) => {
                    record.books.untold.clear();
                    flush(store, record).await?;
                }
                Err(e) => {
                    tracing::warn!(order_id = %order.order_id, error = %e, "could not comment on the Sales Order; will try again")
                }
            }
        }
    }
    out
}

async fn settle_steps(
    ctx: &OrderContext,
    store: &Store,
    record: &mut OrderRecord,
    order: &ShopOrder,
) -> Result<Result<Settled, PlaceError>, StoreError> {
    if ctx.settings.invoice == InvoicePolicy::Never {
        record.books.owed = None;
        return Ok(Ok(Settled::Done));
    }
    let total = match taxes::price(order, &ctx.settings.tax_accounts) {
        Ok(m) => m.money.total,
        Err(e) => return Ok(Err(PlaceError::Refused(e.to_string()))),
    };
    // The payments as the relay books them, in the shop's order; known ones keep their marks.
    let mut paid = Decimal::ZERO;
    let mut payments = Vec::with_capacity(order.payments.len());
    for (i, p) in order.payments.iter().enumerate() {
        let a = match amount(p.amount, &format!("payments[{i}].amount")) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        paid = paid + a;
        let known = record.books.payments.iter().find(|b| b.id == p.id).cloned();
        let method = p.method.trim().to_lowercase();
        payments.push(known.unwrap_or_else(|| BookedPayment {
            id: p.id.clone(),
            unpaid: ctx.settings.unpaid_methods.contains(&method),
            method,
            amount: a.to_string(),
            entry: None,
            in_progress: false,
        }));
    }
    // Payments the relay booked before and the shop no longer lists stay on record.
    for b in &record.books.payments {
        if !payments.iter().any(|p| p.id == b.id) {
            payments.push(b.clone());
        }
    }
    record.books.payments = payments;
    if paid < total {
        record.books.owed = Some(format!(
            "awaiting payment: {paid} of {total} paid; the invoice is made once the payments cover the total"
        ));
        return Ok(Ok(Settled::AwaitingPayment { paid, total }));
    }
    let Some(so) = record.sales_order.clone() else {
        return Ok(Err(PlaceError::Refused(
            "the order has no Sales Order yet".into(),
        )));
    };
    let invoice = match record.books.invoice.clone() {
        Some(i) => i,
        None => match invoice(ctx, store, record, order, &so, total).await? {
            Ok(i) => i,
            Err(e) => {
                record.books.owed = Some(format!("the invoice: {e}"));
                return Ok(Err(e));
            }
        },
    };
    for i in 0..record.books.payments.len() {
        let p = record.books.payments[i].clone();
        if p.entry.is_some() || p.unpaid || p.amount == Decimal::ZERO.to_string() {
            continue;
        }
        let Some(shop) = order.payments.iter().find(|s| s.id == p.id) else {
            continue;
        };
        if let Err(e) = payment(ctx, store, record, order, &invoice, i, shop).await? {
            record.books.owed = Some(format!("payment {}: {e}", p.id));
            return Ok(Err(e));
        }
    }
    record.books.owed = None;
    Ok(Ok(Settled::Done))
}

/// The order's submitted Sales Invoice: found (when a step was in progress) or made.
async fn invoice(
    ctx: &OrderContext,
    store: &Store,
    record: &mut OrderRecord,
    order: &ShopOrder,
    so: &str,
    total: Decimal,
) -> Result<Result<String, PlaceError>, StoreError> {
    let found = if record.books.invoicing {
        match find_invoice(ctx, so).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        }
    } else {
        None
    };
    let (name, grand) = match found {
        Some(found) => found,
        None => {
            record.books.invoicing = true;
            flush(store, record).await?;
            match make_invoice(ctx, so, order).await {
                Ok(Some(made)) => made,
                // Mapped nothing: the order is billed already (by an earlier attempt or by hand).
                Ok(None) => match find_invoice(ctx, so).await {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        return Ok(Err(PlaceError::Refused(format!(
                            "Sales Order {so} is fully billed, but by no submitted Sales Invoice the relay can find"
                        ))))
                    }
                    Err(e) => return Ok(Err(e)),
                },
                Err(e) => return Ok(Err(e)),
            }
        }
    };
    record.books.invoice = Some(name.clone());
    record.books.invoicing = false;
    record
        .books
        .untold
        .push(format!("invoice {name}, {} {grand}", order.currency));
    flush(store, record).await?;
    if grand != total {
        return Ok(Err(PlaceError::Refused(format!(
            "ERPNext's invoice {name} has grand total {grand}, the shop's total is {total}"
        ))));
    }
    tracing::info!(order_id = %order.order_id, invoice = %name, "invoiced the shop order");
    Ok(Ok(name))
}

/// The submitted (or draft, then submitted) Sales Invoice of Sales Order `so`.
async fn find_invoice(
    ctx: &OrderContext,
    so: &str,
) -> Result<Option<(String, Decimal)>, PlaceError> {
    let rows: Vec<Value> = ctx
        .erp
        .list_page(
            "Sales Invoice",
            &["name", "docstatus", "grand_total"],
            &json!([
                ["Sales Invoice Item", "sales_order", "=", so],
                ["docstatus", "<", 2],
                ["is_return", "=", 0]
            ]),
            "`tabSales Invoice`.`creation` asc",
            0,
            20,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the Sales Invoice of the Sales Order"))?;
    let Some(row) = rows
        .iter()
        .find(|r| r["docstatus"].as_i64() == Some(1))
        .or_else(|| rows.first())
    else {
        return Ok(None);
    };
    let name = row["name"].as_str().unwrap_or_default().to_owned();
    if row["docstatus"].as_i64() == Some(0) {
        ctx.erp
            .save_doc("Sales Invoice", Some(&name), &json!({"docstatus": 1}))
            .await
            .map_err(|e| erp_failure(e, "submitting the draft Sales Invoice"))?;
    }
    Ok(Some((
        name,
        erp_amount(&row["grand_total"]).unwrap_or_default(),
    )))
}

/// Maps the Sales Order to an invoice and submits it; None when ERPNext mapped no lines.
async fn make_invoice(
    ctx: &OrderContext,
    so: &str,
    order: &ShopOrder,
) -> Result<Option<(String, Decimal)>, PlaceError> {
    let mut doc = ctx
        .erp
        .post_method(MAKE_INVOICE, &json!({"source_name": so}))
        .await
        .map_err(|e| erp_failure(e, "mapping the Sales Order to a Sales Invoice"))?;
    if doc["items"].as_array().is_none_or(Vec::is_empty) {
        return Ok(None);
    }
    doc["docstatus"] = json!(1);
    doc["remarks"] = json!(format!("Shop order {}", order.order_id));
    let saved = ctx
        .erp
        .save_doc("Sales Invoice", None, &doc)
        .await
        .map_err(|e| erp_failure(e, "creating the Sales Invoice"))?;
    let name = saved["name"].as_str().unwrap_or_default().to_owned();
    Ok(Some((
        name,
        erp_amount(&saved["grand_total"]).unwrap_or_default(),
    )))
}

/// Books payment `record.books.payments[i]` against `invoice`: found (when in progress) or made.
async fn payment(
    ctx: &OrderContext,
    store: &Store,
    record: &mut OrderRecord,
    order: &ShopOrder,
    invoice: &str,
    i: usize,
    shop: &crate::orders::model::OrderPayment,
) -> Result<Result<String, PlaceError>, StoreError> {
    let p = record.books.payments[i].clone();
    let found = if p.in_progress {
        match find_payment(ctx, invoice, &p.id).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        }
    } else {
        None
    };
    let name = match found {
        Some(name) => name,
        None => {
            let target = ctx
                .settings
                .payment_accounts
                .get(&p.method)
                .or_else(|| ctx.settings.payment_accounts.get("default"));
            if target.is_none() && !ctx.settings.payment_accounts.is_empty() {
                return Ok(Err(PlaceError::Refused(format!(
                    "payment method `{}` has no account: map it in [orders.payment_accounts] (or set a `default` there), then retry the order",
                    p.method
                ))));
            }
            record.books.payments[i].in_progress = true;
            flush(store, record).await?;
            let mut args = json!({"dt": "Sales Invoice", "dn": invoice, "party_amount": amount_f64(&p.amount)});
            if let Some(t) = target {
                args["bank_account"] = json!(t.account());
            }
            let made = async {
                let mut pe = ctx
                    .erp
                    .post_method(MAKE_PAYMENT, &args)
                    .await
                    .map_err(|e| erp_failure(e, "mapping the Sales Invoice to a Payment Entry"))?;
                if pe["payment_type"].as_str() != Some("Receive") {
                    return Err(PlaceError::Refused(format!(
                        "Sales Invoice {invoice} has nothing left to pay, so payment {} ({}) was not booked; was it paid in ERPNext by hand?",
                        p.id, p.amount
                    )));
                }
                let value = amount_f64(&p.amount);
                if erp_amount(&pe["paid_amount"]) != Decimal::from_f64(value, "amount").ok() {
                    // More than is outstanding: the rest stays unallocated on the entry.
                    pe["paid_amount"] = json!(value);
                    pe["received_amount"] = json!(value);
                }
                pe["reference_no"] = json!(p.id);
                if let Some(day) = date_of(shop.paid_at.as_deref()).or_else(|| date_of(Some(&order.placed_at))) {
                    pe["reference_date"] = json!(day);
                }
                if let Some(mode) = target.and_then(|t| t.mode_of_payment()) {
                    pe["mode_of_payment"] = json!(mode);
                }
                pe["remarks"] = json!(format!(
                    "Shop order {}, payment {} ({}{})",
                    order.order_id,
                    p.id,
                    shop.method,
                    shop.reference.as_deref().map(|r| format!(", {r}")).unwrap_or_default()
                ));
                pe["docstatus"] = json!(1);
                let saved = ctx
                    .erp
                    .save_doc("Payment Entry", None, &pe)
                    .await
                    .map_err(|e| erp_failure(e, "creating the Payment Entry"))?;
                Ok(saved["name"].as_str().unwrap_or_default().to_owned())
            }
            .await;
            match made {
                Ok(name) => name,
                Err(e) => {
                    // A refusal made nothing: the next attempt need not look first.
                    if matches!(e, PlaceError::Refused(_)) {
                        record.books.payments[i].in_progress = false;
                        flush(store, record).await?;
                    }
                    return Ok(Err(e));
                }
            }
        }
    };
    record.books.payments[i].entry = Some(name.clone());
    record.books.payments[i].in_progress = false;
    record.books.untold.push(format!(
        "payment {}, {}, {} → {name}",
        p.id, shop.method, p.amount
    ));
    flush(store, record).await?;
    tracing::info!(order_id = %order.order_id, payment = %p.id, entry = %name, "booked the shop payment");
    Ok(Ok(name))
}

fn amount_f64(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// The Payment Entry (not cancelled) with `reference_no` = `id` against `invoice`.
async fn find_payment(
    ctx: &OrderContext,
    invoice: &str,
    id: &str,
) -> Result<Option<String>, PlaceError> {
    let rows: Vec<Value> = ctx
        .erp
        .list_page(
            "Payment Entry",
            &["name", "docstatus", "reference_no"],
            &json!([
                ["reference_no", "=", id],
                ["Payment Entry Reference", "reference_name", "=", invoice],
                ["docstatus", "<", 2]
            ]),
            "`tabPayment Entry`.`creation` asc",
            0,
            20,
        )
        .await
        .map_err(|e| erp_failure(e, "looking up the Payment Entry by the payment id"))?;
    // ERPNext compares case-insensitively and ignores trailing spaces; the id must be exact.
    let Some(row) = rows.iter().find(|r| r["reference_no"].as_str() == Some(id)) else {
        return Ok(None);
    };
    let name = row["name"].as_str().unwrap_or_default().to_owned();
    if row["docstatus"].as_i64() == Some(0) {
        ctx.erp
            .save_doc("Payment Entry", Some(&name), &json!({"docstatus": 1}))
            .await
            .map_err(|e| erp_failure(e, "submitting the draft Payment Entry"))?;
    }
    Ok(Some(name))
}
