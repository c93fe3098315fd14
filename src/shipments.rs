//! Pure: a Delivery Note read back from ERPNext, its Sales Orders' shop order ids and the
//! tracking its Shipments added become the shop's shipments (shop_adapter_spec/): one per shop order the
//! note serves, each a `PUT` of its state: `"status": "shipped"` while the note is submitted,
//! `"status": "cancelled"` once it is cancelled.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::{Modified, ShipmentOp, Tracking};

/// The fields of a Delivery Note the relay reads (`GET /api/resource/Delivery Note/{name}`;
/// null fields are left out by ERPNext, hence the defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeliveryNoteDoc {
    pub name: String,
    #[serde(default)]
    pub docstatus: i64,
    #[serde(default)]
    pub is_return: i64,
    #[serde(default)]
    pub lr_no: Option<String>,
    #[serde(default)]
    pub transporter_name: Option<String>,
    #[serde(default)]
    pub items: Vec<DeliveryNoteItem>,
}

/// One row of a Delivery Note's items.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeliveryNoteItem {
    pub item_code: String,
    #[serde(default)]
    pub qty: f64,
    #[serde(default)]
    pub against_sales_order: Option<String>,
}

/// The fields of a Shipment the relay reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShipmentDoc {
    pub name: String,
    #[serde(default)]
    pub docstatus: i64,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub awb_number: Option<String>,
    #[serde(default)]
    pub tracking_url: Option<String>,
    #[serde(default)]
    pub modified: Modified,
    #[serde(default)]
    pub shipment_delivery_note: Vec<ShipmentDeliveryNote>,
}

/// One row of a Shipment's delivery notes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShipmentDeliveryNote {
    #[serde(default)]
    pub delivery_note: Option<String>,
}

