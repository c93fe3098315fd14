//! The emulator's books: the taxes and totals of a Sales Order or Sales Invoice, Sales Invoices
//! made from a Sales Order, Payment Entries made from an invoice, Comments and Modes of Payment,
//! answering as ERPNext 15 answers over REST (measured on a live 15.71 site):
//!
//! - Taxes rows: "Actual" rows are booked as sent (a description is mandatory, the account must
//!   belong to the company, and an "Actual" row may not be `included_in_print_rate`: 417).
//!   "On Net Total" rows charge `rate` % of the net total; when `included_in_print_rate`, the
//!   lines carry gross prices and ERPNext rounds each line's net (`round(gross / (1 + rates),
//!   2)`), computes the tax as `round(Σ net × rate)` and forces the grand total to the gross
//!   total only when the two differ by at most 0.05. So the tax is often 0.01 off the shop's,
//!   and with many lines the grand total itself is wrong (12 lines of 2.98 at 19 %: 35.70, not
//!   35.76). A line's `item_tax_template` (sent, or the Item's) overrides a row's rate for its
//!   accounts; items with a template and a body with no taxes rows get one exclusive
//!   "On Net Total" row per template account, added by ERPNext itself.
//! - The document discount (`discount_amount`, negative accepted) comes off the net total
//!   ("Net Total", the default) or off the grand total ("Grand Total", with inclusive taxes the
//!   tax is then taken from the discounted gross); it never touches an "Actual" row.
//! - `make_sales_invoice` maps a submitted Sales Order (else 417 "Cannot map…"); once the order
//!   is fully billed it maps no lines, and inserting that answers 500 IndexError. Inserting an
//!   invoice of a Closed order answers 417. A submitted invoice is "Unpaid" with the grand total
//!   outstanding (the insert's answer still says "Draft"), and bills its order (`per_billed`).
//! - `get_payment_entry` on an invoice answers an unsaved "Receive" entry for the outstanding
//!   amount (or `party_amount`) into "Bank Account - ACME" (or `bank_account`, an Account
//!   name); on a paid invoice, a "Pay" entry of 0. A Payment Entry into a Bank account needs
//!   `reference_no` (417); submitted, it lowers the invoice's outstanding amount ("Partly Paid",
//!   "Paid"). Neither `reference_no` nor `po_no` is unique.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{frappe_error, guarded, Shared, State};

/// What the books side of the emulator holds besides documents.
#[derive(Default)]
pub(super) struct Books {
    /// The next insert of this doctype is refused with 417 and this message (a closed
    /// accounting period, a missing exchange rate...).
    refuse_next: Vec<(String, String)>,
}

pub(super) const COMPANY: &str = "ACME";
const DEBTORS: &str = "Debtors - ACME";
const BANK: &str = "Bank Account - ACME";
const TODAY: &str = "2026-11-29";

pub(super) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(0.0)
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Seeds the accounts and Modes of Payment of company ACME.
pub(super) fn seed(st: &mut State) {
    for (name, kind, group, root) in [
        ("Debtors - ACME", "Receivable", 0, "Asset"),
        ("Bank Account - ACME", "Bank", 0, "Asset"),
        ("Round Off - ACME", "Round Off", 0, "Expense"),
        ("Duties and Taxes - ACME", "Tax", 1, "Liability"),
        ("ST 6% - ACME", "Tax", 0, "Liability"),
    ] {
        put_account(st, name, kind, group == 1, root);
    }
    for (name, kind) in [
        ("Cash", "Cash"),
        ("Credit Card", "Bank"),
        ("Wire Transfer", "Bank"),
        ("Bank Draft", "Bank"),
        ("Check", "Bank"),
    ] {
        st.docs.insert(
            ("Mode of Payment".into(), name.into()),
            json!({"name": name, "doctype": "Mode of Payment", "mode_of_payment": name,
                   "type": kind, "enabled": 1, "docstatus": 0}),
        );
    }
}

fn put_account(st: &mut State, name: &str, kind: &str, group: bool, root: &str) {
    st.docs.insert(
        ("Account".into(), name.into()),
        json!({"name": name, "doctype": "Account", "company": COMPANY, "is_group": i64::from(group),
               "account_type": kind, "root_type": root, "docstatus": 0,
               "modified": "2026-01-01 00:00:00"}),
    );
}

