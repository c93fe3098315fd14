//! Step 1: the test order, signed as the shop signs it (Standard Webhooks, with the first of
//! `shop.webhook_secret`), placed at the relay's `POST /webhooks/shop/orders`.

use super::cycle::{now_secs, Cycle};
use super::order::{order_body, utc_date_and_time, Party};
use super::report::{fail, Outcome};
use crate::signing::standard_signature;

/// What the line of the report says.
pub(super) const TITLE: &str = "test order placed at the relay";

/// Step 1: the signed order, as the shop would send it.
pub(super) async fn run(cycle: &mut Cycle<'_>) -> Outcome {
    let Some(secret) = cycle.settings.shop.webhook_secrets.first() else {
        return fail(
            "an order signed with shop.webhook_secret",
            "shop.webhook_secret is not set",
            "set shop.webhook_secret (or SHOPRELAY_SHOP_WEBHOOK_SECRET) to the secret the relay verifies orders with",
        );
    };
    let (_, placed_at) = utc_date_and_time(now_secs());
    let party = Party {
        email: &cycle.email,
        country_code: &cycle.country_code,
        currency: &cycle.currency,
        channel: &cycle.channel.name,
    };
    let body = order_body(&cycle.names, cycle.money, &party, &placed_at).to_string();
    let ts = now_secs();
    let signature = standard_signature(
        secret.expose(),
        &cycle.names.webhook_id,
        ts,
        body.as_bytes(),
    );
    let url = format!("{}/webhooks/shop/orders", cycle.relay.base);
    let sent = cycle
        .relay
        .http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("webhook-id", &cycle.names.webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let expected = format!("POST {url} answered 202");
    match sent {
        Err(e) => fail(
            expected,
            format!("no answer: {e}"),
            "the relay is not running or not at this address: start `shoprelay serve`, check server.public_url / server.listen",
        ),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let answer: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
            match status {
                200 | 202 => Outcome::Pass(format!(
                    "order {} for {} x {} at {:.2} accepted ({status})",
                    cycle.names.order_id, cycle.money.qty, cycle.names.item_code, cycle.money.unit_price
                )),
                404 | 405 => fail(
                    expected,
                    format!("{status} {answer}"),
                    "this relay does not serve shop orders (an older release), or the URL is not the relay's",
                ),
                401 => fail(
                    expected,
                    format!("401 {answer}"),
                    "the relay refused the signature: its shop.webhook_secret differs from this configuration's, or the clocks differ by more than 5 minutes",
                ),
                _ => fail(expected, format!("{status} {answer}"), "the relay refused the order (its answer says why)"),
            }
        }
    }
}
