//! Likely causes, in plain words: what an ERPNext refusal probably means, what ERPNext's Webhook
//! list and Webhook Request Log say about the shoprelay webhook of a doctype and event, and what
//! the relay's dead letters say about a SKU or an order. Pure functions over what was read, so
//! each wording is tested.

use serde::Deserialize;
use serde_json::Value;

use crate::erpnext::ErpError;

/// A Webhook document, as listed from ERPNext.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hook {
    pub name: String,
    #[serde(default)]
    pub webhook_doctype: String,
    #[serde(default)]
    pub webhook_docevent: String,
    #[serde(default, deserialize_with = "flag")]
    pub enabled: bool,
    #[serde(default)]
    pub request_url: Option<String>,
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::String(s) => s == "1",
        _ => false,
    })
}

/// One row of ERPNext's Webhook Request Log (one per delivery attempt).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogRow {
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub reference_document: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
}

/// What ERPNext did with the shoprelay webhook of one doctype and event for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookFinding {
    /// ERPNext's Webhook list could not be read (the API user may not read Webhook).
    Unknown(String),
    /// No shoprelay webhook for this doctype and event.
    Missing { doctype: String, event: String },
    /// There is one, but it is disabled.
    Disabled { name: String },
    /// It sends to another address than the relay's.
    Elsewhere { name: String, url: String },
    /// Enabled and pointing here, but no delivery for the document is logged (yet).
    NotSent { name: String, document: String },
    /// Sent, and the relay (or the network) refused it.
    Refused { name: String, error: String },
    /// Sent and accepted.
    Delivered { name: String },
    /// Enabled and pointing here; the delivery log was not consulted.
    Installed { name: String },
}

impl HookFinding {
    /// True when the webhook is set up right and (as far as is known) did its part.
    pub fn ok(&self) -> bool {
        matches!(
            self,
            HookFinding::Delivered { .. } | HookFinding::Installed { .. } | HookFinding::Unknown(_)
        )
    }

    /// The finding in plain words, with what to do about it.
    pub fn explain(&self) -> String {
        match self {
            HookFinding::Unknown(why) => format!("ERPNext's Webhook list could not be read ({why})"),
            HookFinding::Missing { doctype, event } => format!(
                "ERPNext has no shoprelay webhook for {doctype} {event}: check ERPNext's Webhook list, or run `shoprelay erpnext setup`"
            ),
            HookFinding::Disabled { name } => format!(
                "the webhook `{name}` is disabled in ERPNext's Webhook list: enable it, or run `shoprelay erpnext setup`"
            ),
            HookFinding::Elsewhere { name, url } => format!(
                "the webhook `{name}` sends to {url}, not to this relay: run `shoprelay erpnext setup` with this relay's server.public_url"
            ),
            HookFinding::NotSent { name, document } => format!(
                "ERPNext has not sent `{name}` for {document}: is its background worker running, and not behind a backlog (the RQ `default` queue, `bench worker`)?"
            ),
            HookFinding::Refused { name, error } => format!(
                "ERPNext sent `{name}` but it failed: {error} (see ERPNext's Webhook Request Log; a 401 means the webhook secret differs from erpnext.webhook_secrets)"
            ),
            HookFinding::Delivered { name } => format!("ERPNext delivered `{name}` to the relay"),
            HookFinding::Installed { name } => format!("the webhook `{name}` is enabled and points at this relay"),
        }
    }
}

/// An ERPNext refusal, with what probably causes it.
pub(crate) fn erp_cause(e: &ErpError) -> String {
    match e {
        ErpError::Status { status: 403, .. } => {
            "the API user lacks a permission for this document type (ERPNext's Role Permissions)"
                .into()
        }
        ErpError::Status { status: 401, .. } => {
            "erpnext.api_key / erpnext.api_secret are wrong".into()
        }
        ErpError::Status { status: 417, .. } => {
            "ERPNext's validation refused it (the message says why)".into()
        }
        ErpError::Transport(_) => "ERPNext cannot be reached from here (erpnext.url)".into(),
        _ => "see ERPNext's answer".into(),
    }
}