/// The doctypes this module serves (list, insert, get).
pub(super) fn serves(doctype: &str) -> bool {
    matches!(
        doctype,
        "Sales Invoice" | "Payment Entry" | "Comment" | "Mode of Payment"
    )
}

/// The totals ERPNext computes for a document's items, taxes rows and discount.
pub(super) struct Totals {
    pub total: f64,
    pub net_total: f64,
    pub taxes: Vec<Value>,
    pub total_taxes: f64,
    pub discount: f64,
    pub grand_total: f64,
}

/// A line's rate for a taxes row's account: its item tax template's, else the row's.
fn line_rate(st: &State, line: &Map<String, Value>, account: &str, row_rate: f64) -> f64 {
    let template = text(line, "item_tax_template")
        .map(str::to_owned)
        .or_else(|| {
            let code = text(line, "item_code")?;
            st.docs
                .get(&("Item".to_owned(), code.to_owned()))?
                .get("item_tax_template")?
                .as_str()
                .map(str::to_owned)
        });
    template
        .and_then(|t| st.docs.get(&("Item Tax Template".to_owned(), t)))
        .and_then(|t| t["taxes"].as_array().cloned())
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["tax_type"].as_str() == Some(account))
                .and_then(|r| r["tax_rate"].as_f64())
        })
        .unwrap_or(row_rate)
}

/// The rows ERPNext adds by itself for items with an item tax template when the body has none.
fn template_rows(st: &State, items: &[Map<String, Value>]) -> Vec<Value> {
    let mut accounts: Vec<String> = Vec::new();
    for line in items {
        let template = text(line, "item_tax_template")
            .map(str::to_owned)
            .or_else(|| {
                let code = text(line, "item_code")?;
                st.docs
                    .get(&("Item".to_owned(), code.to_owned()))?
                    .get("item_tax_template")?
                    .as_str()
                    .map(str::to_owned)
            });
        let rows = template
            .and_then(|t| st.docs.get(&("Item Tax Template".to_owned(), t)))
            .and_then(|t| t["taxes"].as_array().cloned())
            .unwrap_or_default();
        for r in rows {
            if let Some(a) = r["tax_type"].as_str() {
                if !accounts.iter().any(|x| x == a) {
                    accounts.push(a.to_owned());
                }
            }
        }
    }
    accounts
        .into_iter()
        .map(|a| {
            json!({"charge_type": "On Net Total", "account_head": a, "description": a,
                   "rate": 0, "included_in_print_rate": 0})
        })
        .collect()
}

