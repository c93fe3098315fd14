//! Pure: contract 3's order state. The checks of the fields it adds to an order body (every
//! problem listed, like the rest of the order's checks), and the rule that decides whether a
//! delivery is a newer state of a known order, the same one, or an older one.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::model::rfc3339;

/// What a delivery of a known order is, compared with the state last applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Its `updated_at` is newer: store it and apply it.
    Newer,
    /// The same `updated_at`, or neither has one: a duplicate.
    Same,
    /// Older than the state applied: changes nothing.
    Older,
}

/// Nanoseconds since 1970-01-01 UTC of an RFC 3339 date-time (`2026-11-26T09:12:44.5+01:00`);
/// None when it is not one.
pub fn instant(text: &str) -> Option<i128> {
    let (secs, nanos) = rfc3339(text.trim())?;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

/// Compares the `updated_at` of a delivery with the one of the state last applied.
pub fn freshness(applied: Option<&str>, incoming: Option<&str>) -> Freshness {
    match (applied.and_then(instant), incoming.and_then(instant)) {
        (_, None) => Freshness::Same,
        (None, Some(_)) => Freshness::Newer,
        (Some(a), Some(b)) if b > a => Freshness::Newer,
        (Some(a), Some(b)) if b == a => Freshness::Same,
        _ => Freshness::Older,
    }
}

/// Problems found: (where, what).
struct Found(Vec<(String, String)>);

impl Found {
    fn fail(&mut self, field: String, problem: impl Into<String>) {
        self.0.push((field, problem.into()));
    }

    /// A number of 0 or more at `obj[key]` (required or not); its value when it is one.
    fn amount(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        key: &str,
        required: bool,
    ) -> Option<f64> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(format!("{at}.{key}"), "is required");
                }
                None
            }
            Some(v) => match v.as_f64() {
                Some(n) if n >= 0.0 && n.is_finite() => Some(n),
                Some(_) => {
                    self.fail(format!("{at}.{key}"), "must be 0 or more");
                    None
                }
                None => {
                    self.fail(format!("{at}.{key}"), "must be a number");
                    None
                }
            },
        }
    }

    /// A non-blank string at `obj[key]`.
    fn text(&mut self, obj: &Map<String, Value>, at: &str, key: &str) -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::String(_)) => {
                self.fail(format!("{at}.{key}"), "must not be empty");
                None
            }
            None | Some(Value::Null) => {
                self.fail(format!("{at}.{key}"), "is required");
                None
            }
            Some(_) => {
                self.fail(format!("{at}.{key}"), "must be a string");
                None
            }
        }
    }

    /// An optional RFC 3339 date-time (or null) at `obj[key]`.
    fn date_time(&mut self, obj: &Map<String, Value>, at: &str, key: &str) {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if instant(s).is_some() => {}
            Some(v) => self.fail(
                join(at, key),
                format!("{v} is not an RFC 3339 date-time such as 2026-11-26T09:12:44Z"),
            ),
        }
    }

    fn optional_text(&mut self, obj: &Map<String, Value>, at: &str, key: &str) {
        if !matches!(obj.get(key), None | Some(Value::Null | Value::String(_))) {
            self.fail(join(at, key), "must be a string or null");
        }
    }

    fn flag(&mut self, obj: &Map<String, Value>, at: &str, key: &str) {
        if !matches!(obj.get(key), None | Some(Value::Null | Value::Bool(_))) {
            self.fail(join(at, key), "must be true or false");
        }
    }

    /// The objects of the array at `obj[key]` with their index (absent: none).
    fn objects<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
    ) -> Vec<(usize, &'a Map<String, Value>)> {
        match obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v.as_object() {
                        Some(o) => out.push((i, o)),
                        None => self.fail(format!("{key}[{i}]"), "must be an object"),
                    }
                }
                out
            }
            Some(_) => {
                self.fail(key.to_owned(), "must be an array");
                Vec::new()
            }
        }
    }

    fn unique(&mut self, seen: &mut BTreeSet<String>, field: String, id: Option<String>) {
        if let Some(id) = id {
            if !seen.insert(id.clone()) {
                self.fail(field, format!("`{id}` appears twice in this order"));
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

/// Every problem with the contract 3 fields of an order body (`updated_at`, `status`,
/// `prices_include_tax`, `taxes`, `lines[].cancelled_qty`, `payments`, `refunds`), each as
/// (where, what).
pub fn problems(body: &Map<String, Value>) -> Vec<(String, String)> {
    let mut f = Found(Vec::new());
    f.date_time(body, "", "updated_at");
    match body.get("status") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "placed" || s == "cancelled" => {}
        Some(v) => f.fail(
            "status".into(),
            format!("must be \"placed\" or \"cancelled\", not {v}"),
        ),
    }
    f.flag(body, "", "prices_include_tax");
    let mut titles = BTreeSet::new();
    for (i, t) in f.objects(body, "taxes") {
        let at = format!("taxes[{i}]");
        let title = f.text(t, &at, "title");
        f.unique(&mut titles, format!("{at}.title"), title);
        f.amount(t, &at, "rate", false);
        f.amount(t, &at, "amount", true);
    }
    if let Some(Value::Array(lines)) = body.get("lines") {
        for (i, line) in lines.iter().enumerate() {
            let Some(line) = line.as_object() else {
                continue;
            };
            let at = format!("lines[{i}]");
            if let Some(c) = f.amount(line, &at, "cancelled_qty", false) {
                if line
                    .get("qty")
                    .and_then(Value::as_f64)
                    .is_some_and(|q| c > q)
                {
                    f.fail(
                        format!("{at}.cancelled_qty"),
                        format!("{c} is more than the line's qty"),
                    );
                }
            }
        }
    }
    let mut ids = BTreeSet::new();
    for (i, p) in f.objects(body, "payments") {
        let at = format!("payments[{i}]");
        let id = f.text(p, &at, "id");
        f.unique(&mut ids, format!("{at}.id"), id);
        f.text(p, &at, "method");
        f.amount(p, &at, "amount", true);
        f.date_time(p, &at, "paid_at");
        f.optional_text(p, &at, "reference");
    }
    let mut refund_ids = BTreeSet::new();
    for (i, r) in f.objects(body, "refunds") {
        let at = format!("refunds[{i}]");
        let id = f.text(r, &at, "id");
        f.unique(&mut refund_ids, format!("{at}.id"), id);
        f.amount(r, &at, "amount", true);
        f.amount(r, &at, "shipping", false);
        f.date_time(r, &at, "refunded_at");
        f.optional_text(r, &at, "reason");
        f.flag(r, &at, "restock");
        match r.get("lines") {
            None | Some(Value::Null) => {}
            Some(Value::Array(lines)) => {
                for (j, l) in lines.iter().enumerate() {
                    let lat = format!("{at}.lines[{j}]");
                    let Some(l) = l.as_object() else {
                        f.fail(lat, "must be an object");
                        continue;
                    };
                    f.text(l, &lat, "sku");
                    match l.get("qty").and_then(Value::as_f64) {
                        Some(q) if q > 0.0 => {}
                        _ => f.fail(format!("{lat}.qty"), "must be a number greater than 0"),
                    }
                }
            }
            Some(_) => f.fail(format!("{at}.lines"), "must be an array"),
        }
    }
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_compare_across_offsets_and_fractions() {
        let a = instant("2026-11-26T09:12:44Z").expect("a");
        assert_eq!(instant("2026-11-26T10:12:44+01:00"), Some(a));
        assert!(instant("2026-11-26T09:12:44.001Z").expect("b") > a);
        assert!(instant("2026-11-26").is_none());
        assert!(instant("yesterday").is_none());
        assert_eq!(
            freshness(Some("2026-11-26T09:12:44Z"), Some("2026-11-26T09:12:45Z")),
            Freshness::Newer
        );
        assert_eq!(
            freshness(
                Some("2026-11-26T09:12:44Z"),
                Some("2026-11-26T10:12:44+01:00")
            ),
            Freshness::Same
        );
        assert_eq!(
            freshness(Some("2026-11-26T09:12:44Z"), Some("2026-11-26T09:00:00Z")),
            Freshness::Older
        );
        assert_eq!(freshness(None, None), Freshness::Same);
        assert_eq!(
            freshness(Some("2026-11-26T09:12:44Z"), None),
            Freshness::Same
        );
        assert_eq!(
            freshness(None, Some("2026-11-26T09:12:44Z")),
            Freshness::Newer
        );
    }

    #[test]
    fn every_problem_of_the_new_fields_is_listed() {
        let body = json!({
            "updated_at": "soon",
            "status": "shipped",
            "prices_include_tax": "yes",
            "taxes": [{"title": "VAT", "amount": -1}, {"title": "VAT", "amount": 1}],
            "lines": [{"sku": "A", "qty": 1, "unit_price": 1, "cancelled_qty": 2}],
            "payments": [{"id": "p1", "method": "card", "amount": 5},
                         {"id": "p1", "method": "", "paid_at": "x"}],
            "refunds": [{"id": "r1", "amount": 1, "lines": [{"sku": "A", "qty": 0}]}]
        });
        let fields: Vec<String> = problems(body.as_object().expect("object"))
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(
            fields,
            [
                "updated_at",
                "status",
                "prices_include_tax",
                "taxes[0].amount",
                "taxes[1].title",
                "lines[0].cancelled_qty",
                "payments[1].id",
                "payments[1].method",
                "payments[1].amount",
                "payments[1].paid_at",
                "refunds[0].lines[0].qty",
            ]
        );
        assert!(problems(&Map::new()).is_empty());
    }
}