impl ShipmentDoc {
    /// What this Shipment says of each of its delivery notes.
    pub fn trackings(&self) -> Vec<(String, Tracking)> {
        self.shipment_delivery_note
            .iter()
            .filter_map(|r| r.delivery_note.clone().filter(|d| !d.is_empty()))
            .map(|dn| {
                (
                    dn,
                    Tracking {
                        shipment: self.name.clone(),
                        carrier: non_empty(&self.carrier),
                        tracking_number: non_empty(&self.awb_number),
                        tracking_url: non_empty(&self.tracking_url),
                        modified: self.modified.clone(),
                        active: self.docstatus == 1,
                    },
                )
            })
            .collect()
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// What a Delivery Note comes to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub ops: Vec<ShipmentOp>,
    /// Item rows with no Sales Order, or whose Sales Order has no shop order id.
    pub skipped_rows: usize,
    /// The note is a return: not a shipment.
    pub is_return: bool,
}

/// The Sales Orders a Delivery Note's items were delivered against, in order of appearance.
pub fn sales_orders(dn: &DeliveryNoteDoc) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for so in dn
        .items
        .iter()
        .filter_map(|i| non_empty(&i.against_sales_order))
    {
        if !out.contains(&so) {
            out.push(so);
        }
    }
    out
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::model::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn qty_value(q: f64) -> Value {
    if q.fract() == 0.0 && q.abs() < 9.0e15 {
        json!(q as i64)
    } else {
        json!(q)
    }
}

/// Plans the shop's shipments for `dn`. `order_of` gives a Sales Order's shop order id;
/// `trackings` are the Shipment states recorded for this note; `shipped_at_ms` is when the relay
/// first saw it submitted.
pub fn plan(
    dn: &DeliveryNoteDoc,
    order_of: impl Fn(&str) -> Option<String>,
    trackings: &[Tracking],
    shipped_at_ms: u64,
) -> Plan {
    let mut plan = Plan::default();
    if dn.is_return != 0 {
        plan.is_return = true;
        return plan;
    }
    if dn.docstatus == 0 {
        return plan;
    }
    // order id -> (sku -> qty), keeping the order of appearance.
    let mut orders: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for item in &dn.items {
        let Some(order) = non_empty(&item.against_sales_order).and_then(|so| order_of(&so)) else {
            plan.skipped_rows += 1;
            continue;
        };
        let slot = *index.entry(order.clone()).or_insert_with(|| {
            orders.push((order.clone(), Vec::new()));
            orders.len() - 1
        });
        let lines = &mut orders[slot].1;
        match lines.iter_mut().find(|(sku, _)| *sku == item.item_code) {
            Some((_, q)) => *q += item.qty,
            None => lines.push((item.item_code.clone(), item.qty)),
        }
    }
    let tracking = trackings
        .iter()
        .filter(|t| t.active)
        .max_by(|a, b| a.modified.cmp(&b.modified));
    let carrier = tracking
        .and_then(|t| t.carrier.clone())
        .or_else(|| non_empty(&dn.transporter_name));
    let number = tracking
        .and_then(|t| t.tracking_number.clone())
        .or_else(|| non_empty(&dn.lr_no));
    let url = tracking.and_then(|t| t.tracking_url.clone());
    let status = if dn.docstatus == 1 {
        "shipped"
    } else {
        "cancelled"
    };
    for (order_id, lines) in orders {
        plan.ops.push(ShipmentOp {
            order_id,
            shipment_id: dn.name.clone(),
            body: json!({
                "status": status,
                "carrier": carrier,
                "tracking_number": number,
                "tracking_url": url,
                "items": lines.iter().map(|(sku, q)| json!({"sku": sku, "qty": qty_value(*q)})).collect::<Vec<_>>(),
                "shipped_at": iso_utc(shipped_at_ms),
            }),
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(docstatus: i64, rows: &[(&str, f64, Option<&str>)]) -> DeliveryNoteDoc {
        DeliveryNoteDoc {
            name: "DN-1".into(),
            docstatus,
            is_return: 0,
            lr_no: Some("LR-9".into()),
            transporter_name: Some("DHL".into()),
            items: rows
                .iter()
                .map(|(i, q, so)| DeliveryNoteItem {
                    item_code: (*i).into(),
                    qty: *q,
                    against_sales_order: so.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn orders(so: &str) -> Option<String> {
        match so {
            "SO-1" => Some("SHOP-1".into()),
            "SO-2" => Some("SHOP-2".into()),
            _ => None,
        }
    }

    #[test]
    fn one_shipment_per_shop_order_with_that_orders_items() {
        let p = plan(
            &dn(
                1,
                &[
                    ("A", 2.0, Some("SO-1")),
                    ("B", 1.0, Some("SO-2")),
                    ("A", 1.0, Some("SO-1")),
                    ("C", 1.0, None),
                    ("D", 1.0, Some("SO-9")),
                ],
            ),
            orders,
            &[],
            1_764_151_500_000,
        );
        assert_eq!(p.skipped_rows, 2);
        assert_eq!(p.ops.len(), 2);
        let first = &p.ops[0].body;
        assert_eq!(p.ops[0].order_id, "SHOP-1");
        assert_eq!(p.ops[0].shipment_id, "DN-1");
        assert_eq!(first["items"], json!([{"sku": "A", "qty": 3}]));
        assert_eq!(first["carrier"], "DHL");
        assert_eq!(first["tracking_number"], "LR-9");
        assert_eq!(first["tracking_url"], Value::Null);
        assert_eq!(first["shipped_at"], "2025-11-26T10:05:00Z");
        assert_eq!(p.ops[1].body["items"], json!([{"sku": "B", "qty": 1}]));
    }

    #[test]
    fn the_newest_active_shipment_sets_tracking_and_a_cancelled_one_falls_back() {
        let t = |name: &str, awb: &str, modified: &str, active: bool| Tracking {
            shipment: name.into(),
            carrier: Some("UPS".into()),
            tracking_number: Some(awb.into()),
            tracking_url: Some(format!("https://ups.example/{awb}")),
            modified: Modified(modified.into()),
            active,
        };
        let note = dn(1, &[("A", 1.0, Some("SO-1"))]);
        let p = plan(
            &note,
            orders,
            &[
                t("S1", "1Z1", "2026-01-01 10:00:00", true),
                t("S2", "1Z2", "2026-01-01 11:00:00", true),
            ],
            0,
        );
        let put = &p.ops[0].body;
        assert_eq!(
            (put["carrier"].as_str(), put["tracking_number"].as_str()),
            (Some("UPS"), Some("1Z2"))
        );
        let p = plan(
            &note,
            orders,
            &[t("S1", "1Z1", "2026-01-01 10:00:00", false)],
            0,
        );
        let put = &p.ops[0].body;
        assert_eq!(
            (
                put["carrier"].as_str(),
                put["tracking_number"].as_str(),
                &put["tracking_url"]
            ),
            (Some("DHL"), Some("LR-9"), &Value::Null)
        );
    }

    #[test]
    fn cancelled_notes_put_the_same_shipment_cancelled_returns_and_drafts_do_nothing() {
        let shipped = plan(&dn(1, &[("A", 1.0, Some("SO-1"))]), orders, &[], 0);
        let p = plan(&dn(2, &[("A", 1.0, Some("SO-1"))]), orders, &[], 0);
        let mut cancelled = shipped.ops[0].body.clone();
        cancelled["status"] = json!("cancelled");
        assert_eq!(
            p.ops,
            vec![ShipmentOp {
                order_id: "SHOP-1".into(),
                shipment_id: "DN-1".into(),
                body: cancelled
            }]
        );
        assert!(p.ops[0].is_cancelled() && !shipped.ops[0].is_cancelled());
        let mut ret = dn(1, &[("A", -1.0, Some("SO-1"))]);
        ret.is_return = 1;
        assert!(plan(&ret, orders, &[], 0).is_return);
        assert!(plan(&ret, orders, &[], 0).ops.is_empty());
        assert!(plan(&dn(0, &[("A", 1.0, Some("SO-1"))]), orders, &[], 0)
            .ops
            .is_empty());
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_798_761_599_000), "2026-12-31T23:59:59Z");
    }
}
