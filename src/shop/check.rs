//! `shoprelay shop check`: runs the shop contract (shop_adapter_spec/) against a live
//! shop with a test channel and test SKUs, one line per rule, so a shop team knows before
//! go-live what their side gets wrong.

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{ShopAnswer, ShopClient, ShopError, Tamper};
use crate::http::encode_segment;

/// What became of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// One rule and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub rule: &'static str,
    pub outcome: Outcome,
}

impl CheckLine {
    /// `PASS rule`, `FAIL rule: why`, `SKIP rule: why`.
    pub fn render(&self) -> String {
        match &self.outcome {
            Outcome::Pass => format!("PASS  {}", self.rule),
            Outcome::Fail(why) => format!("FAIL  {}: {why}", self.rule),
            Outcome::Skip(why) => format!("SKIP  {}: {why}", self.rule),
        }
    }
}

fn answered(a: &Result<ShopAnswer, ShopError>) -> String {
    match a {
        Ok(a) => format!(
            "answered {} {}",
            a.status,
            a.body.chars().take(160).collect::<String>()
        ),
        Err(e) => crate::telemetry::error_chain(e),
    }
}

fn expect_2xx(a: &Result<ShopAnswer, ShopError>) -> Outcome {
    match a {
        Ok(a) if (200..300).contains(&a.status) => Outcome::Pass,
        _ => Outcome::Fail(format!("expected 2xx, {}", answered(a))),
    }
}

/// Expects a refusal that the relay will not retry: 4xx other than 408/425/429.
fn expect_refusal(a: &Result<ShopAnswer, ShopError>, allowed: &[u16]) -> Outcome {
    match a {
        Ok(x) if allowed.contains(&x.status) => Outcome::Pass,
        Ok(x) if (200..300).contains(&x.status) => {
            Outcome::Fail(format!("accepted it: {}", answered(a)))
        }
        Ok(x) if x.status >= 500 => Outcome::Fail(format!(
            "{}; a 5xx is retried for ever, answer one of {allowed:?}",
            answered(a)
        )),
        _ => Outcome::Fail(format!("expected one of {allowed:?}, {}", answered(a))),
    }
}

fn levels_body(channel: &str, skus: &[String], available: u64) -> Vec<u8> {
    let levels: Vec<Value> = skus
        .iter()
        .map(|s| json!({"sku": s, "available": available}))
        .collect();
    json!({"channel": channel, "levels": levels})
        .to_string()
        .into_bytes()
}

