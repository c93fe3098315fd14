//! `POST /webhooks/erpnext`: a Frappe Webhook delivery is verified, parsed into a signal,
//! stored durably (deduplicated by body hash) and only then answered 200.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{read_body, signature, InboundError};
use crate::model::{DocKind, StockSignal};
use crate::model::{ErpEvent, InboxRecord};
use crate::state::AppState;
use crate::store::Ingested;

/// The header Frappe signs with: base64 of HMAC-SHA256 over the raw body (docs/erpnext-facts.md).
pub const SIGNATURE_HEADER: &str = "X-Frappe-Webhook-Signature";

const SUBMIT_CANCEL: &[&str] = &["on_submit", "on_cancel"];

/// The doctypes and events shoprelay understands. Stock vouchers name their rows' items and
/// warehouses; `Stock Ledger Entry` and `Bin after_insert` are what older setups installed.
const KNOWN_EVENTS: [(&str, &[&str]); 12] = [
    ("Bin", &["after_insert", "on_update", "on_change"]),
    ("Stock Ledger Entry", &["after_insert", "on_update"]),
    (
        "Sales Order",
        &[
            "on_submit",
            "on_cancel",
            "on_change",
            "on_update",
            "on_update_after_submit",
        ],
    ),
    (
        "Delivery Note",
        &[
            "on_submit",
            "on_cancel",
            "on_change",
            "on_update_after_submit",
        ],
    ),
    (
        "Shipment",
        &[
            "on_submit",
            "on_cancel",
            "on_change",
            "on_update_after_submit",
        ],
    ),
    ("Item", &["after_insert", "on_update", "on_change"]),
    ("Stock Entry", SUBMIT_CANCEL),
    ("Purchase Receipt", SUBMIT_CANCEL),
    ("Purchase Invoice", SUBMIT_CANCEL),
    ("Sales Invoice", SUBMIT_CANCEL),
    ("Stock Reconciliation", SUBMIT_CANCEL),
    ("Subcontracting Receipt", SUBMIT_CANCEL),
];

/// The stock vouchers whose submit and cancel the shipped webhooks signal (Sales Orders and
/// Delivery Notes carry their rows too, with their own events).
pub const STOCK_VOUCHERS: [&str; 6] = [
    "Stock Entry",
    "Purchase Receipt",
    "Purchase Invoice",
    "Sales Invoice",
    "Stock Reconciliation",
    "Subcontracting Receipt",
];

/// Doctypes whose events carry their rows in child tables.
fn carries_rows(doctype: &str) -> bool {
    matches!(doctype, "Sales Order" | "Delivery Note") || STOCK_VOUCHERS.contains(&doctype)
}

/// The child tables a voucher's stock rows come in, and the row fields that name a warehouse.
const ROW_TABLES: [&str; 3] = ["items", "packed_items", "supplied_items"];
const ROW_WAREHOUSES: [&str; 4] = [
    "warehouse",
    "s_warehouse",
    "t_warehouse",
    "rejected_warehouse",
];

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn unprocessable(msg: impl Into<String>) -> InboundError {
    InboundError::Unprocessable(msg.into())
}

/// Parses a verified body into an event: 400 for bytes that are not JSON, 422 for JSON that is
/// not an event shoprelay knows or lacks what that event needs.
pub fn parse_event(body: &[u8]) -> Result<ErpEvent, InboundError> {
    let value: Value = serde_json::from_slice(body).map_err(InboundError::Malformed)?;
    let Value::Object(obj) = value else {
        return Err(unprocessable(
            "the body must be a JSON object with \"doctype\" and \"event\" (see erpnext_webhook_setup/)",
        ));
    };
    let event = text(&obj, "event").map(str::to_owned);
    let explicit = text(&obj, "doctype");
    let doctype = match explicit {
        Some(d) => d,
        // Webhook Data rows without a doctype key: a Bin-shaped signal naming item and warehouse.
        None if text(&obj, "item_code").is_some() && text(&obj, "warehouse").is_some() => "Bin",
        None => {
            return Err(unprocessable(
                "the body names no \"doctype\" (Frappe sends no doctype header, so the template must carry it)",
            ))
        }
    };
    let Some((doctype, events)) = KNOWN_EVENTS.iter().find(|(d, _)| *d == doctype) else {
        let known: Vec<&str> = KNOWN_EVENTS.iter().map(|(d, _)| *d).collect();
        return Err(unprocessable(format!(
            "unknown doctype \"{doctype}\"; shoprelay handles {}",
            known.join(", ")
        )));
    };
    // Event names are checked against the doctype the body names; a doctype-less body (Webhook
    // Data rows, a hand-written template) may call its event what it likes.
    if let Some(ev) = event.as_ref().filter(|_| explicit.is_some()) {
        if !events.contains(&ev.as_str()) {
            return Err(unprocessable(format!(
                "unknown event \"{ev}\" for {doctype}; expected one of {}",
                events.join(", ")
            )));
        }
    }
    let document = match *doctype {
        "Delivery Note" => Some(DocKind::DeliveryNote),
        "Shipment" => Some(DocKind::Shipment),
        "Item" => Some(DocKind::Item),
        _ => None,
    };
    if let Some(doc) = document {
        let Some(name) = text(&obj, "name") else {
            return Err(unprocessable(format!(
                "a {doctype} event needs its \"name\""
            )));
        };
        let keys = if doc == DocKind::DeliveryNote {
            voucher_keys(&obj)
        } else {
            Vec::new()
        };
        return Ok(ErpEvent::Document {
            doc,
            event,
            name: name.to_owned(),
            keys,
        });
    }
    let keys = match *doctype {
        d if carries_rows(d) => {
            let keys = voucher_keys(&obj);
            if keys.is_empty() {
                return Err(unprocessable(format!(
                    "a {doctype} event needs \"items\" with \"item_code\" and a warehouse"
                )));
            }
            keys
        }
        _ => match (text(&obj, "item_code"), text(&obj, "warehouse")) {
            (Some(i), Some(w)) => vec![(i.to_owned(), w.to_owned())],
            _ => {
                return Err(unprocessable(format!(
                    "a {doctype} event needs non-empty \"item_code\" and \"warehouse\""
                )))
            }
        },
    };
    Ok(ErpEvent::Stock(StockSignal {
        doctype: (*doctype).to_owned(),
        event,
        name: text(&obj, "name").map(str::to_owned),
        keys,
    }))
}

