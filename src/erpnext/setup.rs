//! `shoprelay erpnext setup` and `shoprelay erpnext check`: install the shipped Webhook
//! documents into ERPNext over REST (idempotent, only those named `shoprelay ...`), and verify
//! that a site is wired to this relay.

use serde_json::{json, Map, Value};

use super::client::{ErpClient, ErpError};
use super::webhooks::{WebhookDoc, NAME_PREFIX, PLACEHOLDER_BASE};
use crate::config::Secret;
use crate::telemetry::error_chain;

/// The fields setup owns and compares (the secret cannot be compared: ERPNext answers asterisks).
const OWNED: [&str; 10] = [
    "webhook_doctype",
    "webhook_docevent",
    "enabled",
    "condition",
    "request_url",
    "request_method",
    "request_structure",
    "webhook_json",
    "enable_security",
    "timeout",
];

/// One step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Not on the site: create it (with the secret).
    Create { name: String, doc: Value },
    /// On the site but different: change these fields in place.
    Update {
        name: String,
        fields: Vec<String>,
        changes: Value,
    },
    /// Already as shipped (the secret is sent again only with `--reset-secret`).
    Unchanged { name: String },
    /// A shoprelay webhook no longer shipped: disable it.
    Disable { name: String },
}

impl Action {
    /// One line for the plan printout.
    pub fn describe(&self) -> String {
        match self {
            Action::Create { name, .. } => format!("create    {name}"),
            Action::Update { name, fields, .. } => {
                format!("update    {name} ({})", fields.join(", "))
            }
            Action::Unchanged { name } => format!("unchanged {name}"),
            Action::Disable { name } => format!("disable   {name} (no longer shipped)"),
        }
    }
}

/// The shipped document as it should be on the site: request_url on `public_url`, enabled,
/// security on.
pub fn desired(hook: &WebhookDoc, public_url: &str) -> Value {
    let mut doc = match serde_json::to_value(hook) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let url = hook
        .request_url
        .replacen(PLACEHOLDER_BASE, public_url.trim_end_matches('/'), 1);
    doc.insert("request_url".into(), json!(url));
    doc.insert("enabled".into(), json!(1));
    doc.insert("enable_security".into(), json!(1));
    Value::Object(doc)
}

fn normalized(field: &str, v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) if field == "condition" => json!(""),
        None | Some(Value::Null) => Value::Null,
        Some(Value::Number(n)) => json!(n.as_f64().unwrap_or(0.0) as i64),
        Some(other) => other.clone(),
    }
}

