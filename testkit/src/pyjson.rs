//! Serialises JSON exactly as Python's `json.dumps(data)` does with its defaults: `", "` and
//! `": "` separators, `ensure_ascii` (`\uXXXX`, surrogate pairs beyond the BMP), floats in
//! `repr` form (`42.0`, `1e+16`), keys in insertion order. Frappe sends and signs these bytes.

use serde_json::Value;
use std::fmt::Write;

/// `json.dumps(value)`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) if !n.is_f64() => {
                let _ = write!(out, "{i}");
            }
            (_, Some(u), _) if !n.is_f64() => {
                let _ = write!(out, "{u}");
            }
            (_, _, Some(f)) => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, v);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` on integral values, exponent form
/// (`1e+16`, `1.5e-05`) below 1e-4 and from 1e16 on.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    if f == f.trunc() {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        let v: Value = serde_json::from_str(
            r#"{"name": "a", "qty": 42.0, "n": 3, "neg": -0.5, "big": 1e16, "small": 0.00001, "s": "Gr\u00fc\u00dfe \u20ac <&> \"q\" \ud83d\ude00 \u007f", "l": [1, null, true], "e": {}}"#,
        )
        .expect("json");
        assert_eq!(
            dumps(&v),
            r#"{"name": "a", "qty": 42.0, "n": 3, "neg": -0.5, "big": 1e+16, "small": 1e-05, "s": "Gr\u00fc\u00dfe \u20ac <&> \"q\" \ud83d\ude00 \u007f", "l": [1, null, true], "e": {}}"#
        );
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1234.5678), "1234.5678");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(0.0), "0.0");
    }
}