/// Computes the totals of `items` (each with `rate` and `qty`; `amount`, `net_rate`,
/// `net_amount` are written back) under `doc`'s taxes rows and discount, as ERPNext does.
pub(super) fn totals(
    st: &State,
    doc: &Map<String, Value>,
    items: &mut [Map<String, Value>],
    site_charge: f64,
) -> Result<Totals, Box<HttpResponse>> {
    let mut rows: Vec<Map<String, Value>> = doc
        .get("taxes")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default();
    if rows.is_empty() {
        rows = template_rows(st, items)
            .into_iter()
            .filter_map(|v| v.as_object().cloned())
            .collect();
    }
    for (i, t) in rows.iter().enumerate() {
        if text(t, "description").is_none() {
            return Err(Box::new(frappe_error(
                417,
                "MandatoryError",
                &format!(
                    "Error: Value missing for Sales Taxes and Charges: Description (row {})",
                    i + 1
                ),
            )));
        }
        let account = text(t, "account_head").unwrap_or_default();
        let acc = st.docs.get(&("Account".to_owned(), account.to_owned()));
        if !acc.is_some_and(|a| a["company"] == json!(COMPANY)) {
            return Err(Box::new(frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Row #{}: Account {account} does not belong to company {COMPANY}",
                    i + 1
                ),
            )));
        }
        let charge = text(t, "charge_type").unwrap_or("Actual");
        if charge == "Actual" && num(t.get("included_in_print_rate")) == 1.0 {
            return Err(Box::new(frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Charge of type 'Actual' in row {} cannot be included in Item Rate or Paid Amount",
                    i + 1
                ),
            )));
        }
    }
    let inclusive = |t: &Map<String, Value>| {
        text(t, "charge_type") == Some("On Net Total")
            && num(t.get("included_in_print_rate")) == 1.0
    };
    // Each line's amount, and its net once the inclusive rates are taken out.
    let mut total = 0.0;
    let mut gross_total = 0.0;
    for line in items.iter_mut() {
        let amount = round2(num(line.get("rate")) * num(line.get("qty")));
        let incl: f64 = rows
            .iter()
            .filter(|t| inclusive(t))
            .map(|t| {
                line_rate(
                    st,
                    line,
                    text(t, "account_head").unwrap_or_default(),
                    num(t.get("rate")),
                )
            })
            .sum();
        let net = round2(amount / (1.0 + incl / 100.0));
        let qty = num(line.get("qty"));
        line.insert("amount".into(), json!(amount));
        line.insert("net_amount".into(), json!(net));
        line.insert(
            "net_rate".into(),
            json!(if qty != 0.0 { round2(net / qty) } else { 0.0 }),
        );
        total += amount;
        gross_total += amount;
    }
    let total = round2(total);
    let mut net_total = round2(items.iter().map(|l| num(l.get("net_amount"))).sum());
    let discount = round2(num(doc.get("discount_amount")));
    let on_grand = text(doc, "apply_discount_on") == Some("Grand Total");
    let any_inclusive = rows.iter().any(inclusive);
    if !on_grand && discount != 0.0 && net_total != 0.0 {
        // Spread over the lines by net amount; the On Net Total taxes follow the discounted net.
        let factor = (net_total - discount) / net_total;
        for line in items.iter_mut() {
            let n = round2(num(line.get("net_amount")) * factor);
            line.insert("net_amount".into(), json!(n));
        }
        net_total = round2(net_total - discount);
    }
    let mut out_rows = Vec::with_capacity(rows.len());
    let mut running = net_total;
    let mut tax_total = 0.0;
    for t in &rows {
        let account = text(t, "account_head").unwrap_or_default().to_owned();
        let amount = match text(t, "charge_type").unwrap_or("Actual") {
            "On Net Total" => {
                let rate = num(t.get("rate"));
                let sum: f64 = items
                    .iter()
                    .map(|l| num(l.get("net_amount")) * line_rate(st, l, &account, rate) / 100.0)
                    .sum();
                round2(sum)
            }
            _ => round2(num(t.get("tax_amount"))),
        };
        tax_total += amount;
        running = round2(running + amount);
        let mut row = t.clone();
        row.insert("doctype".into(), json!("Sales Taxes and Charges"));
        row.insert("tax_amount".into(), json!(amount));
        row.insert("total".into(), json!(running));
        out_rows.push(Value::Object(row));
    }
    let tax_total = round2(tax_total);
    let mut grand = round2(net_total + tax_total + site_charge);
    if on_grand && discount != 0.0 {
        grand = round2(gross_total + tax_total_exclusive(&out_rows) - discount + site_charge);
        if any_inclusive {
            // The inclusive tax is taken again from the discounted gross.
            let rate: f64 = rows
                .iter()
                .filter(|t| inclusive(t))
                .map(|t| num(t.get("rate")))
                .sum();
            let tax = round2(grand * rate / (100.0 + rate));
            let exclusive = tax_total_exclusive(&out_rows);
            net_total = round2(grand - tax - exclusive);
            return Ok(Totals {
                total,
                net_total,
                taxes: out_rows,
                total_taxes: round2(tax + exclusive),
                discount,
                grand_total: grand,
            });
        }
    } else if any_inclusive && discount == 0.0 {
        // adjust_grand_total_for_inclusive_tax: within 0.05 the gross total wins.
        let gross = round2(gross_total + tax_total_exclusive(&out_rows) + site_charge);
        if (gross - grand).abs() <= 0.05 + 1e-9 {
            grand = gross;
        }
    }
    Ok(Totals {
        total,
        net_total,
        taxes: out_rows,
        total_taxes: tax_total,
        discount,
        grand_total: grand,
    })
}

