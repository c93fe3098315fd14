//! Step 2: the Sales Order the relay made of the test order, found in ERPNext by the shop order
//! id (while it is not there, the relay's admin API says what became of the order), then
//! checked field by field: submitted, the customer with the test email, the one line, the
//! shipping as an Actual tax row, the grand total.

use serde_json::{json, Value};

use super::cycle::Cycle;
use super::diagnose::erp_cause;
use super::fields::{number, rows, text};
use super::order::same_amount;
use super::poll::{poll, Polled, Probe};
use super::report::{fail, Outcome};
use crate::http::encode_segment;

/// What the line of the report says.
pub(super) const TITLE: &str =
    "Sales Order in ERPNext with the right customer, line, prices and shipping";

/// Step 2: the Sales Order, found by the shop order id, checked field by field.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let field = cycle.settings.erpnext.order_id_field.clone();
    let order_id = cycle.names.order_id.clone();
    let filters = json!([[field, "=", order_id], ["docstatus", "<", 2]]);
    let found = poll(cycle.timeout, || async {
        match cycle
            .erp
            .list_page::<Value>("Sales Order", &["name"], &filters, "creation desc", 0, 5)
            .await
        {
            Ok(rows) if !rows.is_empty() => return Probe::Done(text(&rows[0], "name")),
            Ok(_) => {}
            Err(e) if e.is_permanent() => return Probe::Stop(format!("ERPNext: {e}")),
            Err(_) => {}
        }
        match cycle
            .relay
            .admin(&format!("/admin/orders/{}", encode_segment(&order_id)))
            .await
        {
            Some((200, v)) if text(&v, "status") == "dead" => Probe::Stop(format!(
                "the relay gave the order up: {}",
                text(&v, "error")
            )),
            Some((200, v)) => Probe::Wait(format!(
                "no Sales Order yet; the relay says the order is `{}`{}",
                text(&v, "status"),
                Some(text(&v, "error"))
                    .filter(|e| !e.is_empty())
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            )),
            Some((404, _)) => {
                Probe::Wait("no Sales Order yet; the relay has no record of the order".into())
            }
            _ => Probe::Wait("no Sales Order yet".into()),
        }
    })
    .await;
    let expected = format!("a Sales Order with {field} = {order_id}");
    let name = match found {
        Polled::Done(name) => name,
        Polled::Stopped(why) => {
            return fail(
                expected,
                why,
                "the relay gave the order up for the reason it gives (ERPNext's refusal, or its own [orders] settings); GET /admin/orders/{id} on the relay shows it, POST /admin/orders/{id}/retry places it again once fixed",
            )
        }
        Polled::TimedOut(seen) => {
            let cause = if cycle.relay.admin_token.is_none() {
                "the relay's order worker has not created it; set server.admin_token to see the order's fate (GET /admin/orders/{id})".to_owned()
            } else if seen.contains("no record") {
                "the relay did not keep the order: is this configuration's relay the one that answered step 1?".to_owned()
            } else {
                "the relay's order worker has not created it: is ERPNext reachable from the relay, and may its API user create Customers and Sales Orders? (the relay's log says)".to_owned()
            };
            return fail(expected, format!("{seen} after {} s", cycle.timeout.as_secs()), cause);
        }
    };
    cycle.created.sales_order = Some(name.clone());
    let so = match cycle.erp.get_doc::<Value>("Sales Order", &name).await {
        Ok(Some(doc)) => doc,
        Ok(None) => {
            return fail(
                expected,
                format!("{name} is listed but cannot be read"),
                "ERPNext answered 404",
            )
        }
        Err(e) => {
            return fail(
                expected,
                format!("{name} cannot be read: {e}"),
                erp_cause(&e),
            )
        }
    };
    cycle.sales_order = Some(so.clone());
    let problems = check_sales_order(cycle, &so).await;
    let m = cycle.money;
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{name} for {}: {} x {} at {:.2} (line {:.2}), shipping {:.2}, grand total {:.2}",
            text(&so, "customer"),
            m.qty,
            cycle.names.item_code,
            m.rate(),
            m.line_total(),
            m.shipping,
            m.total()
        ))
    } else {
        fail(
            format!(
                "{name} submitted, for the customer with email {}, one line {} x {} = {:.2}, shipping {:.2} as an Actual tax row, grand total {:.2}",
                cycle.email, m.qty, cycle.names.item_code, m.line_total(), m.shipping, m.total()
            ),
            problems.join("; "),
            "the relay's order mapping and ERPNext disagree: a Pricing Rule or Item Price changing the rate, a taxes template adding rows, or the relay's [orders] settings",
        )
    }
}

