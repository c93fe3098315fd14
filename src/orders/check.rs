//! `shoprelay erpnext check` for orders: the shipping account, customer group and territory of
//! `[orders]` exist in ERPNext (group and territory as leaves, which new customers need), every
//! field of `[orders.fields]` exists on its doctype, and every account of
//! `[orders.tax_accounts]` and `[orders.payment_accounts]` exists, is not a group (ERPNext
//! books only on leaves) and belongs to the same company as the others, and every Mode of
//! Payment named there exists.
//!
//! A field is tested with a one-row list filtered on it: ERPNext answers 417 "Field not
//! permitted in query" for a field its doctype does not have, standard or custom, and a child
//! table's field (Sales Order Item) is tested through its parent with a child-table filter.

use serde_json::{json, Value};

use crate::erpnext::setup::Finding;
use crate::erpnext::{ErpClient, ErpError};
use crate::orders::model::OrderSettings;

fn finding(ok: bool, text: String) -> Finding {
    Finding { ok, text }
}

/// The `[orders]` findings.
pub async fn check(erp: &ErpClient, settings: &OrderSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(account) = &settings.shipping_account {
        out.push(exists(erp, "Account", account, "orders.shipping_account", false).await);
    }
    out.push(
        exists(
            erp,
            "Customer Group",
            &settings.customer_group,
            "orders.customer_group",
            true,
        )
        .await,
    );
    out.push(
        exists(
            erp,
            "Territory",
            &settings.territory,
            "orders.territory",
            true,
        )
        .await,
    );
    let mut accounts: Vec<(String, &str)> = settings
        .tax_accounts
        .iter()
        .map(|(title, a)| (format!("orders.tax_accounts.{title:?}"), a.as_str()))
        .collect();
    for (method, target) in &settings.payment_accounts {
        accounts.push((
            format!("orders.payment_accounts.{method}"),
            target.account(),
        ));
        if let Some(mode) = target.mode_of_payment() {
            out.push(
                exists(
                    erp,
                    "Mode of Payment",
                    mode,
                    &format!("orders.payment_accounts.{method}"),
                    false,
                )
                .await,
            );
        }
    }
    let mut companies: Vec<(String, String)> = Vec::new();
    for (key, account) in &accounts {
        match ledger_account(erp, key, account).await {
            Ok(company) => companies.push((key.clone(), company)),
            Err(f) => out.push(f),
        }
    }
    if let Some((_, first)) = companies.first() {
        let others: Vec<String> = companies
            .iter()
            .filter(|(_, c)| c != first)
            .map(|(k, c)| format!("{k} ({c})"))
            .collect();
        out.push(if others.is_empty() {
            finding(
                true,
                format!(
                    "order accounts: every tax and payment account is a leaf of company {first:?}"
                ),
            )
        } else {
            finding(
                false,
                format!(
                    "order accounts: not all of company {first:?}: {}",
                    others.join(", ")
                ),
            )
        });
    }
    let f = &settings.fields;
    for (doctype, mapping) in [
        ("Customer", &f.customer),
        ("Sales Order", &f.order),
        ("Sales Order Item", &f.line),
    ] {
        for (key, field) in mapping {
            out.push(field_exists(erp, doctype, key, field).await);
        }
    }
    out
}

async fn exists(erp: &ErpClient, doctype: &str, name: &str, key: &str, leaf: bool) -> Finding {
    let fields: &[&str] = if leaf {
        &["name", "is_group"]
    } else {
        &["name"]
    };
    match erp
        .list_page::<Value>(
            doctype,
            fields,
            &json!([["name", "=", name]]),
            "name asc",
            0,
            1,
        )
        .await
    {
        Ok(rows) => match rows.first() {
            None => finding(false, format!("{key}: ERPNext has no {doctype} {name:?}")),
            Some(r) if leaf && r["is_group"].as_i64() == Some(1) => finding(
                false,
                format!("{key}: {doctype} {name:?} is a group; new customers need a leaf"),
            ),
            Some(_) => finding(true, format!("{key}: {doctype} {name:?} exists")),
        },
        Err(e) => finding(false, format!("{key}: cannot read {doctype}: {e}")),
    }
}

async fn field_exists(erp: &ErpClient, doctype: &str, key: &str, field: &str) -> Finding {
    let (list_doctype, filter) = if doctype == "Sales Order Item" {
        ("Sales Order", json!([[doctype, field, "is", "set"]]))
    } else {
        (doctype, json!([[field, "is", "set"]]))
    };
    let what = format!("orders.fields: {key} -> {doctype}.{field}");
    match erp
        .list_page::<Value>(
            list_doctype,
            &["name"],
            &filter,
            &format!("`tab{list_doctype}`.`name` asc"),
            0,
            1,
        )
        .await
    {
        Ok(_) => finding(true, format!("{what} exists")),
        Err(ErpError::Status {
            status: 417,
            exc_type,
            ..
        }) if exc_type.as_deref() == Some("DataError") => finding(
            false,
            format!("{what}: {doctype} has no field {field:?} (create a Custom Field)"),
        ),
        Err(e) => finding(false, format!("{what}: {e}")),
    }
}

/// The company of a ledger (not group) account; a finding when it is missing or a group.
async fn ledger_account(erp: &ErpClient, key: &str, name: &str) -> Result<String, Finding> {
    let rows = erp
        .list_page::<Value>(
            "Account",
            &["name", "is_group", "company"],
            &json!([["name", "=", name]]),
            "name asc",
            0,
            1,
        )
        .await
        .map_err(|e| finding(false, format!("{key}: cannot read Account: {e}")))?;
    match rows.first() {
        None => Err(finding(
            false,
            format!("{key}: ERPNext has no Account {name:?}"),
        )),
        Some(r) if r["is_group"].as_i64() == Some(1) => Err(finding(
            false,
            format!("{key}: Account {name:?} is a group; ERPNext books only on ledger accounts"),
        )),
        Some(r) => Ok(r["company"].as_str().unwrap_or_default().to_owned()),
    }
}