/// The tax rows not included in the prices (Actual rows and exclusive On Net Total rows).
fn tax_total_exclusive(rows: &[Value]) -> f64 {
    round2(
        rows.iter()
            .filter(|r| {
                !(r["charge_type"].as_str() == Some("On Net Total")
                    && r["included_in_print_rate"].as_f64() == Some(1.0))
            })
            .map(|r| r["tax_amount"].as_f64().unwrap_or(0.0))
            .sum(),
    )
}

fn refused(st: &mut State, doctype: &str) -> Option<HttpResponse> {
    let at = st
        .books
        .refuse_next
        .iter()
        .position(|(d, _)| d == doctype)?;
    let (_, message) = st.books.refuse_next.remove(at);
    Some(frappe_error(417, "ValidationError", &message))
}

/// `POST /api/method/erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice`.
pub(super) async fn make_sales_invoice(
    req: HttpRequest,
    body: web::Bytes,
    state: Shared,
) -> HttpResponse {
    let args: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let st = match guarded(&req, &state, "Sales Order") {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    let name = args["source_name"].as_str().unwrap_or_default();
    let Some(so) = st.docs.get(&("Sales Order".to_owned(), name.to_owned())) else {
        return frappe_error(
            404,
            "DoesNotExistError",
            &format!("Sales Order {name} not found"),
        );
    };
    if so["docstatus"].as_i64() != Some(1) {
        return frappe_error(
            417,
            "ValidationError",
            "Cannot map because following condition fails: docstatus=1",
        );
    }
    let billed = so["per_billed"].as_f64().unwrap_or(0.0) >= 100.0;
    let items: Vec<Value> = if billed {
        Vec::new()
    } else {
        so["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                json!({"doctype": "Sales Invoice Item", "item_code": r["item_code"],
                       "item_name": r["item_name"], "qty": r["qty"], "rate": r["rate"],
                       "price_list_rate": r["price_list_rate"], "amount": r["amount"],
                       "net_amount": r["net_amount"], "warehouse": r["warehouse"],
                       "item_tax_template": r["item_tax_template"],
                       "discount_percentage": r["discount_percentage"],
                       "income_account": "Sales - ACME", "sales_order": name,
                       "so_detail": r["name"]})
            })
            .collect()
    };
    let mut doc = json!({
        "doctype": "Sales Invoice", "__islocal": 1, "name": null, "docstatus": 0,
        "naming_series": "ACC-SINV-.YYYY.-", "company": COMPANY,
        "customer": so["customer"], "customer_name": so["customer_name"],
        "debit_to": DEBTORS, "posting_date": TODAY, "due_date": TODAY, "update_stock": 0,
        "po_no": so["po_no"], "currency": so["currency"], "ignore_pricing_rule": 1,
        "apply_discount_on": so["apply_discount_on"], "discount_amount": so["discount_amount"],
        "taxes": so["taxes"], "items": items,
        "total": so["total"], "net_total": so["net_total"],
        "total_taxes_and_charges": so["total_taxes_and_charges"],
        "grand_total": so["grand_total"], "rounded_total": so["rounded_total"],
        "outstanding_amount": so["grand_total"],
    });
    if billed {
        doc["total"] = json!(0.0);
    }
    HttpResponse::Ok().json(json!({ "message": doc }))
}

