//! Reading fields of the JSON documents ERPNext and the shop answer with: absent or null
//! fields read as empty, numbers may come as strings.

use serde_json::Value;

/// The field as text (empty when absent or null; other values as their JSON).
pub(super) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The field as a number (0 when absent or not a number).
pub(super) fn number(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(|x| {
            x.as_f64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0.0)
}

/// The rows of a child table (none when absent).
pub(super) fn rows(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