/// Looks at the shoprelay webhook for (`doctype`, `event`): installed, enabled, pointing at
/// `relay_base`, and (when the log could be read and a document is named) delivered for it.
pub fn webhook_finding(
    hooks: Result<&[Hook], &str>,
    log: Option<&[LogRow]>,
    doctype: &str,
    event: &str,
    document: Option<&str>,
    relay_base: &str,
) -> HookFinding {
    let hooks = match hooks {
        Ok(h) => h,
        Err(why) => return HookFinding::Unknown(why.to_owned()),
    };
    let candidates: Vec<&Hook> = hooks
        .iter()
        .filter(|h| {
            h.name.starts_with("shoprelay ")
                && h.webhook_doctype == doctype
                && h.webhook_docevent == event
        })
        .collect();
    let Some(hook) = candidates.iter().find(|h| h.enabled).or(candidates.first()) else {
        return HookFinding::Missing {
            doctype: doctype.to_owned(),
            event: event.to_owned(),
        };
    };
    let name = hook.name.clone();
    if !hook.enabled {
        return HookFinding::Disabled { name };
    }
    let base = relay_base.trim_end_matches('/');
    let url = hook.request_url.clone().unwrap_or_default();
    if !base.is_empty() && !url.starts_with(base) {
        return HookFinding::Elsewhere { name, url };
    }
    let (Some(log), Some(document)) = (log, document) else {
        return HookFinding::Installed { name };
    };
    let rows: Vec<&LogRow> = log
        .iter()
        .filter(|r| r.webhook.as_deref() == Some(name.as_str()))
        .filter(|r| r.reference_document.as_deref() == Some(document))
        .collect();
    if rows
        .iter()
        .any(|r| r.error.as_deref().is_none_or(|e| e.trim().is_empty()))
    {
        return HookFinding::Delivered { name };
    }
    match rows.last() {
        Some(r) => HookFinding::Refused {
            name,
            error: last_line(r.error.as_deref().unwrap_or_default()),
        },
        None => HookFinding::NotSent {
            name,
            document: document.to_owned(),
        },
    }
}

/// The last non-empty line of a traceback, shortened.
fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    line.chars().take(240).collect()
}

/// The relay's dead letters (from `GET /admin/dead-letters`) that mention `needle` (a SKU, an
/// order id), each as `<status> <shop's answer>`.
pub fn dead_letters_about(letters: &Value, needle: &str) -> Vec<String> {
    letters
        .get("dead_letters")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter(|l| l.to_string().contains(needle))
                .map(|l| {
                    let status = l
                        .get("status")
                        .and_then(Value::as_u64)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".into());
                    let answer: String = l
                        .get("response")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    let id = l.get("id").map(|v| v.to_string()).unwrap_or_default();
                    format!("{status} {answer} (dead letter {id})")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(enabled: bool, url: &str) -> Hook {
        Hook {
            name: "shoprelay Delivery Note on_submit".into(),
            webhook_doctype: "Delivery Note".into(),
            webhook_docevent: "on_submit".into(),
            enabled,
            request_url: Some(url.into()),
        }
    }

    const RELAY: &str = "http://127.0.0.1:8787";

    fn find(hooks: &[Hook], log: Option<&[LogRow]>) -> HookFinding {
        webhook_finding(
            Ok(hooks),
            log,
            "Delivery Note",
            "on_submit",
            Some("MAT-DN-1"),
            RELAY,
        )
    }

    fn row(error: Option<&str>) -> LogRow {
        LogRow {
            webhook: Some("shoprelay Delivery Note on_submit".into()),
            reference_document: Some("MAT-DN-1".into()),
            error: error.map(str::to_owned),
            response: None,
        }
    }

    #[test]
    fn each_way_a_webhook_can_go_wrong_is_named() {
        let here = format!("{RELAY}/webhooks/erpnext");
        let missing = find(&[], None);
        assert!(missing
            .explain()
            .contains("no shoprelay webhook for Delivery Note on_submit"));
        let disabled = find(&[hook(false, &here)], None);
        assert_eq!(
            disabled,
            HookFinding::Disabled {
                name: "shoprelay Delivery Note on_submit".into()
            }
        );
        assert!(disabled
            .explain()
            .contains("`shoprelay Delivery Note on_submit` is disabled"));
        let elsewhere = find(&[hook(true, "http://10.0.0.9/webhooks/erpnext")], None);
        assert!(
            elsewhere.explain().contains("sends to http://10.0.0.9"),
            "{}",
            elsewhere.explain()
        );
        let not_sent = find(&[hook(true, &here)], Some(&[]));
        assert!(not_sent.explain().contains("background worker"));
        let refused = find(
            &[hook(true, &here)],
            Some(&[row(Some(
                "Traceback...\nrequests.exceptions.HTTPError: 401 Client Error",
            ))]),
        );
        assert!(refused.explain().contains("401 Client Error") && !refused.ok());
        let delivered = find(&[hook(true, &here)], Some(&[row(Some("boom")), row(None)]));
        assert!(delivered.ok());
        assert!(find(&[hook(true, &here)], None).ok());
        let unknown = webhook_finding(Err("403"), None, "Delivery Note", "on_submit", None, RELAY);
        assert!(
            unknown.ok(),
            "an unreadable list is not held against the relay"
        );
    }

    #[test]
    fn dead_letters_are_found_by_what_they_mention() {
        let letters = json!({"dead_letters": [
            {"id": 3, "kind": "levels", "channel": "web", "levels": [["SRSTAGE-1", 8]], "status": 422, "response": "{\"error\":\"no such sku\"}", "at_ms": 1},
            {"id": 4, "kind": "levels", "channel": "web", "levels": [["OTHER", 1]], "status": 500, "response": "x", "at_ms": 1}
        ]});
        let found = dead_letters_about(&letters, "SRSTAGE-1");
        assert_eq!(
            found,
            vec!["422 {\"error\":\"no such sku\"} (dead letter 3)".to_owned()]
        );
        assert!(dead_letters_about(&json!({}), "x").is_empty());
    }
}