fn insert_sales_invoice(st: &mut State, body: Map<String, Value>) -> HttpResponse {
    let items: Vec<Map<String, Value>> = body
        .get("items")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default();
    let Some(first) = items.first() else {
        return frappe_error(500, "IndexError", "list index out of range");
    };
    let so_name = text(first, "sales_order").map(str::to_owned);
    if let Some(so_name) = &so_name {
        let closed = st
            .docs
            .get(&("Sales Order".to_owned(), so_name.clone()))
            .is_some_and(|so| so["status"].as_str() == Some("Closed"));
        if closed {
            return frappe_error(
                417,
                "ValidationError",
                &format!("Sales Order {so_name} is Closed"),
            );
        }
    }
    if let Some(refusal) = refused(st, "Sales Invoice") {
        return refusal;
    }
    let mut items = items;
    let t = match totals(st, &body, &mut items, 0.0) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let docstatus = num(body.get("docstatus")) as i64;
    let prefix = body
        .get("naming_series")
        .and_then(Value::as_str)
        .filter(|s| !s.contains(".YYYY."))
        .map_or_else(|| "ACC-SINV-2026-".to_owned(), str::to_owned);
    let name = st.next_name(&prefix);
    let modified = st.tick();
    let mut doc = body.clone();
    doc.remove("__islocal");
    for (k, v) in [
        ("name", json!(name)),
        ("doctype", json!("Sales Invoice")),
        ("docstatus", json!(docstatus)),
        ("creation", json!(modified)),
        ("modified", json!(modified)),
        ("owner", json!("Administrator")),
        ("total", json!(t.total)),
        ("net_total", json!(t.net_total)),
        ("discount_amount", json!(t.discount)),
        ("total_taxes_and_charges", json!(t.total_taxes)),
        ("grand_total", json!(t.grand_total)),
        ("rounded_total", json!(t.grand_total)),
        ("outstanding_amount", json!(t.grand_total)),
        ("is_return", json!(0)),
        ("taxes", Value::Array(t.taxes)),
        (
            "items",
            Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut r)| {
                        r.insert("doctype".into(), json!("Sales Invoice Item"));
                        r.insert("name".into(), json!(format!("{name}-{}", i + 1)));
                        r.insert("parent".into(), json!(name));
                        Value::Object(r)
                    })
                    .collect(),
            ),
        ),
    ] {
        doc.insert(k.into(), v);
    }
    let answer_status = "Draft";
    doc.insert(
        "status".into(),
        json!(if docstatus == 1 { "Unpaid" } else { "Draft" }),
    );
    let stored = Value::Object(doc.clone());
    st.docs
        .insert(("Sales Invoice".into(), name.clone()), stored);
    if docstatus == 1 {
        if let Some(so_name) = so_name {
            if let Some(Value::Object(so)) = st.docs.get_mut(&("Sales Order".to_owned(), so_name)) {
                so.insert("per_billed".into(), json!(100.0));
                so.insert("billing_status".into(), json!("Fully Billed"));
                let delivered = so
                    .get("per_delivered")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let status = if delivered >= 100.0 {
                    "Completed"
                } else {
                    "To Deliver"
                };
                so.insert("status".into(), json!(status));
            }
        }
    }
    doc.insert("status".into(), json!(answer_status));
    HttpResponse::Ok().json(json!({ "data": Value::Object(doc) }))
}

/// `POST /api/method/erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry`.
pub(super) async fn get_payment_entry(
    req: HttpRequest,
    body: web::Bytes,
    state: Shared,
) -> HttpResponse {
    let args: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let st = match guarded(&req, &state, "Payment Entry") {
        Ok(st) => st,
        Err(refusal) => return *refusal,
    };
    let dt = args["dt"].as_str().unwrap_or_default();
    let dn = args["dn"].as_str().unwrap_or_default();
    let Some(si) = st.docs.get(&(dt.to_owned(), dn.to_owned())) else {
        return frappe_error(404, "DoesNotExistError", &format!("{dt} {dn} not found"));
    };
    if si["docstatus"].as_i64() != Some(1) {
        return frappe_error(
            417,
            "ValidationError",
            &format!("{dt} {dn} must be submitted"),
        );
    }
    let outstanding = si["outstanding_amount"].as_f64().unwrap_or(0.0);
    let paid_to = args["bank_account"].as_str().unwrap_or(BANK).to_owned();
    let paid_to_type = st
        .docs
        .get(&("Account".to_owned(), paid_to.clone()))
        .and_then(|a| a["account_type"].as_str().map(str::to_owned));
    let (kind, amount) = if outstanding > 0.0 {
        let wanted = args["party_amount"].as_f64().unwrap_or(outstanding);
        ("Receive", round2(wanted.min(outstanding)))
    } else {
        ("Pay", 0.0)
    };
    let pe = json!({
        "doctype": "Payment Entry", "__islocal": 1, "name": null, "docstatus": 0,
        "naming_series": "ACC-PAY-.YYYY.-", "company": COMPANY, "payment_type": kind,
        "party_type": "Customer", "party": si["customer"], "party_name": si["customer_name"],
        "paid_from": DEBTORS, "paid_to": paid_to, "paid_to_account_type": paid_to_type,
        "paid_amount": amount, "received_amount": amount, "posting_date": TODAY,
        "mode_of_payment": null, "reference_no": null, "reference_date": TODAY,
        "references": [{
            "doctype": "Payment Entry Reference", "reference_doctype": dt, "reference_name": dn,
            "total_amount": si["grand_total"], "outstanding_amount": outstanding,
            "allocated_amount": amount,
        }],
    });
    HttpResponse::Ok().json(json!({ "message": pe }))
}