/// The (item, warehouse) pairs a voucher's rows name: every row of its stock tables, each of the
/// row's warehouse fields that is set (the voucher's `set_warehouse` when none is), once each.
fn voucher_keys(obj: &Map<String, Value>) -> Vec<(String, String)> {
    let default_wh = text(obj, "set_warehouse");
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let rows = ROW_TABLES
        .iter()
        .filter_map(|t| obj.get(*t).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object);
    for row in rows {
        let Some(item) = text(row, "item_code") else {
            continue;
        };
        let mut whs: Vec<&str> = ROW_WAREHOUSES.iter().filter_map(|f| text(row, f)).collect();
        if whs.is_empty() {
            whs.extend(default_wh);
        }
        for wh in whs {
            if seen.insert((item, wh)) {
                keys.push((item.to_owned(), wh.to_owned()));
            }
        }
    }
    keys
}

/// What an event is about, for the log: doctype, event and document name.
fn describe(event: &ErpEvent) -> String {
    match event {
        ErpEvent::Stock(s) => format!(
            "{} {} {}",
            s.doctype,
            s.event.as_deref().unwrap_or("-"),
            s.name.as_deref().unwrap_or("-")
        ),
        ErpEvent::Document {
            doc, event, name, ..
        } => format!(
            "{} {} {name}",
            doc.doctype(),
            event.as_deref().unwrap_or("-")
        ),
    }
}

/// The handler. Order: size limit, signature, parse, store, flush, answer.
pub(crate) async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, InboundError> {
    let started = std::time::Instant::now();
    let mut what = String::new();
    let result = accept(&req, payload, &state, &mut what).await;
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.observe_webhook(elapsed);
    let elapsed_ms = elapsed * 1000.0;
    // One line per delivery. Never the body or the signature header: only what it was about.
    match &result {
        Ok(o) => {
            if *o == Ingested::New {
                state.metrics.webhook_accepted();
            } else {
                state.metrics.webhook_duplicate();
            }
            tracing::info!(
                outcome = if *o == Ingested::New { "accepted" } else { "duplicate" },
                event = %what,
                elapsed_ms,
                "erpnext webhook"
            )
        }
        Err(e) => {
            state.metrics.webhook_rejected(e.rejection());
            if matches!(e, InboundError::Store(_)) {
                state.limits.probe.forget();
            }
            tracing::warn!(
                outcome = e.kind(),
                status = e.status_code().as_u16(),
                reason = %crate::telemetry::error_chain(e),
                elapsed_ms,
                "erpnext webhook refused"
            )
        }
    }
    let outcome = result?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": match outcome { Ingested::New => "accepted", Ingested::Duplicate => "duplicate" },
    })))
}

async fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    what: &mut String,
) -> Result<Ingested, InboundError> {
    let (body, _lease) = read_body(req, payload, state).await?;
    let header = req.headers().get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    signature::verify_frappe(&state.settings.erpnext.webhook_secrets, header, &body)?;
    let event = parse_event(&body)?;
    *what = describe(&event);
    let now_ms = crate::model::now_ms();
    let record = InboxRecord {
        received_ms: now_ms,
        event,
    };
    let bytes = serde_json::to_vec(&record).map_err(InboundError::Encode)?;
    let key = Sha256::digest(&body);
    let outcome = state.store.ingest(&key, &bytes, now_ms / 1000).await?;
    // A duplicate waits too: its first delivery may still be on its way to disk.
    state.store.durable().await?;
    if outcome == Ingested::New {
        state.wake_processor.notify_one();
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(body: &str) -> Vec<(String, String)> {
        match parse_event(body.as_bytes()) {
            Ok(ErpEvent::Stock(s)) => s.keys,
            Ok(other) => panic!("{body}: not a stock signal: {other:?}"),
            Err(e) => panic!("{body}: {e}"),
        }
    }

    fn refused(body: &str) -> String {
        match parse_event(body.as_bytes()) {
            Err(InboundError::Unprocessable(m)) => m,
            other => panic!("{body}: expected 422, got {other:?}"),
        }
    }

    #[test]
    fn stock_signals_name_their_keys() {
        assert_eq!(
            keys(
                r#"{"doctype": "Stock Ledger Entry", "event": "after_insert", "item_code": "A", "warehouse": "W", "qty_after_transaction": 0.0}"#
            ),
            vec![("A".into(), "W".into())]
        );
        assert_eq!(
            keys(
                r#"{"doctype": "Sales Order", "event": "on_submit", "set_warehouse": "D", "items": [{"item_code": "A", "warehouse": "W"}, {"item_code": "B", "warehouse": null}, {"item_code": "A", "warehouse": "W"}]}"#
            ),
            vec![("A".into(), "W".into()), ("B".into(), "D".into())]
        );
        assert_eq!(
            keys(r#"{"item_code": "A", "warehouse": "W", "actual_qty": 1.0}"#),
            vec![("A".into(), "W".into())]
        );
    }

    mod never_panics {
        use super::super::parse_event;
        use crate::config::Secret;
        use crate::inbound::signature::{verify_frappe, verify_standard};
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(|f| serde_json::json!(f)),
                ".{0,12}".prop_map(serde_json::Value::from),
                prop::sample::select(vec![
                    "Bin",
                    "Sales Order",
                    "Delivery Note",
                    "Shipment",
                    "Item",
                    "on_submit",
                    "on_change"
                ])
                .prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map(
                        prop::sample::select(vec![
                            "doctype",
                            "event",
                            "name",
                            "item_code",
                            "warehouse",
                            "items",
                            "set_warehouse",
                            "x"
                        ]),
                        inner,
                        0..7
                    )
                    .prop_map(|m| serde_json::Value::Object(
                        m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )),
                ]
            })
        }

        proptest! {
            #[test]
            fn on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256), sig in prop::collection::vec(any::<u8>(), 0..64)) {
                let _ = parse_event(&body);
                let _ = verify_frappe(&[Secret::new("s")], Some(&sig), &body);
                let text = String::from_utf8_lossy(&sig);
                let _ = verify_standard(&[Secret::new("whsec_AAAA")], Some("id"), Some(&text), Some(&text), &body, 0, 300, 8);
            }

            #[test]
            fn on_arbitrary_json(v in json_value()) {
                let _ = parse_event(v.to_string().as_bytes());
            }

            #[test]
            fn on_arbitrary_timestamps(s in ".{0,40}", secs in any::<u64>()) {
                let m = crate::model::Modified(s);
                let _ = m.minus_secs(secs % 10_000_000_000);
                let _ = m.cmp(&crate::model::Modified("2026-01-01 00:00:00".into()));
            }
        }
    }

    #[test]
    fn delivery_notes_and_shipments_name_the_document() {
        let ev = parse_event(
            br#"{"doctype": "Delivery Note", "event": "on_submit", "name": "DN-1", "items": []}"#,
        )
        .expect("dn");
        assert_eq!(
            ev,
            ErpEvent::Document {
                doc: DocKind::DeliveryNote,
                event: Some("on_submit".into()),
                name: "DN-1".into(),
                keys: Vec::new(),
            }
        );
        assert!(refused(r#"{"doctype": "Shipment", "event": "on_change"}"#).contains("name"));
        assert!(
            refused(r#"{"doctype": "Shipment", "event": "after_insert", "name": "S"}"#)
                .contains("unknown event")
        );
    }

    #[test]
    fn unknown_or_incomplete_events_are_refused_with_a_reason() {
        assert!(
            refused(r#"{"doctype": "Journal Entry", "event": "on_submit"}"#)
                .contains("unknown doctype")
        );
        assert!(refused(
            r#"{"doctype": "Bin", "event": "on_trash", "item_code": "A", "warehouse": "W"}"#
        )
        .contains("unknown event"));
        assert!(
            refused(r#"{"doctype": "Bin", "event": "on_change", "item_code": "A"}"#)
                .contains("warehouse")
        );
        assert!(
            refused(r#"{"doctype": "Sales Order", "event": "on_submit", "items": []}"#)
                .contains("items")
        );
        assert!(refused(r#"[{"item_code": "A"}]"#).contains("object"));
        assert!(refused("{}").contains("doctype"));
        assert!(matches!(
            parse_event(b"{not json"),
            Err(InboundError::Malformed(_))
        ));
    }
}
