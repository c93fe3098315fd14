//! The cleanup after step 6 (skipped with `--keep`): what the run submitted is cancelled,
//! newest first, and the test item disabled.

use serde_json::json;

use super::cycle::Cycle;
use super::report::{fail, Outcome};

/// What the line of the report says.
pub(super) const TITLE: &str = "cleanup";

/// Cancels what the run submitted, newest first, and disables the item.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let cancels = [
        ("Shipment", cycle.created.shipment.clone()),
        ("Delivery Note", cycle.created.delivery_note.clone()),
        ("Sales Order", cycle.created.sales_order.clone()),
        ("Stock Entry", cycle.created.stock_entry.clone()),
    ];
    for (doctype, name) in cancels {
        let Some(name) = name else { continue };
        match cycle
            .erp
            .post_method(
                "frappe.client.cancel",
                &json!({"doctype": doctype, "name": name}),
            )
            .await
        {
            Ok(_) => done.push(format!("{doctype} {name} cancelled")),
            Err(e) => failed.push(format!("{doctype} {name}: {e}")),
        }
    }
    if let Some(item) = cycle.created.item.clone() {
        match cycle
            .erp
            .save_doc("Item", Some(&item), &json!({"disabled": 1}))
            .await
        {
            Ok(_) => done.push(format!("Item {item} disabled")),
            Err(e) => failed.push(format!("Item {item}: {e}")),
        }
    }
    if failed.is_empty() {
        Outcome::Pass(if done.is_empty() {
            "nothing to undo".into()
        } else {
            done.join(", ")
        })
    } else {
        fail(
            "every test document cancelled and the item disabled",
            format!("{}; done: {}", failed.join("; "), done.join(", ")),
            "the API user may lack the Cancel permission; cancel the SRSTAGE documents by hand",
        )
    }
}