/// Runs every rule. `signed` says whether the relay is configured to sign (then a wrongly
/// signed request must be refused).
pub async fn run(
    client: &ShopClient,
    signed: bool,
    channel: &str,
    skus: &[String],
) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let mut line = |rule: &'static str, outcome: Outcome| out.push(CheckLine { rule, outcome });
    let levels = "/inventory/levels";

    let first = client
        .send(Method::POST, levels, levels_body(channel, skus, 7))
        .await;
    line(
        "levels: POST /inventory/levels is accepted (2xx)",
        expect_2xx(&first),
    );
    let again = client
        .send(Method::POST, levels, levels_body(channel, skus, 7))
        .await;
    line(
        "levels: the same request again (same Idempotency-Key) is accepted",
        expect_2xx(&again),
    );

    let query: String = std::iter::once(format!("channel={}", encode_segment(channel)))
        .chain(skus.iter().map(|s| format!("sku={}", encode_segment(s))))
        .collect::<Vec<_>>()
        .join("&");
    let read = client.get(&format!("{levels}?{query}")).await;
    let absolute = match &read {
        Ok(a) if a.status == 404 => {
            Outcome::Skip("the shop has no GET /inventory/levels (optional)".into())
        }
        Ok(a) if (200..300).contains(&a.status) => {
            let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
            let got: Vec<(String, u64)> = v["levels"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| {
                            Some((l["sku"].as_str()?.to_owned(), l["available"].as_u64()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let wrong: Vec<&(String, u64)> = got.iter().filter(|(_, n)| *n != 7).collect();
            if got.len() != skus.len() {
                Outcome::Fail(format!(
                    "GET answered {} levels for {} SKUs: {}",
                    got.len(),
                    skus.len(),
                    a.body
                ))
            } else if let Some((sku, n)) = wrong.first() {
                Outcome::Fail(format!(
                    "{sku} shows {n} after 7 was set twice: levels are absolute, never added up"
                ))
            } else {
                Outcome::Pass
            }
        }
        _ => Outcome::Fail(format!("GET /inventory/levels: {}", answered(&read))),
    };
    line("levels: are absolute (set 7 twice, read back 7)", absolute);

    let path = format!(
        "/orders/{}/shipments/{}",
        encode_segment("shoprelay-check-order"),
        encode_segment("SHOPRELAY-CHECK-DN")
    );
    let mut shipment = json!({"status": "shipped", "carrier": "CHECK", "tracking_number": "CHECK-1", "tracking_url": null,
        "items": skus.iter().map(|s| json!({"sku": s, "qty": 1})).collect::<Vec<_>>(), "shipped_at": "2026-11-26T10:05:00Z"});
    let body = shipment.to_string().into_bytes();
    let put = client.send(Method::PUT, &path, body.clone()).await;
    line(
        "shipments: PUT /orders/{id}/shipments/{id} is accepted",
        expect_2xx(&put),
    );
    let put_again = client.send(Method::PUT, &path, body).await;
    line(
        "shipments: the same PUT again is accepted (upsert)",
        expect_2xx(&put_again),
    );
    shipment["status"] = json!("cancelled");
    let cancel = client
        .send(Method::PUT, &path, shipment.to_string().into_bytes())
        .await;
    line(
        "shipments: the same PUT with \"status\": \"cancelled\" is accepted",
        expect_2xx(&cancel),
    );
    let unknown = format!(
        "/orders/{}/shipments/{}",
        encode_segment("shoprelay-check-order"),
        encode_segment("SHOPRELAY-CHECK-DN-UNKNOWN")
    );
    let cancel_unknown = client
        .send(Method::PUT, &unknown, shipment.to_string().into_bytes())
        .await;
    let gone = match &cancel_unknown {
        Ok(a) if (200..300).contains(&a.status) || a.status == 404 => Outcome::Pass,
        _ => Outcome::Fail(format!(
            "expected 2xx or 404, {}",
            answered(&cancel_unknown)
        )),
    };
    line(
        "shipments: cancelling an unknown shipment answers 2xx or 404",
        gone,
    );

    let wrong_token = client
        .send_with(
            Method::POST,
            levels,
            levels_body(channel, skus, 7),
            Tamper::WrongToken,
        )
        .await;
    line(
        "auth: a wrong bearer token is refused (401 or 403)",
        expect_refusal(&wrong_token, &[401, 403]),
    );
    if signed {
        let forged = client
            .send_with(
                Method::POST,
                levels,
                levels_body(channel, skus, 0),
                Tamper::WrongSignature,
            )
            .await;
        line(
            "signature: a wrongly signed request is refused (401 or 403)",
            expect_refusal(&forged, &[401, 403]),
        );
    } else {
        line(
            "signature: a wrongly signed request is refused (401 or 403)",
            Outcome::Skip("shop.signing_secret is not set: pushes are not signed".into()),
        );
    }
    let garbage = client
        .send(
            Method::POST,
            levels,
            br#"{"channel": 5, "levels": "many"}"#.to_vec(),
        )
        .await;
    line(
        "errors: a body that breaks the contract is refused (400 or 422)",
        expect_refusal(&garbage, &[400, 422]),
    );
    let negative = client
        .send(
            Method::POST,
            levels,
            json!({"channel": channel, "levels": [{"sku": skus.first(), "available": -3}]})
                .to_string()
                .into_bytes(),
        )
        .await;
    line(
        "errors: a negative level is refused (400 or 422)",
        expect_refusal(&negative, &[400, 422]),
    );
    out
}
