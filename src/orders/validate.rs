//! Checks an order body against the shop contract's `ShopOrder` schema, its bounds
//! ([`OrderLimits`]) and the money rules of [`crate::orders::money`] (the pricer the worker
//! uses, so an order accepted here can be priced there), listing every problem (the first
//! `orders.max_problems` of them, and how many more) before anything is stored. Pure.

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::config::OrderLimits;
use crate::model::{civil_from_days, rfc3339};
use crate::orders::model::ShopOrder;
use crate::orders::money::{self, Amounts, LineAmounts};

/// One thing wrong with an order body: where (`lines[1].qty`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub problem: String,
}

/// Why an order body was refused: the first problems found (at most `orders.max_problems`)
/// and how many more there were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub not_listed: usize,
}

/// Collects problems while walking the body: the first `listed` of them, the rest counted.
struct Checker<'l> {
    limits: &'l OrderLimits,
    problems: Vec<Problem>,
    not_listed: usize,
}

/// What a field must be.
#[derive(Clone, Copy)]
enum Want {
    /// A string with at least one non-blank character.
    Text,
    /// A string, or null.
    OptionalText,
    /// A number of 0 or more.
    NonNegative,
    /// A number greater than 0.
    Positive,
    /// A JSON object.
    Object,
}

impl Checker<'_> {
    fn fail(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        if self.problems.len() >= self.limits.max_problems {
            self.not_listed += 1;
            return;
        }
        self.problems.push(Problem {
            field: field.into(),
            problem: problem.into(),
        });
    }

    fn refusal(self) -> Refusal {
        Refusal {
            problems: self.problems,
            not_listed: self.not_listed,
        }
    }

    /// False (and a problem) when the text is longer than `orders.max_text_chars`.
    fn short(&mut self, field: &str, text: &str) -> bool {
        let max = self.limits.max_text_chars;
        let n = text.chars().count();
        if n > max {
            self.fail(
                field,
                format!(
                    "is {n} characters long; at most {max} are allowed (orders.max_text_chars)"
                ),
            );
        }
        n <= max
    }

    /// Every string inside a `fields` value must be at most `orders.max_field_chars` long.
    fn field_strings(&mut self, value: &Value, at: &str) {
        match value {
            Value::String(s) => {
                let max = self.limits.max_field_chars;
                let n = s.chars().count();
                if n > max {
                    self.fail(
                        at,
                        format!("is {n} characters long; at most {max} are allowed (orders.max_field_chars)"),
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.field_strings(v, &format!("{at}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.short(&format!("{at} key"), k);
                    self.field_strings(v, &join(at, k));
                }
            }
            _ => {}
        }
    }

    /// Checks `obj[key]`: `required` says whether it may be absent (null counts as absent).
    fn check<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        at: &str,
        key: &str,
        want: Want,
        required: bool,
    ) -> Option<&'a Value> {
        let field = join(at, key);
        let value = match obj.get(key) {
            None | Some(Value::Null) if matches!(want, Want::OptionalText) || !required => {
                return None
            }
            None | Some(Value::Null) => {
                self.fail(field, "is required");
                return None;
            }
            Some(v) => v,
        };
        let ok = match want {
            Want::Text => match value.as_str() {
                Some(s) if s.trim().is_empty() => {
                    self.fail(field, "must not be empty");
                    return None;
                }
                Some(s) if !self.short(&field, s) => return None,
                Some(_) => true,
                None => false,
            },
            Want::OptionalText => match value.as_str() {
                Some(s) if !self.short(&field, s) => return None,
                Some(_) => true,
                None => false,
            },
            Want::NonNegative | Want::Positive => match value.as_f64() {
                Some(n) if matches!(want, Want::Positive) && n <= 0.0 => {
                    self.fail(field, "must be greater than 0");
                    return None;
                }
                Some(n) if n < 0.0 => {
                    self.fail(field, "must be 0 or more");
                    return None;
                }
                Some(_) => true,
                None => false,
            },
            Want::Object => value.is_object(),
        };
        if ok {
            Some(value)
        } else {
            let kind = match want {
                Want::Text => "a string",
                Want::OptionalText => "a string or null",
                Want::NonNegative | Want::Positive => "a number",
                Want::Object => "an object",
            };
            self.fail(field, format!("must be {kind}, not {}", type_name(value)));
            None
        }
    }

    fn fields(&mut self, obj: &Map<String, Value>, at: &str) {
        if let Some(fields) = self.check(obj, at, "fields", Want::Object, false) {
            self.field_strings(fields, &join(at, "fields"));
        }
    }

    fn address(&mut self, obj: &Map<String, Value>, key: &str, required: bool) {
        let Some(value) = obj.get(key).filter(|v| !v.is_null()) else {
            if required {
                self.fail(key, "is required");
            }
            return;
        };
        let Some(addr) = value.as_object() else {
            self.fail(key, format!("must be an object, not {}", type_name(value)));
            return;
        };
        self.check(addr, key, "line1", Want::Text, true);
        self.check(addr, key, "line2", Want::OptionalText, false);
        self.check(addr, key, "city", Want::Text, true);
        self.check(addr, key, "postcode", Want::OptionalText, false);
        if let Some(c) = self.check(addr, key, "country", Want::Text, true) {
            let c = c.as_str().unwrap_or_default();
            if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                self.fail(
                    join(key, "country"),
                    format!("`{c}` is not an ISO 3166-1 alpha-2 code such as DE"),
                );
            }
        }
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// True for an email address as far as the relay can tell: after trimming, one `@` with
/// something on each side, a dot in the domain, and no spaces.
pub fn plausible_email(email: &str) -> bool {
    let e = email.trim();
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e.chars().any(char::is_whitespace)
}

/// The UTC calendar date (year, month, day) of an RFC 3339 date-time such as
/// `2026-11-26T09:12:44Z` or `2026-11-26T23:30:00-02:00`; None when it is not one.
pub fn utc_date(text: &str) -> Option<(i64, u32, u32)> {
    let (secs, _) = rfc3339(text)?;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    Some((y, u32::try_from(m).ok()?, u32::try_from(d).ok()?))
}

/// Validates an order body within `limits`. `channels` are the channel names the relay
/// knows; an order for another channel is refused (its warehouse would be unknown). Returns
/// the order, or the problems found.
pub fn validate(
    body: &Value,
    channels: &[String],
    limits: &OrderLimits,
) -> Result<ShopOrder, Refusal> {
    let mut c = Checker {
        limits,
        problems: Vec::new(),
        not_listed: 0,
    };
    let Some(obj) = body.as_object() else {
        c.fail(
            "",
            format!(
                "the body must be a JSON object (ShopOrder), not {}",
                type_name(body)
            ),
        );
        return Err(c.refusal());
    };
    c.check(obj, "", "order_id", Want::Text, true);
    if let Some(ch) = c.check(obj, "", "channel", Want::Text, true) {
        let ch = ch.as_str().unwrap_or_default();
        if !channels.iter().any(|k| k == ch) {
            c.fail(
                "channel",
                format!(
                    "`{ch}` is not a channel of the relay (it knows {})",
                    channels.join(", ")
                ),
            );
        }
    }
    if let Some(at) = c.check(obj, "", "placed_at", Want::Text, true) {
        if utc_date(at.as_str().unwrap_or_default()).is_none() {
            c.fail(
                "placed_at",
                "is not an RFC 3339 date-time such as 2026-11-26T09:12:44Z",
            );
        }
    }
    if let Some(cur) = c.check(obj, "", "currency", Want::Text, true) {
        let cur = cur.as_str().unwrap_or_default();
        if !(cur.len() == 3 && cur.bytes().all(|b| b.is_ascii_uppercase())) {
            c.fail(
                "currency",
                format!("`{cur}` is not an ISO 4217 code such as EUR"),
            );
        }
    }
    match obj.get("customer") {
        Some(Value::Object(cust)) => {
            if let Some(e) = c.check(cust, "customer", "email", Want::Text, true) {
                if !plausible_email(e.as_str().unwrap_or_default()) {
                    c.fail("customer.email", "is not an email address");
                }
            }
            for key in ["first_name", "last_name", "phone"] {
                c.check(cust, "customer", key, Want::OptionalText, false);
            }
            c.fields(cust, "customer");
        }
        None | Some(Value::Null) => c.fail("customer", "is required"),
        Some(other) => c.fail(
            "customer",
            format!("must be an object, not {}", type_name(other)),
        ),
    }
    c.address(obj, "shipping_address", true);
    c.address(obj, "billing_address", false);
    // The money fields as far as they are numbers of the right sign; None where not (already
    // a problem), and no lines at all when `lines` itself is wrong.
    let mut amounts: Option<Amounts> = None;
    match obj.get("lines") {
        Some(Value::Array(lines)) if lines.is_empty() => {
            c.fail("lines", "must hold at least one line");
        }
        Some(Value::Array(lines)) if lines.len() > limits.max_lines => {
            c.fail(
                "lines",
                format!(
                    "holds {} lines; at most {} are allowed (orders.max_lines)",
                    lines.len(),
                    limits.max_lines
                ),
            );
        }
        Some(Value::Array(lines)) => {
            let mut read = Vec::with_capacity(lines.len());
            for (i, line) in lines.iter().enumerate() {
                let at = format!("lines[{i}]");
                let Some(line) = line.as_object() else {
                    c.fail(&at, format!("must be an object, not {}", type_name(line)));
                    read.push(LineAmounts {
                        sku: "",
                        qty: None,
                        unit_price: None,
                        discount: None,
                    });
                    continue;
                };
                let sku = c
                    .check(line, &at, "sku", Want::Text, true)
                    .and_then(Value::as_str);
                let qty = c.check(line, &at, "qty", Want::Positive, true);
                let price = c.check(line, &at, "unit_price", Want::NonNegative, true);
                let discount = match line.get("discount") {
                    None | Some(Value::Null) => Some(0.0),
                    Some(_) => c
                        .check(line, &at, "discount", Want::NonNegative, false)
                        .and_then(Value::as_f64),
                };
                c.fields(line, &at);
                read.push(LineAmounts {
                    sku: sku.unwrap_or_default(),
                    qty: qty.and_then(Value::as_f64),
                    unit_price: price.and_then(Value::as_f64),
                    discount,
                });
            }
            amounts = Some(Amounts {
                lines: read,
                discount_total: None,
                shipping: None,
                total: None,
                taxes_on_top: Vec::new(),
            });
        }
        None | Some(Value::Null) => c.fail("lines", "is required"),
        Some(other) => c.fail(
            "lines",
            format!("must be an array, not {}", type_name(other)),
        ),
    }
    let shipping = match obj.get("shipping") {
        None | Some(Value::Null) => Some(0.0),
        Some(Value::Object(s)) => {
            c.check(s, "shipping", "method", Want::Text, true);
            c.check(s, "shipping", "amount", Want::NonNegative, true)
                .and_then(Value::as_f64)
        }
        Some(other) => {
            c.fail(
                "shipping",
                format!("must be an object, not {}", type_name(other)),
            );
            None
        }
    };
    let discount_total = match obj.get("discount_total") {
        None | Some(Value::Null) => Some(0.0),
        Some(_) => c
            .check(obj, "", "discount_total", Want::NonNegative, false)
            .and_then(Value::as_f64),
    };
    let total = match obj.get("total").filter(|v| !v.is_null()) {
        Some(t) if !t.is_number() => {
            c.fail("total", format!("must be a number, not {}", type_name(t)));
            None
        }
        t => t.and_then(Value::as_f64),
    };
    if let Some(mut amounts) = amounts {
        amounts.discount_total = discount_total;
        amounts.shipping = shipping;
        amounts.total = total;
        amounts.taxes_on_top = taxes_on_top(obj);
        if let Err(problems) = money::check(&amounts) {
            for p in problems {
                c.fail(p.field(), p.problem());
            }
        }
    }
    c.fields(obj, "");
    for (field, problem) in crate::orders::state::problems(obj) {
        c.fail(field, problem);
    }
    if !c.problems.is_empty() || c.not_listed > 0 {
        return Err(c.refusal());
    }
    serde_json::from_value::<ShopOrder>(body.clone()).map_err(|e| Refusal {
        problems: vec![Problem {
            field: String::new(),
            problem: format!("does not match the ShopOrder schema: {e}"),
        }],
        not_listed: 0,
    })
}

/// The `taxes[].amount` numbers added on top of the prices (none when the prices include
/// them); amounts that are not numbers are the contract 3 checks' to report.
fn taxes_on_top(obj: &Map<String, Value>) -> Vec<f64> {
    if obj.get("prices_include_tax").and_then(Value::as_bool) == Some(true) {
        return Vec::new();
    }
    match obj.get("taxes") {
        Some(Value::Array(taxes)) => taxes
            .iter()
            .filter_map(|t| t.get("amount").and_then(Value::as_f64))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn channels() -> Vec<String> {
        vec!["web".into(), "marketplace".into()]
    }

    fn good() -> Value {
        json!({
            "order_id": "SHOP-1", "channel": "web", "placed_at": "2026-11-26T09:12:44Z",
            "currency": "EUR",
            "customer": {"email": "  Ada@Example.com ", "first_name": "Ada", "last_name": null,
                         "fields": {"loyalty_tier": "gold"}},
            "shipping_address": {"line1": "Hauptstr. 1", "line2": null, "city": "Berlin",
                                 "postcode": "10115", "country": "DE"},
            "lines": [{"sku": "A", "qty": 2, "unit_price": 19.9, "discount": 1.8},
                      {"sku": "B", "qty": 1, "unit_price": 5}],
            "shipping": {"method": "DHL", "amount": 4.9},
            "discount_total": 3, "total": 44.9
        })
    }

    fn problems(body: Value) -> Vec<String> {
        match validate(&body, &channels(), &OrderLimits::default()) {
            Ok(o) => panic!("accepted: {o:?}"),
            Err(ps) => ps
                .problems
                .into_iter()
                .map(|p| format!("{}: {}", p.field, p.problem))
                .collect(),
        }
    }

    #[test]
    fn a_good_order_passes_with_its_fields() {
        let order = validate(&good(), &channels(), &OrderLimits::default()).expect("valid");
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.customer.fields["loyalty_tier"], "gold");
        assert_eq!(order.total, Some(44.9));
    }

    #[test]
    fn every_problem_is_listed() {
        let mut body = good();
        body["currency"] = json!("euro");
        body["channel"] = json!("pos");
        body["customer"]["email"] = json!("not an email");
        body["shipping_address"]["country"] = json!("Germany");
        body["lines"][0]["qty"] = json!(0);
        body["lines"][1]["sku"] = json!("");
        body["lines"][1]["unit_price"] = json!("5");
        body["placed_at"] = json!("yesterday");
        body.as_object_mut().expect("object").remove("order_id");
        let got = problems(body);
        for want in [
            "order_id: is required",
            "channel: `pos` is not a channel",
            "placed_at: is not an RFC 3339",
            "currency: `euro`",
            "customer.email: is not an email",
            "shipping_address.country: `Germany`",
            "lines[0].qty: must be greater than 0",
            "lines[1].sku: must not be empty",
            "lines[1].unit_price: must be a number, not a string",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want} missing from {got:#?}"
            );
        }
        assert_eq!(got.len(), 9, "{got:#?}");
    }

    #[test]
    fn totals_and_discounts_are_checked_to_the_cent() {
        let mut body = good();
        body["total"] = json!(44.91);
        assert_eq!(
            problems(body),
            ["total: 44.91 is not the sum of the line totals − discount_total + shipping.amount (+ the taxes when prices exclude them) (44.90)"]
        );
        let mut body = good();
        body["discount_total"] = json!(50);
        body.as_object_mut().expect("object").remove("total");
        assert_eq!(
            problems(body),
            ["discount_total: 50.00 is more than the sum of the line totals (43.00)"]
        );
        let mut body = good();
        body["lines"][1]["discount"] = json!(5.01);
        body.as_object_mut().expect("object").remove("total");
        assert!(problems(body)[0].starts_with("lines[1].discount: 5.01 is more than"));
    }

    #[test]
    fn wrong_shapes_are_named() {
        assert_eq!(
            problems(json!([1])),
            [": the body must be a JSON object (ShopOrder), not an array"]
        );
        let mut body = good();
        body["lines"] = json!([]);
        body["customer"] = json!("ada");
        body["shipping"] = json!({"amount": -1});
        body["fields"] = json!([1]);
        let got = problems(body);
        assert_eq!(
            got,
            [
                "customer: must be an object, not a string",
                "lines: must hold at least one line",
                "shipping.method: is required",
                "shipping.amount: must be 0 or more",
                "fields: must be an object, not an array"
            ]
        );
    }

    #[test]
    fn sums_that_would_wrap_are_refused_never_a_wrong_total() {
        let mut body = good();
        body["lines"] = json!([{"sku": "A", "qty": 1e300, "unit_price": 1},
                               {"sku": "B", "qty": 1e300, "unit_price": 1}]);
        let got = problems(body);
        assert_eq!(
            got,
            [
                "lines[0].qty: is too large: ERPNext holds amounts and quantities below 10^12",
                "lines[1].qty: is too large: ERPNext holds amounts and quantities below 10^12",
            ],
            "no sum is made of amounts that cannot be priced"
        );
        // Each amount fits, their product does not: the line cannot be placed.
        let mut body = good();
        body["lines"] = json!([{"sku": "A", "qty": 1e9, "unit_price": 1e9}]);
        body.as_object_mut().expect("object").remove("total");
        assert_eq!(
            problems(body),
            ["lines[0]: is too large: ERPNext holds amounts and quantities below 10^12"]
        );
        // Lines that fit one by one but not together.
        let mut body = good();
        body["lines"] = json!([{"sku": "A", "qty": 1, "unit_price": 6e11},
                               {"sku": "B", "qty": 1, "unit_price": 6e11}]);
        body.as_object_mut().expect("object").remove("total");
        assert_eq!(
            problems(body),
            ["lines: is too large: ERPNext holds amounts and quantities below 10^12"]
        );
    }

    #[test]
    fn a_line_the_pricer_cannot_place_is_refused_at_the_door() {
        // 1e-9 is more than 0, but 0 to the 6 decimal places the Sales Order is priced in.
        let mut body = good();
        body["lines"][1]["qty"] = json!(1e-9);
        body.as_object_mut().expect("object").remove("total");
        let got = problems(body);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("lines[1].qty: must be greater than 0"),
            "{got:#?}"
        );
        // What the door accepts, the pricer prices.
        let order = validate(&good(), &channels(), &OrderLimits::default()).expect("valid");
        assert_eq!(
            money::price(&order).expect("priced").total.to_string(),
            "44.90"
        );
    }

    #[test]
    fn lines_and_texts_are_bounded() {
        let limits = OrderLimits {
            max_lines: 3,
            max_text_chars: 20,
            max_field_chars: 20,
            max_problems: 50,
        };
        let refused = |body: Value| -> Vec<String> {
            let r = validate(&body, &channels(), &limits).expect_err("refused");
            r.problems
                .into_iter()
                .map(|p| format!("{}: {}", p.field, p.problem))
                .collect()
        };
        let mut body = good();
        body["lines"] = json!([
            body["lines"][0],
            body["lines"][0],
            body["lines"][0],
            body["lines"][1]
        ]);
        assert_eq!(
            refused(body),
            ["lines: holds 4 lines; at most 3 are allowed (orders.max_lines)"]
        );
        let mut body = good();
        body["shipping_address"]["city"] = json!("Garmisch-Partenkirchen");
        body["customer"]["fields"] = json!({"note": ["x".repeat(21)], "ok": "y".repeat(20)});
        assert_eq!(
            refused(body),
            [
                "customer.fields.note[0]: is 21 characters long; at most 20 are allowed (orders.max_field_chars)",
                "shipping_address.city: is 22 characters long; at most 20 are allowed (orders.max_text_chars)",
            ]
        );
        // Counted in characters, not bytes: twenty umlauts fit.
        let mut body = good();
        body["shipping_address"]["city"] = json!("ü".repeat(20));
        assert!(validate(&body, &channels(), &limits).is_ok());
        assert!(validate(&good(), &channels(), &OrderLimits::default()).is_ok());
    }

    #[test]
    fn only_the_first_problems_are_listed_the_rest_counted() {
        let mut body = good();
        let line = json!({"sku": "", "qty": 1, "unit_price": 1});
        body["lines"] = json!(vec![line; 120]);
        body.as_object_mut().expect("object").remove("total");
        let r = validate(&body, &channels(), &OrderLimits::default()).expect_err("refused");
        assert_eq!(r.problems.len(), 50);
        assert_eq!(r.not_listed, 70);
        assert_eq!(r.problems[49].field, "lines[49].sku");
    }

    #[test]
    fn placed_at_gives_the_utc_date() {
        assert_eq!(utc_date("2026-11-26T09:12:44Z"), Some((2026, 11, 26)));
        assert_eq!(utc_date("2026-11-26T23:30:00-02:00"), Some((2026, 11, 27)));
        assert_eq!(
            utc_date("2026-01-01T00:30:00.123+01:00"),
            Some((2025, 12, 31))
        );
        assert_eq!(utc_date("2024-02-29T12:00:00Z"), Some((2024, 2, 29)));
        for bad in [
            "2026-02-29T12:00:00Z",
            "2026-11-26",
            "2026-11-26T09:12:44",
            "2026-13-01T00:00:00Z",
            "2026-11-26T09:12:44+0100",
            "2026-11-26T09:12:44.Z",
            "２０２６-11-26T09:12:44Z",
        ] {
            assert_eq!(utc_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn emails_are_judged_after_trimming() {
        assert!(plausible_email(" Ada@Example.com  "));
        for bad in [
            "ada",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@.com",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    mod never_panics {
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn on_arbitrary_text(s in ".{0,40}") {
                let _ = super::super::utc_date(&s);
                let _ = super::super::plausible_email(&s);
            }
        }
    }
}
