//! The test order `staging-test` places, as the shop would send it, and the Sales Order it must
//! become (DESIGN of the order contract: a line's `discount` is taken off the whole line,
//! shipping is added on top, and ERPNext's grand total equals the order's `total`).

use serde_json::{json, Value};

/// Every name the run gives its documents, derived from one run id so that they are easy to
/// find in ERPNext and in the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub item_code: String,
    pub order_id: String,
    pub tracking_number: String,
    pub webhook_id: String,
}

impl Names {
    /// Names for run `run_id` with `prefix` (`SRSTAGE-20261129-132501-k3q`).
    pub fn new(prefix: &str, run_id: &str) -> Self {
        let base = format!("{prefix}-{run_id}");
        Self {
            item_code: base.clone(),
            order_id: format!("{base}-ORDER"),
            tracking_number: format!("{base}-TRACK"),
            webhook_id: format!("msg_{}", base.to_ascii_lowercase().replace('-', "_")),
        }
    }
}

/// The test order's amounts: one line of `qty` at `unit_price` with `discount` off the line,
/// and `shipping` on top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Money {
    pub qty: f64,
    pub unit_price: f64,
    pub discount: f64,
    pub shipping: f64,
}

impl Money {
    /// The amounts the cycle uses: 2 x 12.50, 1.00 off the line, 4.95 shipping.
    pub const TEST: Money = Money {
        qty: 2.0,
        unit_price: 12.5,
        discount: 1.0,
        shipping: 4.95,
    };

    /// The line total: `qty x unit_price - discount`.
    pub fn line_total(&self) -> f64 {
        cents(self.qty * self.unit_price - self.discount)
    }

    /// The per-unit rate ERPNext shows for the line.
    pub fn rate(&self) -> f64 {
        cents(self.line_total() / self.qty)
    }

    /// The order total: the line total plus shipping.
    pub fn total(&self) -> f64 {
        cents(self.line_total() + self.shipping)
    }
}

/// Rounds to cents.
pub fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// True when two amounts agree to the cent.
pub fn same_amount(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.005
}

/// Who the test order is for and where it goes.
#[derive(Debug, Clone)]
pub struct Party<'a> {
    pub email: &'a str,
    pub country_code: &'a str,
    pub currency: &'a str,
    pub channel: &'a str,
}

/// The order body (the shop contract's ShopOrder), `placed_at` in RFC 3339 UTC.
pub fn order_body(names: &Names, money: Money, party: &Party<'_>, placed_at: &str) -> Value {
    json!({
        "order_id": names.order_id,
        "channel": party.channel,
        "placed_at": placed_at,
        "currency": party.currency,
        "customer": {
            "email": party.email,
            "first_name": "Staging",
            "last_name": "Test",
            "phone": "+1 555 0100",
            "fields": {}
        },
        "shipping_address": {
            "line1": "1 Test Street",
            "line2": null,
            "city": "Testville",
            "postcode": "12345",
            "country": party.country_code
        },
        "lines": [{
            "sku": names.item_code,
            "qty": money.qty,
            "unit_price": money.unit_price,
            "discount": money.discount,
            "fields": {}
        }],
        "shipping": {"method": "shoprelay staging test", "amount": money.shipping},
        "discount_total": 0,
        "total": money.total(),
        "fields": {}
    })
}

/// `YYYY-MM-DD` and RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`) of a Unix time, in UTC.
pub fn utc_date_and_time(unix_secs: u64) -> (String, String) {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = crate::model::civil_from_days(days);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let time = format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    (date, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_amounts_add_up_to_the_cent() {
        let m = Money::TEST;
        assert_eq!(m.line_total(), 24.0);
        assert_eq!(m.rate(), 12.0);
        assert_eq!(m.total(), 28.95);
        assert!(same_amount(28.949_999_999, 28.95));
        assert!(!same_amount(28.94, 28.95));
    }

    #[test]
    fn names_share_the_run_id_and_the_body_keeps_the_contract() {
        let names = Names::new("SRSTAGE", "20261129-132501-k3q");
        assert_eq!(names.item_code, "SRSTAGE-20261129-132501-k3q");
        assert_eq!(names.order_id, "SRSTAGE-20261129-132501-k3q-ORDER");
        assert_eq!(names.webhook_id, "msg_srstage_20261129_132501_k3q");
        let party = Party {
            email: "t@example.com",
            country_code: "US",
            currency: "USD",
            channel: "web",
        };
        let body = order_body(&names, Money::TEST, &party, "2026-11-29T13:25:01Z");
        assert_eq!(body["lines"][0]["sku"], "SRSTAGE-20261129-132501-k3q");
        assert_eq!(body["total"], 28.95);
        assert_eq!(body["shipping_address"]["country"], "US");
    }

    #[test]
    fn unix_times_print_as_utc() {
        assert_eq!(
            utc_date_and_time(1_764_422_701),
            ("2025-11-29".to_owned(), "2025-11-29T13:25:01Z".to_owned())
        );
        assert_eq!(utc_date_and_time(0).1, "1970-01-01T00:00:00Z");
    }
}
