//! The Webhook documents of `erpnext_webhook_setup/webhooks/`, compiled into the binary so that
//! `shoprelay demo` and setup work from any directory.
//!
//! Stock is signalled per voucher (Stock Entry, Purchase Receipt, Delivery Note, Sales and
//! Purchase Invoice with `update_stock`, Stock Reconciliation, Subcontracting Receipt: submit
//! and cancel), never per Stock Ledger Entry: ERPNext's worker runs one job per webhook and
//! document, about half a second each, so a 40-line receipt costs one job instead of forty, and
//! its body names every row's item and warehouse.

use serde::{Deserialize, Serialize};

/// One row of a Webhook's `webhook_headers` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookHeader {
    pub key: String,
    pub value: String,
}

/// A Frappe Webhook document as shipped (fields of ERPNext's Webhook doctype).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDoc {
    pub name: String,
    pub webhook_doctype: String,
    pub webhook_docevent: String,
    pub enabled: u8,
    #[serde(default)]
    pub condition: String,
    pub request_url: String,
    pub request_method: String,
    pub request_structure: String,
    pub webhook_json: String,
    pub enable_security: u8,
    #[serde(default)]
    pub timeout: Option<u32>,
    #[serde(default)]
    pub webhook_headers: Vec<WebhookHeader>,
}

/// The base every shipped `request_url` starts with; setup replaces it with the public URL.
pub const PLACEHOLDER_BASE: &str = "https://shoprelay.invalid";

/// The prefix that marks a Webhook document as shoprelay's.
pub const NAME_PREFIX: &str = "shoprelay ";

macro_rules! shipped_files {
    ($($file:literal),* $(,)?) => {
        [$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/erpnext_webhook_setup/webhooks/", $file)))),*]
    };
}

const FILES: [(&str, &str); 22] = shipped_files!(
    "shoprelay-bin-on_change.json",
    "shoprelay-delivery_note-on_cancel.json",
    "shoprelay-delivery_note-on_submit.json",
    "shoprelay-item-on_update.json",
    "shoprelay-purchase_invoice-on_cancel.json",
    "shoprelay-purchase_invoice-on_submit.json",
    "shoprelay-purchase_receipt-on_cancel.json",
    "shoprelay-purchase_receipt-on_submit.json",
    "shoprelay-sales_invoice-on_cancel.json",
    "shoprelay-sales_invoice-on_submit.json",
    "shoprelay-sales_order-on_cancel.json",
    "shoprelay-sales_order-on_change.json",
    "shoprelay-sales_order-on_submit.json",
    "shoprelay-shipment-on_cancel.json",
    "shoprelay-shipment-on_change.json",
    "shoprelay-shipment-on_submit.json",
    "shoprelay-stock_entry-on_cancel.json",
    "shoprelay-stock_entry-on_submit.json",
    "shoprelay-stock_reconciliation-on_cancel.json",
    "shoprelay-stock_reconciliation-on_submit.json",
    "shoprelay-subcontracting_receipt-on_cancel.json",
    "shoprelay-subcontracting_receipt-on_submit.json",
);

/// Every shipped Webhook document, parsed. A file that does not parse is a build defect and
/// is reported with its name.
pub fn shipped() -> Result<Vec<WebhookDoc>, String> {
    FILES
        .iter()
        .map(|(file, text)| serde_json::from_str(text).map_err(|e| format!("{file}: {e}")))
        .collect()
}

/// What the Item template's condition says in place of the SKU field's name.
const SKU_FIELD_PLACEHOLDER: &str = "SKU_FIELD";

/// The shipped Webhook documents a site needs with this `erpnext.sku_field`: without one the
/// Item webhook is left out (the item code is the SKU, so no Item save concerns the relay);
/// with one its condition names the field, so only saves that set or change it fire.
pub fn for_site(sku_field: Option<&str>) -> Result<Vec<WebhookDoc>, String> {
    Ok(shipped()?
        .into_iter()
        .filter_map(|mut doc| {
            if !doc.condition.contains(SKU_FIELD_PLACEHOLDER) {
                return Some(doc);
            }
            let field = sku_field?;
            doc.condition = doc.condition.replace(SKU_FIELD_PLACEHOLDER, field);
            Some(doc)
        })
        .collect())
}

/// The file names compiled in, for a test that the folder and the binary agree.
pub fn shipped_file_names() -> Vec<&'static str> {
    FILES.iter().map(|(f, _)| *f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_compiled_in_and_well_formed() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/erpnext_webhook_setup/webhooks"
        );
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> =
            shipped_file_names().iter().map(|s| s.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
        for doc in shipped().expect("parse") {
            assert!(doc.name.starts_with(NAME_PREFIX), "{}", doc.name);
            assert!(
                doc.request_url.starts_with(PLACEHOLDER_BASE),
                "{}",
                doc.name
            );
            assert_eq!(doc.request_structure, "JSON");
            assert_eq!(doc.enable_security, 1);
            assert!(doc.webhook_headers.iter().any(|h| h.key == "Content-Type"));
            assert_ne!(
                doc.webhook_docevent, "on_update_after_submit",
                "never fires in v15"
            );
        }
    }
}