/// What differs between the Sales Order and the test order.
async fn check_sales_order(cycle: &Cycle<'_>, so: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let m = cycle.money;
    if number(so, "docstatus") != 1.0 {
        problems.push(format!(
            "it is not submitted (docstatus {}): a draft reserves nothing (is orders.submit false?)",
            number(so, "docstatus")
        ));
    }
    let customer = text(so, "customer");
    let email = customer_email(cycle, &customer).await;
    if email.as_deref().map(|e| e.trim().to_lowercase()) != Some(cycle.email.trim().to_lowercase())
    {
        problems.push(format!(
            "its customer `{customer}` has email {}",
            email.unwrap_or_else(|| "(none)".into())
        ));
    }
    let items = rows(so, "items");
    let ours: Vec<&Value> = items
        .iter()
        .filter(|r| text(r, "item_code") == cycle.names.item_code)
        .collect();
    if items.len() != 1 || ours.len() != 1 {
        problems.push(format!(
            "{} line(s), {} for {}",
            items.len(),
            ours.len(),
            cycle.names.item_code
        ));
    }
    if let Some(line) = ours.first() {
        if !same_amount(number(line, "qty"), m.qty) {
            problems.push(format!("qty {}", number(line, "qty")));
        }
        if !same_amount(number(line, "amount"), m.line_total()) {
            problems.push(format!(
                "line amount {:.2} (rate {:.2})",
                number(line, "amount"),
                number(line, "rate")
            ));
        }
    }
    let taxes = rows(so, "taxes");
    let account = cycle.settings.orders.shipping_account.as_deref();
    let shipping = taxes.iter().any(|t| {
        text(t, "charge_type") == "Actual"
            && same_amount(number(t, "tax_amount"), m.shipping)
            && account.is_none_or(|a| text(t, "account_head") == a)
    });
    if !shipping {
        let seen: Vec<String> = taxes
            .iter()
            .map(|t| {
                format!(
                    "{} {:.2} on {}",
                    text(t, "charge_type"),
                    number(t, "tax_amount"),
                    text(t, "account_head")
                )
            })
            .collect();
        problems.push(format!(
            "no Actual tax row of {:.2} for shipping{} (rows: {})",
            m.shipping,
            account.map(|a| format!(" on {a}")).unwrap_or_default(),
            if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            }
        ));
    }
    if !same_amount(number(so, "grand_total"), m.total()) {
        problems.push(format!("grand total {:.2}", number(so, "grand_total")));
    }
    problems
}

/// The customer's email: the test email when one of the customer's Contacts has it (the
/// relay finds customers that way), else the Customer's `email_id` or its primary
/// contact's.
async fn customer_email(cycle: &Cycle<'_>, customer: &str) -> Option<String> {
    let linked = json!([
        ["Contact Email", "email_id", "=", cycle.email.trim()],
        ["Dynamic Link", "link_doctype", "=", "Customer"],
        ["Dynamic Link", "link_name", "=", customer]
    ]);
    let order = "`tabContact`.`creation` asc";
    if let Ok(rows) = cycle
        .erp
        .list_page::<Value>("Contact", &["name"], &linked, order, 0, 1)
        .await
    {
        if !rows.is_empty() {
            return Some(cycle.email.clone());
        }
    }
    let doc = cycle
        .erp
        .get_doc::<Value>("Customer", customer)
        .await
        .ok()??;
    let direct = text(&doc, "email_id");
    if !direct.trim().is_empty() {
        return Some(direct);
    }
    let contact = text(&doc, "customer_primary_contact");
    if contact.is_empty() {
        return None;
    }
    let c = cycle
        .erp
        .get_doc::<Value>("Contact", &contact)
        .await
        .ok()??;
    Some(text(&c, "email_id")).filter(|e| !e.is_empty())
}
