//! Frappe behaviour the emulator needs: `Document.as_dict(convert_dates_to_str=True)` built from
//! the real ERPNext v15 field order, and Webhook body rendering (Jinja, then `json.loads`, then
//! `json.dumps`) with the `X-Frappe-Webhook-Signature` over the exact bytes sent.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::pyjson;

/// The base of a Webhook's `request_url` that is replaced with the relay's address when a
/// request is sent (`https://shoprelay.invalid`, the base of the relay's shipped documents).
pub const PLACEHOLDER_BASE: &str = "https://shoprelay.invalid";

/// A row of a Webhook's `webhook_headers` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookHeader {
    pub key: String,
    pub value: String,
}

/// The fields of ERPNext's Webhook doctype that the emulated site reads to send a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    pub name: String,
    pub webhook_doctype: String,
    pub webhook_docevent: String,
    #[serde(default)]
    pub enabled: u8,
    #[serde(default)]
    pub condition: String,
    pub request_url: String,
    #[serde(default)]
    pub webhook_json: String,
    #[serde(default)]
    pub enable_security: u8,
    #[serde(default)]
    pub webhook_headers: Vec<WebhookHeader>,
}

impl Webhook {
    /// A Webhook document given as JSON (any value with the doctype's fields).
    pub fn from_doc(doc: impl serde::Serialize) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(doc)?)
    }
}

#[derive(serde::Deserialize)]
struct DoctypeFile {
    doctypes: BTreeMap<String, DoctypeDef>,
}

#[derive(serde::Deserialize)]
struct DoctypeDef {
    fields: Vec<Vec<String>>,
}

fn doctypes() -> BTreeMap<String, DoctypeDef> {
    serde_json::from_str::<DoctypeFile>(include_str!("doctypes.json"))
        .map(|f| f.doctypes)
        .unwrap_or_default()
}

/// The (fieldname, fieldtype, child doctype) of every data field of `doctype`, in field order.
pub fn fields(doctype: &str) -> Vec<(String, String, Option<String>)> {
    doctypes()
        .get(doctype)
        .map(|d| {
            d.fields
                .iter()
                .filter_map(|f| Some((f.first()?.clone(), f.get(1)?.clone(), f.get(2).cloned())))
                .collect()
        })
        .unwrap_or_default()
}

fn default_for(fieldtype: &str) -> Value {
    match fieldtype {
        "Float" | "Currency" | "Percent" => Value::from(0.0),
        "Int" | "Check" => Value::from(0),
        "Table" | "Table MultiSelect" => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

/// Coerces a value to the type Frappe's `as_dict` gives a field (Float -> float, Int -> int).
fn coerce(fieldtype: &str, v: Value) -> Value {
    match (fieldtype, &v) {
        ("Float" | "Currency" | "Percent", Value::Number(n)) => {
            Value::from(n.as_f64().unwrap_or(0.0))
        }
        ("Int" | "Check", Value::Number(n)) => Value::from(n.as_f64().unwrap_or(0.0) as i64),
        _ => v,
    }
}

/// `doc.as_dict(convert_dates_to_str=True)`: `name, owner, creation, modified, modified_by,
/// docstatus, idx`, the data fields in field order (defaults for those not given), `doctype`.
/// Child tables in `values` are lists of objects and are expanded the same way.
pub fn as_dict(
    doctype: &str,
    name: &str,
    modified: &str,
    docstatus: i64,
    values: &Map<String, Value>,
) -> Value {
    as_dict_with(&doctypes(), doctype, name, modified, docstatus, values)
}

fn as_dict_with(
    defs: &BTreeMap<String, DoctypeDef>,
    doctype: &str,
    name: &str,
    modified: &str,
    docstatus: i64,
    values: &Map<String, Value>,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), Value::from(name));
    out.insert("owner".into(), Value::from("Administrator"));
    out.insert(
        "creation".into(),
        values
            .get("creation")
            .cloned()
            .unwrap_or_else(|| Value::from(modified)),
    );
    out.insert("modified".into(), Value::from(modified));
    out.insert("modified_by".into(), Value::from("Administrator"));
    out.insert("docstatus".into(), Value::from(docstatus));
    out.insert(
        "idx".into(),
        values.get("idx").cloned().unwrap_or(Value::from(0)),
    );
    if let Some(def) = defs.get(doctype) {
        for f in &def.fields {
            let (Some(fname), Some(ftype)) = (f.first(), f.get(1)) else {
                continue;
            };
            let given = values.get(fname).cloned();
            let v = match (ftype.as_str(), given, f.get(2)) {
                ("Table" | "Table MultiSelect", Some(Value::Array(rows)), Some(child)) => {
                    Value::Array(
                        rows.iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let mut r = r.as_object().cloned().unwrap_or_default();
                                r.insert("idx".into(), Value::from(i as i64 + 1));
                                let mut c = as_dict_with(
                                    defs,
                                    child,
                                    &format!("{name}-{fname}-{}", i + 1),
                                    modified,
                                    docstatus,
                                    &r,
                                );
                                if let Some(obj) = c.as_object_mut() {
                                    obj.insert("parent".into(), Value::from(name));
                                    obj.insert("parentfield".into(), Value::from(fname.as_str()));
                                    obj.insert("parenttype".into(), Value::from(doctype));
                                }
                                c
                            })
                            .collect(),
                    )
                }
                (t, Some(v), _) => coerce(t, v),
                (t, None, _) => default_for(t),
            };
            out.insert(fname.clone(), v);
        }
    } else {
        for (k, v) in values {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out.insert("doctype".into(), Value::from(doctype));
    Value::Object(out)
}

/// A webhook request as Frappe would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub webhook: String,
    /// The name of the document the webhook fired for.
    pub reference: String,
    pub url: String,
    pub body: Vec<u8>,
    pub signature: String,
    pub headers: Vec<(String, String)>,
}

