//! Step 4: the shop's level for the test SKU dropped by the reservation, as the relay computes a
//! channel's level from the Bins; read through the shop's optional `GET /inventory/levels`.
//! When it did not, the likely cause: a dead letter, a webhook ERPNext did not deliver, or a
//! mapping that differs from this configuration's.

use serde_json::{json, Value};

use super::cycle::Cycle;
use super::diagnose::{erp_cause, HookFinding};
use super::fields::{rows, text};
use super::poll::{poll, Polled, Probe};
use super::report::{fail, Outcome};
use crate::availability::channel_level;
use crate::availability::Channel;
use crate::erpnext::ErpError;
use crate::http::encode_segment;
use crate::model::BinRow;

/// What the line of the report says.
pub(super) const TITLE: &str = "the shop's level dropped";

/// The level the shop must show now, and before the order reserved anything.
async fn expected_levels(cycle: &Cycle<'_>) -> Result<(u64, u64), ErpError> {
    let bins = cycle.bins().await?;
    let mut warehouses = vec![cycle.warehouse.clone()];
    let so_wh = cycle.order_warehouse();
    if so_wh != cycle.warehouse && cycle.channel.warehouses.contains(&so_wh) {
        warehouses.push(so_wh);
    }
    let channel = Channel {
        warehouses,
        ..cycle.channel.clone()
    };
    let now = channel_level(&channel, |w| bins.iter().find(|b| b.warehouse == w));
    let unreserved: Vec<BinRow> = bins
        .iter()
        .map(|b| BinRow {
            reserved_qty: 0.0,
            ..b.clone()
        })
        .collect();
    let before = channel_level(&channel, |w| unreserved.iter().find(|b| b.warehouse == w));
    Ok((now, before))
}

/// The shop's level for the test SKU, through the optional `GET /inventory/levels`.
async fn read_level(cycle: &Cycle<'_>) -> Result<Option<u64>, String> {
    let path = format!(
        "/inventory/levels?channel={}&sku={}",
        encode_segment(&cycle.channel.name),
        encode_segment(&cycle.names.item_code)
    );
    match cycle.shop.get(&path).await {
        Ok(a) if a.status == 404 => Err("404".into()),
        Ok(a) if (200..300).contains(&a.status) => {
            let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
            Ok(rows(&v, "levels")
                .iter()
                .find(|l| text(l, "sku") == cycle.names.item_code)
                .and_then(|l| l.get("available").and_then(Value::as_u64)))
        }
        Ok(a) => Err(format!(
            "the shop answered {} {}",
            a.status,
            a.body.chars().take(200).collect::<String>()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Step 4: the shop's level dropped by the reservation.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let sku = cycle.names.item_code.clone();
    let (expected, before) = match expected_levels(cycle).await {
        Ok(v) => v,
        Err(e) => return fail("the Bins of the test item", e.to_string(), erp_cause(&e)),
    };
    let channel = cycle.channel.name.clone();
    if let Err(first) = read_level(cycle).await {
        if first == "404" {
            return Outcome::Skip(format!(
                "the shop answers 404 to GET /inventory/levels (optional in the contract): {sku} should show {expected} in channel {channel} (was {before})"
            ));
        }
    }
    let seen = poll(cycle.timeout, || async {
        match read_level(cycle).await {
            Ok(Some(n)) if n == expected => Probe::Done(n),
            Ok(Some(n)) => Probe::Wait(format!("{n}")),
            Ok(None) => Probe::Wait("no level for the SKU".into()),
            Err(e) => Probe::Wait(e),
        }
    })
    .await;
    let found = match seen {
        Polled::Done(n) => {
            return Outcome::Pass(format!(
                "the shop shows {n} for {sku} in channel {channel} (was {before} before the order)"
            ))
        }
        Polled::Stopped(s) | Polled::TimedOut(s) => s,
    };
    let expected_text =
        format!("{expected} for {sku} in channel {channel} (was {before} before the order)");
    let refusals = cycle.relay.dead_letters_about(&sku).await;
    let cause = if let Some(r) = refusals.first() {
        format!("the shop refused the relay's push: {r}; fix the shop, then POST /admin/dead-letters/{{id}}/retry on the relay")
    } else if found == before.to_string() {
        let so = cycle.created.sales_order.clone();
        let finding = cycle
            .finding("Sales Order", "on_submit", so.as_deref())
            .await;
        format!(
            "the relay did not hear of the reservation: {}",
            if finding.ok() {
                format!(
                    "{}; is the relay's processor running (GET /admin/status)?",
                    finding.explain()
                )
            } else {
                finding.explain()
            }
        )
    } else if found.starts_with("no level") {
        let finding = receipt_finding(cycle).await;
        format!(
            "the relay never pushed {sku}: {}",
            if finding.ok() {
                format!(
                    "{}; is channel `{channel}` fed by {} in the relay's mapping (GET /admin/channels)?",
                    finding.explain(),
                    cycle.warehouse
                )
            } else {
                finding.explain()
            }
        )
    } else {
        "the relay's channel mapping (policy, buffer, warehouses: GET /admin/channels) differs from this configuration's".into()
    };
    fail(expected_text, found, cause)
}

/// What became of the webhook that tells the relay of the test receipt: the Stock Entry's
/// own `on_submit` where the shipped webhooks listen to vouchers, else the first ledger
/// row's `after_insert`.
async fn receipt_finding(cycle: &Cycle<'_>) -> HookFinding {
    let by_voucher = crate::erpnext::webhooks::shipped()
        .map(|hooks| {
            hooks
                .iter()
                .any(|h| h.webhook_doctype == "Stock Entry" && h.webhook_docevent == "on_submit")
        })
        .unwrap_or(false);
    if by_voucher {
        let receipt = cycle.created.stock_entry.clone();
        return cycle
            .finding("Stock Entry", "on_submit", receipt.as_deref())
            .await;
    }
    let sle = cycle
        .erp
        .list_page::<Value>(
            "Stock Ledger Entry",
            &["name"],
            &json!([["item_code", "=", cycle.names.item_code]]),
            "creation asc",
            0,
            1,
        )
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| text(r, "name")));
    cycle
        .finding("Stock Ledger Entry", "after_insert", sle.as_deref())
        .await
}