fn headers_of(doc: &Value) -> Vec<(String, String)> {
    doc["webhook_headers"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["key"].as_str().unwrap_or_default().to_owned(),
                        r["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of `want` that differ on the site's `have`.
pub fn differences(want: &Value, have: &Value) -> Vec<String> {
    let mut out: Vec<String> = OWNED
        .iter()
        .filter(|f| normalized(f, want.get(**f)) != normalized(f, have.get(**f)))
        .map(|f| (*f).to_owned())
        .collect();
    if headers_of(want) != headers_of(have) {
        out.push("webhook_headers".into());
    }
    out
}

/// Reads the site and works out what setup would change.
pub async fn plan(
    erp: &ErpClient,
    shipped: &[WebhookDoc],
    public_url: &str,
) -> Result<Vec<Action>, ErpError> {
    let existing: Vec<Value> = erp
        .list_all(
            "Webhook",
            &["name", "enabled"],
            &json!([["name", "like", format!("{NAME_PREFIX}%")]]),
        )
        .await?;
    let mut actions = Vec::new();
    for hook in shipped {
        let want = desired(hook, public_url);
        match erp.get_doc::<Value>("Webhook", &hook.name).await? {
            None => actions.push(Action::Create {
                name: hook.name.clone(),
                doc: want,
            }),
            Some(have) => {
                let fields = differences(&want, &have);
                if fields.is_empty() {
                    actions.push(Action::Unchanged {
                        name: hook.name.clone(),
                    });
                } else {
                    let mut changes = Map::new();
                    for f in &fields {
                        changes.insert(f.clone(), want[f.as_str()].clone());
                    }
                    actions.push(Action::Update {
                        name: hook.name.clone(),
                        fields,
                        changes: Value::Object(changes),
                    });
                }
            }
        }
    }
    for old in existing {
        let Some(name) = old["name"].as_str() else {
            continue;
        };
        let shipped_here = shipped.iter().any(|h| h.name == name);
        if name.starts_with(NAME_PREFIX) && !shipped_here && old["enabled"].as_i64() != Some(0) {
            actions.push(Action::Disable {
                name: name.to_owned(),
            });
        }
    }
    Ok(actions)
}

/// Carries out a plan. The secret is sent when a webhook is created, and to every shipped
/// webhook when `reset_secret` is set; never otherwise.
pub async fn apply(
    erp: &ErpClient,
    actions: &[Action],
    secret: &Secret,
    reset_secret: bool,
) -> Result<usize, ErpError> {
    let mut changed = 0;
    for action in actions {
        match action {
            Action::Create { doc, .. } => {
                let mut body = doc.clone();
                body["webhook_secret"] = json!(secret.expose());
                erp.save_doc("Webhook", None, &body).await?;
                changed += 1;
            }
            Action::Update { name, changes, .. } => {
                let mut body = changes.clone();
                if reset_secret {
                    body["webhook_secret"] = json!(secret.expose());
                }
                erp.save_doc("Webhook", Some(name), &body).await?;
                changed += 1;
            }
            Action::Unchanged { name } if reset_secret => {
                erp.save_doc(
                    "Webhook",
                    Some(name),
                    &json!({"webhook_secret": secret.expose()}),
                )
                .await?;
                changed += 1;
            }
            Action::Unchanged { .. } => {}
            Action::Disable { name } => {
                erp.save_doc("Webhook", Some(name), &json!({"enabled": 0}))
                    .await?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// One finding of `erpnext check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub ok: bool,
    pub text: String,
}

fn finding(ok: bool, text: impl Into<String>) -> Finding {
    Finding {
        ok,
        text: text.into(),
    }
}

/// Checks credentials, each shipped webhook (present, enabled, pointing here, secured, current
/// template, Bin readable) and lists recent failed deliveries from the Webhook Request Log.
pub async fn check(erp: &ErpClient, shipped: &[WebhookDoc], public_url: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match erp.method("frappe.auth.get_logged_user", &[]).await {
        Ok(user) => out.push(finding(
            true,
            format!(
                "credentials valid (API user {})",
                user.as_str().unwrap_or("?")
            ),
        )),
        Err(e) => {
            out.push(finding(false, format!("credentials: {}", error_chain(&e))));
            return out;
        }
    }
    match erp
        .list_page::<Value>("Bin", &["name"], &json!([]), "name asc", 0, 1)
        .await
    {
        Ok(_) => out.push(finding(true, "Bin is readable")),
        Err(e) => out.push(finding(
            false,
            format!("Bin is not readable: {}", error_chain(&e)),
        )),
    }
    for hook in shipped {
        let want = desired(hook, public_url);
        match erp.get_doc::<Value>("Webhook", &hook.name).await {
            Ok(None) => out.push(finding(
                false,
                format!("{}: missing (run `shoprelay erpnext setup`)", hook.name),
            )),
            Ok(Some(have)) => {
                let mut problems = Vec::new();
                if have["enabled"].as_i64() != Some(1) {
                    problems.push("disabled".to_owned());
                }
                if have["request_url"] != want["request_url"] {
                    problems.push(format!(
                        "points at {} instead of {}",
                        have["request_url"], want["request_url"]
                    ));
                }
                if have["enable_security"].as_i64() != Some(1) {
                    problems.push(
                        "security off: deliveries are unsigned and will be refused".to_owned(),
                    );
                }
                if have["webhook_json"] != want["webhook_json"] {
                    problems.push("template differs from the shipped one (run setup)".to_owned());
                }
                if problems.is_empty() {
                    out.push(finding(
                        true,
                        format!("{}: enabled, points here", hook.name),
                    ));
                } else {
                    out.push(finding(
                        false,
                        format!("{}: {}", hook.name, problems.join("; ")),
                    ));
                }
            }
            Err(e) => out.push(finding(
                false,
                format!("{}: {}", hook.name, error_chain(&e)),
            )),
        }
    }
    let filters = json!([
        ["webhook", "like", format!("{NAME_PREFIX}%")],
        ["error", "is", "set"]
    ]);
    let fields = [
        "name",
        "webhook",
        "reference_document",
        "url",
        "error",
        "creation",
    ];
    match erp
        .list_page::<Value>(
            "Webhook Request Log",
            &fields,
            &filters,
            "creation desc",
            0,
            10,
        )
        .await
    {
        Ok(rows) if rows.is_empty() => out.push(finding(
            true,
            "no failed deliveries in the Webhook Request Log",
        )),
        Ok(rows) => {
            for r in rows {
                let error = r["error"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_owned();
                out.push(finding(
                    false,
                    format!(
                        "failed delivery {} of {} for {} to {}: {error}",
                        r["creation"].as_str().unwrap_or("?"),
                        r["webhook"].as_str().unwrap_or("?"),
                        r["reference_document"].as_str().unwrap_or("?"),
                        r["url"].as_str().unwrap_or("?"),
                    ),
                ));
            }
        }
        Err(e) => out.push(finding(
            false,
            format!("cannot read the Webhook Request Log: {}", error_chain(&e)),
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erpnext::webhooks::shipped;

    #[test]
    fn desired_documents_point_at_the_public_url_and_compare_equal_to_themselves() {
        let hooks = shipped().expect("shipped");
        let want = desired(&hooks[0], "https://relay.example.com/");
        assert_eq!(
            want["request_url"],
            "https://relay.example.com/webhooks/erpnext"
        );
        assert!(differences(&want, &want).is_empty());
        let mut site = want.clone();
        site["condition"] = Value::Null;
        site["timeout"] = json!(5.0);
        site["webhook_headers"] =
            json!([{"key": "Content-Type", "value": "application/json", "parent": "x", "idx": 1}]);
        assert!(
            differences(&want, &site).is_empty(),
            "{:?}",
            differences(&want, &site)
        );
        site["webhook_json"] = json!("{}");
        site["enabled"] = json!(0);
        assert_eq!(differences(&want, &site), ["enabled", "webhook_json"]);
    }
}