fn insert_payment_entry(st: &mut State, body: Map<String, Value>) -> HttpResponse {
    let paid_to = text(&body, "paid_to").unwrap_or_default().to_owned();
    let account = st
        .docs
        .get(&("Account".to_owned(), paid_to.clone()))
        .cloned();
    let Some(account) = account.filter(|a| a["company"] == json!(COMPANY)) else {
        return frappe_error(
            417,
            "ValidationError",
            &format!("Account {paid_to} does not belong to company {COMPANY}"),
        );
    };
    if account["is_group"].as_i64() == Some(1) {
        return frappe_error(
            417,
            "ValidationError",
            &format!("Account {paid_to} is a group account; group accounts cannot be used in transactions"),
        );
    }
    if account["account_type"].as_str() == Some("Bank") && text(&body, "reference_no").is_none() {
        return frappe_error(
            417,
            "ValidationError",
            "Reference No and Reference Date is mandatory for Bank transaction",
        );
    }
    if let Some(mode) = text(&body, "mode_of_payment") {
        if !st
            .docs
            .contains_key(&("Mode of Payment".to_owned(), mode.to_owned()))
        {
            return frappe_error(
                417,
                "LinkValidationError",
                &format!("Could not find Mode of Payment: {mode}"),
            );
        }
    }
    let refs: Vec<Map<String, Value>> = body
        .get("references")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default();
    for (i, r) in refs.iter().enumerate() {
        let key = (
            text(r, "reference_doctype").unwrap_or_default().to_owned(),
            text(r, "reference_name").unwrap_or_default().to_owned(),
        );
        let outstanding = st
            .docs
            .get(&key)
            .and_then(|d| d["outstanding_amount"].as_f64())
            .unwrap_or(0.0);
        if num(r.get("allocated_amount")) > outstanding + 1e-9 {
            return frappe_error(
                417,
                "ValidationError",
                &format!(
                    "Row #{}: Allocated Amount cannot be greater than outstanding amount.",
                    i + 1
                ),
            );
        }
    }
    if let Some(refusal) = refused(st, "Payment Entry") {
        return refusal;
    }
    let docstatus = num(body.get("docstatus")) as i64;
    let prefix = body
        .get("naming_series")
        .and_then(Value::as_str)
        .filter(|s| !s.contains(".YYYY."))
        .map_or_else(|| "ACC-PAY-2026-".to_owned(), str::to_owned);
    let name = st.next_name(&prefix);
    let modified = st.tick();
    let mut doc = body.clone();
    doc.remove("__islocal");
    let allocated: f64 = refs.iter().map(|r| num(r.get("allocated_amount"))).sum();
    for (k, v) in [
        ("name", json!(name)),
        ("doctype", json!("Payment Entry")),
        ("docstatus", json!(docstatus)),
        ("creation", json!(modified)),
        ("modified", json!(modified)),
        (
            "status",
            json!(if docstatus == 1 { "Submitted" } else { "Draft" }),
        ),
        (
            "unallocated_amount",
            json!(round2(num(body.get("paid_amount")) - allocated)),
        ),
        (
            "references",
            Value::Array(
                refs.iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.insert("doctype".into(), json!("Payment Entry Reference"));
                        Value::Object(r)
                    })
                    .collect(),
            ),
        ),
    ] {
        doc.insert(k.into(), v);
    }
    st.docs.insert(
        ("Payment Entry".into(), name.clone()),
        Value::Object(doc.clone()),
    );
    if docstatus == 1 {
        for r in &refs {
            let key = (
                text(r, "reference_doctype").unwrap_or_default().to_owned(),
                text(r, "reference_name").unwrap_or_default().to_owned(),
            );
            if let Some(Value::Object(si)) = st.docs.get_mut(&key) {
                let left =
                    round2(num(si.get("outstanding_amount")) - num(r.get("allocated_amount")));
                si.insert("outstanding_amount".into(), json!(left));
                si.insert(
                    "status".into(),
                    json!(if left <= 0.0 { "Paid" } else { "Partly Paid" }),
                );
            }
        }
    }
    HttpResponse::Ok().json(json!({ "data": Value::Object(doc) }))
}

