//! The Webhook documents of `erpnext_webhook_setup/webhooks/`, compiled into the binary so that
//! `shoprelay demo` and setup work from any directory.

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

const FILES: [(&str, &str); 12] = shipped_files!(
    "shoprelay-bin-after_insert.json",
    "shoprelay-bin-on_change.json",
    "shoprelay-stock_ledger_entry-after_insert.json",
    "shoprelay-sales_order-on_submit.json",
    "shoprelay-sales_order-on_cancel.json",
    "shoprelay-sales_order-on_change.json",
    "shoprelay-delivery_note-on_submit.json",
    "shoprelay-delivery_note-on_cancel.json",
    "shoprelay-shipment-on_submit.json",
    "shoprelay-shipment-on_change.json",
    "shoprelay-shipment-on_cancel.json",
    "shoprelay-item-on_update.json",
);

/// Every shipped Webhook document, parsed. A file that does not parse is a build defect and
/// is reported with its name.
pub fn shipped() -> Result<Vec<WebhookDoc>, String> {
    FILES
        .iter()
        .map(|(file, text)| serde_json::from_str(text).map_err(|e| format!("{file}: {e}")))
        .collect()
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
