//! Domain types shared by the modules: Bin rows read back from ERPNext, stock levels, stock
//! signals, the inbox records they are stored as, and the wall clock in milliseconds.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A Frappe `modified` value: a naive timestamp in the site's time zone, as ERPNext prints it
/// (`2025-06-02 14:05:07.654321`, microseconds only when non-zero). Ordered by time.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Modified(pub String);

impl PartialEq for Modified {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Modified {}

impl Modified {
    /// The value padded to `YYYY-MM-DD HH:MM:SS.ffffff`, so that string order is time order.
    fn normalized(&self) -> String {
        let s = self.0.trim().replace('T', " ");
        match s.split_once('.') {
            // By characters, not bytes: a malformed value must not panic.
            Some((head, frac)) => {
                format!("{head}.{:0<6}", frac.chars().take(6).collect::<String>())
            }
            None => format!("{s}.000000"),
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An RFC 3339 date-time (`2026-11-26T09:12:44.5+01:00`, `Z` or a `±hh:mm` offset, `T`, `t`
/// or a space between date and time) as (seconds since 1970-01-01 UTC, nanoseconds); None when
/// it is not one, including impossible dates such as 2026-02-29. The text is read as it is
/// (no trimming): callers that tolerate surrounding spaces trim first.
pub(crate) fn rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| digits_of(text.get(r)?);
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&mo) || d < 1 || d > month_days || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let mut scale: u32 = 100_000_000;
        for c in frac[..n].bytes().take(9) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &frac[n..];
    }
    let offset_minutes: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = rest.get(1..)?;
            if tz.len() != 5 || tz.as_bytes()[2] != b':' {
                return None;
            }
            let (oh, om) = (digits_of(tz.get(0..2)?)?, digits_of(tz.get(3..5)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_minutes * 60;
    Some((secs, nanos))
}

fn digits_of(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Modified {
    /// Microseconds since 1970-01-01 of this naive timestamp (no zone is applied).
    pub(crate) fn micros(&self) -> Option<i64> {
        let n = self.normalized();
        let num = |a: usize, b: usize| n.get(a..b).and_then(|s| s.parse::<i64>().ok());
        let days = days_from_civil(num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let secs = days * 86_400 + num(11, 13)? * 3600 + num(14, 16)? * 60 + num(17, 19)?;
        Some(secs * 1_000_000 + num(20, 26)?)
    }

    /// The timestamp `secs` seconds earlier, in the same format; None if this one does not parse.
    pub fn minus_secs(&self, secs: u64) -> Option<Modified> {
        Some(Self::from_micros(self.micros()? - secs as i64 * 1_000_000))
    }

    /// The timestamp `secs` seconds later; None if this one does not parse.
    pub fn plus_secs(&self, secs: u64) -> Option<Modified> {
        Some(Self::from_micros(self.micros()? + secs as i64 * 1_000_000))
    }

    /// The naive timestamp `t` microseconds after 1970-01-01 00:00, in Frappe's format.
    pub(crate) fn from_micros(t: i64) -> Modified {
        let (days, rem) = (t.div_euclid(86_400_000_000), t.rem_euclid(86_400_000_000));
        let (y, m, d) = civil_from_days(days);
        let (s, us) = (rem / 1_000_000, rem % 1_000_000);
        let base = format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            s / 3600,
            (s / 60) % 60,
            s % 60
        );
        Modified(if us == 0 {
            base
        } else {
            format!("{base}.{us:06}")
        })
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
    fn a_shipment_operation_stored_under_contract_1_still_reads() {
        let shipped: ShipmentOp = serde_json::from_str(
            r#"{"order_id": "S-1", "shipment_id": "DN-1", "put": {"status": "shipped"}}"#,
        )
        .expect("shipped");
        assert_eq!(shipped.body["status"], "shipped");
        let deleted: ShipmentOp =
            serde_json::from_str(r#"{"order_id": "S-1", "shipment_id": "DN-1", "put": null}"#)
                .expect("deleted");
        assert!(deleted.body.is_null() && !deleted.is_cancelled());
    }

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
    #[serde(rename = "Item")]
    Item,
}

impl DocKind {
    /// The ERPNext doctype name.
    pub fn doctype(self) -> &'static str {
        match self {
            DocKind::DeliveryNote => "Delivery Note",
            DocKind::Shipment => "Shipment",
            DocKind::Item => "Item",
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

/// What the shop should hold for one shipment: the body of its `PUT`, whose `status` is
/// `shipped` or (once the delivery note is cancelled) `cancelled`. An operation stored by a
/// relay speaking shop contract 1 reads back with its `put` as the body: a shipped body, or null
/// for a cancellation that contract 1 sent as a bodyless DELETE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentOp {
    pub order_id: String,
    pub shipment_id: String,
    #[serde(alias = "put", default)]
    pub body: serde_json::Value,
}

impl ShipmentOp {
    /// True when the delivery note was cancelled (`"status": "cancelled"`).
    pub fn is_cancelled(&self) -> bool {
        self.body["status"] == "cancelled"
    }
}

/// An ERPNext event as stored in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErpEvent {
    /// Stock may have changed for these (item, warehouse) pairs.
    Stock(StockSignal),
    /// A Delivery Note, Shipment or Item changed; the relay reads it back. A Delivery Note also
    /// names the (item, warehouse) pairs whose stock it moved.
    Document {
        doc: DocKind,
        event: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<(String, String)>,
    },
}

/// An inbox record: the parsed event and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxRecord {
    pub received_ms: u64,
    pub event: ErpEvent,
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
