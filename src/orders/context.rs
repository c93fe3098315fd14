//! What placing an order needs and answers: the context (ERPNext client and settings), the
//! outcome, the error that tells the caller to retry or to give up, and the mapped bespoke
//! fields, which ERPNext drops without an error when it has no such field.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::erpnext::client::ErpError;
use crate::erpnext::ErpClient;
use crate::orders::model::OrderSettings;

/// What the worker needs besides the order.
#[derive(Clone)]
pub struct OrderContext {
    pub erp: ErpClient,
    pub settings: OrderSettings,
    /// The Sales Order field holding the shop's order id (`erpnext.order_id_field`, "po_no").
    pub order_id_field: String,
    /// An Item field holding the shop SKU (`erpnext.sku_field`); None: the SKU is the item code.
    pub sku_field: Option<String>,
}

/// An order that is in ERPNext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The Customer's document name.
    pub customer: String,
    /// The Sales Order's document name.
    pub sales_order: String,
    /// False when the Sales Order already existed (found by the shop order id).
    pub created: bool,
}

/// Why an order could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// ERPNext is unreachable, answered 5xx or 429: try again later, the order stays owed.
    #[error("ERPNext is unavailable")]
    Unavailable(#[source] ErpError),
    /// ERPNext or the relay refuses the order as it is (validation, unknown SKU, totals that
    /// differ): a dead letter with this message until the data is fixed and it is retried.
    #[error("{0}")]
    Refused(String),
}

/// What a failed ERPNext call means for the order: unreachable, 5xx, 429, a timeout, or a
/// refusal of the relay's own credentials (401/403, fixed in the configuration, not in the
/// order) keep it owed; a validation answer (400, 404, 409, 417...) refuses it, with ERPNext's
/// decoded message.
pub(crate) fn erp_failure(e: ErpError, doing: &str) -> PlaceError {
    match &e {
        ErpError::Status {
            status: 400 | 404 | 409 | 413 | 417 | 422,
            ..
        } => PlaceError::Refused(format!("{doing}: {e}")),
        ErpError::Setup(_) => PlaceError::Refused(format!("{doing}: {e}")),
        _ => PlaceError::Unavailable(e),
    }
}

/// Copies the mapped `fields` into `body`; returns the ERPNext fieldnames that carry a value.
pub(crate) fn map_fields(
    mapping: &BTreeMap<String, String>,
    fields: &Map<String, Value>,
    body: &mut Map<String, Value>,
) -> Vec<String> {
    let mut sent = Vec::new();
    for (key, erp_field) in mapping {
        if let Some(v) = fields.get(key) {
            body.insert(erp_field.clone(), v.clone());
            if !v.is_null() {
                sent.push(erp_field.clone());
            }
        }
    }
    sent
}

/// The mapped fields ERPNext dropped (it drops unknown fields without an error).
pub(crate) fn missing_fields(sent: &[String], answer: &Value) -> Vec<String> {
    sent.iter()
        .filter(|f| answer.get(f.as_str()).is_none_or(Value::is_null))
        .cloned()
        .collect()
}
