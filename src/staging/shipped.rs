//! Step 6: the shop shows the order shipped with the tracking number (the optional
//! `GET /orders/{id}/shipments/{id}`), and ERPNext told the relay of the Delivery Note itself.

use serde_json::Value;

use super::cycle::Cycle;
use super::diagnose::webhook_finding;
use super::fields::text;
use super::poll::{poll, Polled, Probe};
use super::report::{fail, Outcome};
use crate::http::encode_segment;

/// What the line of the report says.
pub(super) const TITLE: &str = "the shop shows the order shipped with the tracking number";

/// The shipment as the shop shows it: Ok(None) for 404.
async fn read_shipment(cycle: &Cycle<'_>, path: &str) -> Result<Option<Value>, String> {
    match cycle.shop.get(path).await {
        Ok(a) if a.status == 404 => Ok(None),
        Ok(a) if (200..300).contains(&a.status) => {
            Ok(Some(serde_json::from_str(&a.body).unwrap_or(Value::Null)))
        }
        Ok(a) => Err(format!(
            "the shop answered {} {}",
            a.status,
            a.body.chars().take(200).collect::<String>()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Step 6: the shop shows the order shipped with the tracking number, and ERPNext told the
/// relay about the Delivery Note itself (not only through the Shipment).
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let dn = cycle.created.delivery_note.clone().unwrap_or_default();
    let order_id = cycle.names.order_id.clone();
    let tracking = cycle.names.tracking_number.clone();
    let path = format!(
        "/orders/{}/shipments/{}",
        encode_segment(&order_id),
        encode_segment(&dn)
    );
    let expected = format!(
        "GET {path} shows status shipped, tracking number {tracking}, and ERPNext delivered `Delivery Note on_submit` for {dn} to the relay"
    );
    let shows =
        |v: &Value| text(v, "status") == "shipped" && text(v, "tracking_number") == tracking;
    let hooks = cycle.hooks().await;
    let dn_hook = webhook_finding(
        hooks.as_deref().map_err(String::as_str),
        None,
        "Delivery Note",
        "on_submit",
        None,
        cycle.hooks_base(),
    );
    if !dn_hook.ok() {
        let seen = match read_shipment(cycle, &path).await {
            Ok(Some(v)) if shows(&v) => "the shop shows it shipped, but only because the Shipment document made the relay read the note".to_owned(),
            Ok(Some(v)) => format!("the shop shows {v}"),
            Ok(None) => "the shop does not show the shipment (404)".to_owned(),
            Err(e) => e,
        };
        return fail(
            expected,
            seen,
            format!(
                "{}; without it a Delivery Note reaches the shop only if a Shipment document follows it",
                dn_hook.explain()
            ),
        );
    }
    let shipment = cycle.created.shipment.clone();
    let documents: Vec<&str> = std::iter::once(dn.as_str())
        .chain(shipment.as_deref())
        .collect();
    let hooks_ref = hooks.as_deref().map_err(String::as_str);
    let seen = poll(cycle.timeout, || async {
        let shop = read_shipment(cycle, &path).await;
        let log = cycle.request_log(&documents).await;
        let delivered = webhook_finding(
            hooks_ref,
            log.as_deref(),
            "Delivery Note",
            "on_submit",
            Some(dn.as_str()),
            cycle.hooks_base(),
        );
        match shop {
            Ok(Some(v)) if shows(&v) && delivered.ok() => Probe::Done(v),
            Ok(Some(v)) if shows(&v) => Probe::Wait(format!(
                "the shop shows it shipped, but {}",
                delivered.explain()
            )),
            Ok(Some(v)) => Probe::Wait(format!("the shop shows {v}")),
            Ok(None) => Probe::Wait("404 (the shop does not show the shipment)".into()),
            Err(e) => Probe::Wait(e),
        }
    })
    .await;
    let found = match seen {
        Polled::Done(v) => {
            return Outcome::Pass(format!(
                "order {order_id} shipment {dn}: {} with {}",
                text(&v, "status"),
                text(&v, "tracking_number")
            ))
        }
        Polled::Stopped(s) | Polled::TimedOut(s) => s,
    };
    let refusals = cycle.relay.dead_letters_about(&order_id).await;
    if let Some(r) = refusals.first() {
        return fail(
            expected,
            found,
            format!("the shop refused the relay's shipment push: {r}"),
        );
    }
    let log = cycle.request_log(&documents).await;
    let finding = webhook_finding(
        hooks.as_deref().map_err(String::as_str),
        log.as_deref(),
        "Delivery Note",
        "on_submit",
        Some(dn.as_str()),
        cycle.hooks_base(),
    );
    if !finding.ok() {
        return fail(expected, found, finding.explain());
    }
    if found.starts_with("404") {
        return Outcome::Skip(format!(
            "the shop answers 404 to GET {path}: it has no shipment read endpoint (optional in the contract), or it never stored the shipment; {} and the relay holds no dead letter for the order",
            finding.explain()
        ));
    }
    fail(
        expected,
        found,
        "the relay has not pushed the tracking yet: is its push agent running (GET /admin/status)?",
    )
}
