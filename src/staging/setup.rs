//! The setup before step 1: the test item, created in ERPNext, and a submitted Material Receipt
//! of its stock into the channel's warehouse (its first leaf when the channel names a group, as
//! the relay takes the channel's orders from it). On the way it learns the warehouse's company,
//! the company's currency and country, which the test order carries.

use serde_json::{json, Value};

use super::cycle::Cycle;
use super::diagnose::erp_cause;
use super::fields::{number, text};
use super::report::{fail, Outcome};

/// What the line of the report says.
pub(super) const TITLE: &str = "setup: test item and stock";

/// Stock received for the test item.
const RECEIPT_QTY: f64 = 10.0;

/// The test item and its stock. Err is the failing line.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Result<Outcome, Outcome> {
    let wh = cycle.warehouse.clone();
    let which = match &cycle.settings.staging_test.warehouse {
        Some(_) => "staging_test.warehouse".to_owned(),
        None => format!("the first warehouse of channel `{}`", cycle.channel.name),
    };
    let doc = match cycle.erp.get_doc::<Value>("Warehouse", &wh).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(fail(
                format!("warehouse `{wh}` ({which}) in ERPNext"),
                "ERPNext has no such warehouse",
                "set staging_test.warehouse to a leaf warehouse of the channel",
            ))
        }
        Err(e) => {
            return Err(fail(
                format!("to read warehouse `{wh}`"),
                e.to_string(),
                erp_cause(&e),
            ))
        }
    };
    let mut doc = doc;
    if number(&doc, "is_group") != 0.0 {
        // As the relay takes a channel's orders from the first leaf (by name) of a group.
        let leaf = match first_leaf(cycle, &doc).await {
            Some(leaf) if cycle.settings.staging_test.warehouse.is_none() => leaf,
            _ => {
                return Err(fail(
                    format!("`{wh}` ({which}) to be a leaf warehouse that can hold stock"),
                    "it is a group warehouse",
                    "set staging_test.warehouse to a leaf warehouse of the channel",
                ))
            }
        };
        cycle.warehouse = text(&leaf, "name");
        doc = leaf;
    }
    let wh = cycle.warehouse.clone();
    cycle.company = text(&doc, "company");
    let company = match cycle.erp.get_doc::<Value>("Company", &cycle.company).await {
        Ok(Some(c)) => c,
        _ => Value::Null,
    };
    cycle.currency = Some(text(&company, "default_currency"))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "USD".into());
    let country = text(&company, "country");
    cycle.country_code = match cycle.erp.get_doc::<Value>("Country", &country).await {
        Ok(Some(c)) => text(&c, "code").to_ascii_uppercase(),
        _ => String::new(),
    };
    if cycle.country_code.len() != 2 {
        cycle.country_code = "US".into();
    }

    let code = cycle.names.item_code.clone();
    let mut item = json!({
        "item_code": code,
        "item_name": format!("shoprelay staging test {code}"),
        "description": "Created by `shoprelay staging-test`; cancelled and disabled when the test ends.",
        "item_group": "All Item Groups",
        "stock_uom": "Nos",
        "is_stock_item": 1,
        "include_item_in_manufacturing": 0,
    });
    if let Some(field) = &cycle.settings.erpnext.sku_field {
        item[field.as_str()] = json!(code);
    }
    if let Err(e) = cycle.erp.save_doc("Item", None, &item).await {
        return Err(fail(
            format!("to create the test item {code}"),
            e.to_string(),
            erp_cause(&e),
        ));
    }
    cycle.created.item = Some(code.clone());
    let receipt = json!({
        "stock_entry_type": "Material Receipt",
        "purpose": "Material Receipt",
        "company": cycle.company,
        "docstatus": 1,
        "remarks": format!("shoprelay staging test {code}"),
        "items": [{"item_code": code, "qty": RECEIPT_QTY, "t_warehouse": wh, "basic_rate": 5.0, "uom": "Nos", "conversion_factor": 1}],
    });
    match cycle.erp.save_doc("Stock Entry", None, &receipt).await {
        Ok(doc) => {
            let name = text(&doc, "name");
            cycle.created.stock_entry = Some(name.clone());
            Ok(Outcome::Pass(format!(
                "item {code} created, {RECEIPT_QTY} received into {wh} ({name})"
            )))
        }
        Err(e) => Err(fail(
            format!("a submitted Material Receipt of {RECEIPT_QTY} {code} into {wh}"),
            e.to_string(),
            erp_cause(&e),
        )),
    }
}

/// The first leaf warehouse, by name, below group warehouse `group`.
async fn first_leaf(cycle: &Cycle<'_>, group: &Value) -> Option<Value> {
    let filters = json!([
        ["lft", ">", number(group, "lft")],
        ["rgt", "<", number(group, "rgt")],
        ["is_group", "=", 0]
    ]);
    let rows: Vec<Value> = cycle
        .erp
        .list_page(
            "Warehouse",
            &["name", "company"],
            &filters,
            "name asc",
            0,
            1,
        )
        .await
        .ok()?;
    rows.into_iter().next()
}
