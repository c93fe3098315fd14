//! The shipped Webhook templates render, as Frappe renders them, to JSON the relay accepts, for
//! any document of their doctype: hostile strings, non-ASCII names, empty optional fields.

use serde_json::{json, Map, Value};
use shoprelay::erpnext::webhooks::{shipped, WebhookDoc};
use shoprelay::inbound::erpnext::parse_event;
use shoprelay::signing::frappe_signature;
use shoprelay_testkit::frappe::{as_dict, fields, render, RenderError, Webhook};

const HOSTILE: &str = "Lager \"M\u{fc}nchen\" \\ </script> {{ doc.name }} {% raw %} \u{20ac}\u{1f600}\n\ttab 'quote' <&>";

fn text_type(t: &str) -> bool {
    matches!(
        t,
        "Data"
            | "Link"
            | "Dynamic Link"
            | "Small Text"
            | "Text"
            | "Long Text"
            | "Text Editor"
            | "Select"
            | "Autocomplete"
            | "Code"
    )
}

/// A document whose every text field (children included) holds `value`.
fn filled(doctype: &str, value: &str) -> Value {
    let mut values = Map::new();
    for (name, ftype, child) in fields(doctype) {
        if text_type(&ftype) {
            values.insert(name, json!(value));
        } else if let Some(child) = child {
            let row: Map<String, Value> = fields(&child)
                .into_iter()
                .filter(|(_, t, _)| text_type(t))
                .map(|(n, _, _)| (n, json!(value)))
                .collect();
            values.insert(
                name,
                Value::Array(vec![Value::Object(row.clone()), Value::Object(row)]),
            );
        }
    }
    as_dict(doctype, value, "2026-11-26 10:00:00.123456", 1, &values)
}

/// The relay's Webhook document as the emulated site reads it.
fn emulated(hook: &WebhookDoc) -> Webhook {
    Webhook::from_doc(hook).expect("a Webhook document")
}

fn check(hook: &WebhookDoc, doc: &Value) -> Value {
    let d = render(&emulated(hook), doc, Some("secret"), "http://relay")
        .unwrap_or_else(|e| panic!("{}: {e}", hook.name));
    // The wire bytes are pure ASCII (ensure_ascii) and signed as sent.
    assert!(d.body.is_ascii(), "{}", hook.name);
    assert_eq!(d.signature, frappe_signature("secret", &d.body));
    assert_eq!(d.url, "http://relay/webhooks/erpnext");
    let v: Value = serde_json::from_slice(&d.body).expect("JSON");
    assert_eq!(v["doctype"], hook.webhook_doctype.as_str(), "{}", hook.name);
    assert_eq!(v["event"], hook.webhook_docevent.as_str(), "{}", hook.name);
    v
}

#[test]
fn hostile_strings_survive_every_template() {
    for hook in shipped().expect("shipped") {
        let doc = filled(&hook.webhook_doctype, HOSTILE);
        let v = check(&hook, &doc);
        assert_eq!(v["name"], HOSTILE, "{}", hook.name);
        let body = serde_json::to_vec(&v).expect("json");
        parse_event(&body).unwrap_or_else(|e| panic!("{}: the relay refused it: {e}", hook.name));
    }
}

#[test]
fn empty_optional_fields_render_as_null() {
    for hook in shipped().expect("shipped") {
        let mut values = Map::new();
        values.insert("item_code".into(), json!("A"));
        values.insert("warehouse".into(), json!("W"));
        values.insert(
            "items".into(),
            json!([{"item_code": "A", "warehouse": "W", "s_warehouse": "W"}]),
        );
        let doc = as_dict(
            &hook.webhook_doctype,
            "X-1",
            "2026-11-26 10:00:00",
            1,
            &values,
        );
        let v = check(&hook, &doc);
        parse_event(&serde_json::to_vec(&v).expect("json"))
            .unwrap_or_else(|e| panic!("{}: {e}", hook.name));
    }
}

#[test]
fn a_template_using_doc_dot_items_is_caught() {
    let mut hook = shipped()
        .expect("shipped")
        .into_iter()
        .find(|h| h.webhook_doctype == "Sales Order")
        .expect("SO hook");
    // In Frappe's Jinja `doc.items` is the dict's items() method, not the child table.
    hook.webhook_json = hook.webhook_json.replace("doc[\"items\"]", "doc.items");
    let doc = filled("Sales Order", "x");
    assert!(matches!(
        render(&emulated(&hook), &doc, Some("s"), "http://r"),
        Err(RenderError::DictMethod { .. })
    ));
}
