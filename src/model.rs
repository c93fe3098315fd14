//! Domain types shared by the modules: Bin rows read back from ERPNext, stock levels, stock signals.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A Frappe `modified` value: a naive timestamp in the site's time zone, as ERPNext prints it
/// (`2025-06-02 14:05:07.654321`, microseconds only when non-zero). Ordered by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Modified(pub String);

impl Modified {
    /// The value padded to `YYYY-MM-DD HH:MM:SS.ffffff`, so that string order is time order.
    fn normalized(&self) -> String {
        let s = self.0.trim().replace('T', " ");
        match s.split_once('.') {
            Some((head, frac)) => format!("{head}.{:0<6}", &frac[..frac.len().min(6)]),
            None => format!("{s}.000000"),
        }
    }
}

impl PartialOrd for Modified {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Modified {
    fn cmp(&self, other: &Self) -> Ordering {
        self.normalized().cmp(&other.normalized())
    }
}

/// The quantities of one Bin (item, warehouse) as ERPNext's REST API reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BinRow {
    pub item_code: String,
    pub warehouse: String,
    #[serde(default)]
    pub actual_qty: f64,
    #[serde(default)]
    pub projected_qty: f64,
    #[serde(default)]
    pub reserved_qty: f64,
    #[serde(default)]
    pub reserved_qty_for_production: f64,
    #[serde(default)]
    pub reserved_qty_for_sub_contract: f64,
    #[serde(default)]
    pub reserved_qty_for_production_plan: f64,
    #[serde(default)]
    pub modified: Modified,
}

impl BinRow {
    /// The REST `fields` list that fills every member of this struct.
    pub const FIELDS: [&'static str; 9] = [
        "item_code",
        "warehouse",
        "actual_qty",
        "projected_qty",
        "reserved_qty",
        "reserved_qty_for_production",
        "reserved_qty_for_sub_contract",
        "reserved_qty_for_production_plan",
        "modified",
    ];
}

/// The absolute level the shop should show for one SKU on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub channel: String,
    pub sku: String,
    pub available: u64,
}

/// A stock signal: ERPNext says something about these (item_code, warehouse) pairs changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSignal {
    pub doctype: String,
    pub event: Option<String>,
    pub name: Option<String>,
    pub keys: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_orders_by_time_whatever_the_precision() {
        let a = Modified("2025-06-02 14:05:07".into());
        let b = Modified("2025-06-02 14:05:07.000001".into());
        let c = Modified("2025-06-02 14:05:07.5".into());
        let d = Modified("2025-06-02 14:05:08".into());
        assert!(a < b && b < c && c < d);
        assert_eq!(
            a.cmp(&Modified("2025-06-02 14:05:07.000000".into())),
            Ordering::Equal
        );
    }
}

/// Documents the relay reads back whole when a webhook names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocKind {
    #[serde(rename = "Delivery Note")]
    DeliveryNote,
    #[serde(rename = "Shipment")]
    Shipment,
}

impl DocKind {
    /// The ERPNext doctype name.
    pub fn doctype(self) -> &'static str {
        match self {
            DocKind::DeliveryNote => "Delivery Note",
            DocKind::Shipment => "Shipment",
        }
    }
}

/// Carrier and tracking that a Shipment document adds to a delivery note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub shipment: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub modified: Modified,
    /// False once the Shipment is cancelled.
    pub active: bool,
}

/// What the shop should hold for one shipment: a PUT of `body`, or (None) no shipment at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentOp {
    pub order_id: String,
    pub shipment_id: String,
    pub put: Option<serde_json::Value>,
}