/// Why a template did not render (Frappe then sends nothing and logs an error).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("webhook `{webhook}`: the template uses `doc.{attr}`, which in Frappe's Jinja is the dict method, not the field; write doc[\"{attr}\"]")]
    DictMethod { webhook: String, attr: String },
    #[error("webhook `{webhook}`: the template does not render")]
    Template {
        webhook: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("webhook `{webhook}`: the rendered template is not JSON; rendered: {rendered}")]
    NotJson {
        webhook: String,
        rendered: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("webhook `{webhook}`: its condition cannot be evaluated: {reason}")]
    Condition { webhook: String, reason: String },
}

const DICT_METHODS: [&str; 10] = [
    "items",
    "keys",
    "values",
    "get",
    "update",
    "pop",
    "copy",
    "clear",
    "setdefault",
    "popitem",
];

/// Renders a Webhook document for `doc` (an `as_dict` value) and signs it with `secret` (None:
/// security off, no signature);
/// `relay_base` replaces the placeholder base of `request_url`.
pub fn render(
    webhook: &Webhook,
    doc: &Value,
    secret: Option<&str>,
    relay_base: &str,
) -> Result<Delivery, RenderError> {
    for attr in DICT_METHODS {
        let needle = format!("doc.{attr}");
        let uses = webhook.webhook_json.match_indices(&needle).any(|(i, _)| {
            let next = webhook.webhook_json[i + needle.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if uses {
            return Err(RenderError::DictMethod {
                webhook: webhook.name.clone(),
                attr: attr.into(),
            });
        }
    }
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let tmpl_err = |source| RenderError::Template {
        webhook: webhook.name.clone(),
        source,
    };
    let rendered = env
        .render_str(&webhook.webhook_json, minijinja::context! { doc => doc })
        .map_err(tmpl_err)?;
    let data: Value = serde_json::from_str(&rendered).map_err(|source| RenderError::NotJson {
        webhook: webhook.name.clone(),
        rendered: rendered.clone(),
        source,
    })?;
    let body = pyjson::dumps(&data).into_bytes();
    let signature = secret
        .map(|s| crate::sign::frappe(s, &body))
        .unwrap_or_default();
    let url = webhook
        .request_url
        .replacen(PLACEHOLDER_BASE, relay_base, 1);
    Ok(Delivery {
        webhook: webhook.name.clone(),
        reference: doc["name"].as_str().unwrap_or_default().to_owned(),
        url,
        body,
        signature,
        headers: webhook
            .webhook_headers
            .iter()
            .filter(|h| !h.key.is_empty() && !h.value.is_empty())
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect(),
    })
}