fn insert_comment(st: &mut State, body: Map<String, Value>) -> HttpResponse {
    let (Some(dt), Some(dn)) = (
        text(&body, "reference_doctype"),
        text(&body, "reference_name"),
    ) else {
        return frappe_error(
            417,
            "MandatoryError",
            "Comment: Value missing for: Reference Document Type, Reference Name",
        );
    };
    if !st.docs.contains_key(&(dt.to_owned(), dn.to_owned())) {
        return frappe_error(
            417,
            "LinkValidationError",
            &format!("Could not find {dt}: {dn}"),
        );
    }
    let name = st.next_name("cmt");
    let modified = st.tick();
    let mut doc = body.clone();
    for (k, v) in [
        ("name", json!(name)),
        ("doctype", json!("Comment")),
        ("docstatus", json!(0)),
        ("creation", json!(modified)),
        ("modified", json!(modified)),
    ] {
        doc.insert(k.into(), v);
    }
    doc.entry("comment_type").or_insert(json!("Comment"));
    st.docs
        .insert(("Comment".into(), name), Value::Object(doc.clone()));
    HttpResponse::Ok().json(json!({ "data": Value::Object(doc) }))
}

/// `POST /api/resource/{doctype}` for the doctypes this module serves.
pub(super) fn insert(st: &mut State, doctype: &str, body: Map<String, Value>) -> HttpResponse {
    match doctype {
        "Sales Invoice" => insert_sales_invoice(st, body),
        "Payment Entry" => insert_payment_entry(st, body),
        "Comment" => insert_comment(st, body),
        _ => frappe_error(
            403,
            "PermissionError",
            &format!("Not permitted to create {doctype}"),
        ),
    }
}

impl super::ErpEmulator {
    /// Adds an Account of company ACME (`account_type` "Tax", "Bank", "Cash"...).
    pub fn add_account(&self, name: &str, account_type: &str, is_group: bool) {
        let mut st = self.lock();
        put_account(&mut st, name, account_type, is_group, "Liability");
    }

    /// Adds an Item Tax Template: `(account, rate)` rows.
    pub fn add_item_tax_template(&self, name: &str, rows: &[(&str, f64)]) {
        let taxes: Vec<Value> = rows
            .iter()
            .map(|(a, r)| json!({"tax_type": a, "tax_rate": r}))
            .collect();
        self.lock().docs.insert(
            ("Item Tax Template".into(), name.into()),
            json!({"name": name, "doctype": "Item Tax Template", "company": COMPANY,
                   "taxes": taxes}),
        );
    }

    /// The next insert of `doctype` ("Sales Invoice", "Payment Entry") is refused with 417
    /// ValidationError and `message`.
    pub fn refuse_next(&self, doctype: &str, message: &str) {
        self.lock()
            .books
            .refuse_next
            .push((doctype.to_owned(), message.to_owned()));
    }

    /// Sets a document's field as someone working in ERPNext would (e.g. a Sales Order's status).
    pub fn set_field(&self, doctype: &str, name: &str, field: &str, value: Value) {
        if let Some(Value::Object(d)) = self
            .lock()
            .docs
            .get_mut(&(doctype.to_owned(), name.to_owned()))
        {
            d.insert(field.to_owned(), value);
        }
    }
}
