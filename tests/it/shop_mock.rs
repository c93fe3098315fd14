//! `shop mock` keeps the shop contract exactly: a request missing any required header or
//! parameter, or carrying a malformed one, is refused with 400 (401 for credentials) and a JSON
//! error, and changes nothing; the same request complete is accepted.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use shoprelay::signing::standard_signature;
use shoprelay_testkit::shop::{MockOptions, SHOP_TOKEN};
use shoprelay_testkit::ShopMock;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY: &str = "3f9a1c0de4b5a6978812aa0b5c6d7e8f";

fn levels_body() -> Vec<u8> {
    json!({"channel": "web", "levels": [{"sku": "SKU-1", "available": 4}]})
        .to_string()
        .into_bytes()
}

fn shipment_body() -> Vec<u8> {
    json!({"status": "cancelled", "carrier": "DHL", "tracking_number": null, "tracking_url": null,
        "items": [{"sku": "SKU-1", "qty": 1}], "shipped_at": "2026-11-26T10:05:00Z"})
    .to_string()
    .into_bytes()
}

/// Every header a signed push carries, correct.
fn signed_headers(body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let id = format!("msg_{KEY}");
    vec![
        ("Authorization", format!("Bearer {SHOP_TOKEN}")),
        ("Content-Type", "application/json".into()),
        ("Idempotency-Key", KEY.into()),
        (
            "webhook-signature",
            standard_signature(SECRET, &id, ts, body),
        ),
        ("webhook-id", id),
        ("webhook-timestamp", ts.to_string()),
    ]
}

async fn signing_shop() -> ShopMock {
    ShopMock::start_with(MockOptions {
        signing_secrets: vec![SECRET.into()],
        ..MockOptions::default()
    })
    .await
    .expect("shop")
}

/// Sends `method path` with `headers`; the status and the JSON answer.
async fn send(
    shop: &ShopMock,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", shop.base_url()));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.body(body).send().await.expect("shop answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

async fn post_levels(shop: &ShopMock, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    send(
        shop,
        reqwest::Method::POST,
        "/inventory/levels",
        headers,
        body,
    )
    .await
}

/// The push `method path` is refused without each header in turn (401 for credentials, 400
/// otherwise, with a JSON error, changing nothing), and accepted complete.
async fn each_header_is_required(method: reqwest::Method, path: &str, body: fn() -> Vec<u8>) {
    let shop = signing_shop().await;
    let all = signed_headers(&body());
    for (missing, _) in &all {
        let without: Vec<(&str, String)> =
            all.iter().filter(|(k, _)| k != missing).cloned().collect();
        let (status, answer) = send(&shop, method.clone(), path, &without, body()).await;
        let expected = match *missing {
            "Authorization" | "webhook-id" | "webhook-timestamp" | "webhook-signature" => 401,
            _ => 400,
        };
        assert_eq!(status, expected, "{path} without {missing}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{missing}: {answer}"
        );
    }
    assert!(shop.levels().is_empty() && shop.shipments().is_empty());
    let (status, answer) = send(&shop, method, path, &all, body()).await;
    assert_eq!(status, 200, "the complete request: {answer}");
    assert_eq!(shop.levels().len() + shop.shipments().len(), 1);
    shop.stop().await;
}

#[tokio::test]
async fn levels_need_every_required_header() {
    each_header_is_required(reqwest::Method::POST, "/inventory/levels", levels_body).await;
}

#[tokio::test]
async fn shipments_need_every_required_header() {
    each_header_is_required(
        reqwest::Method::PUT,
        "/orders/SHOP-1/shipments/DN-1",
        shipment_body,
    )
    .await;
}

#[tokio::test]
async fn a_malformed_webhook_header_is_refused_even_when_the_shop_does_not_sign() {
    let shop = ShopMock::start().await.expect("shop");
    let plain: Vec<(&str, String)> = signed_headers(&levels_body())
        .into_iter()
        .filter(|(k, _)| !k.starts_with("webhook-"))
        .collect();
    let (status, answer) = post_levels(&shop, &plain, levels_body()).await;
    assert_eq!(status, 200, "no signature is needed here: {answer}");
    for (name, bad) in [
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "-5"),
        ("webhook-timestamp", ""),
        ("webhook-id", "3f9a"),
        ("webhook-signature", "v1,"),
        ("Idempotency-Key", "NOT-HEX"),
        ("Content-Type", "text/plain"),
    ] {
        let headers: Vec<(&str, String)> = plain
            .iter()
            .filter(|(k, _)| *k != name)
            .cloned()
            .chain([(name, bad.to_owned())])
            .collect();
        let body = json!({"channel": "other", "levels": [{"sku": "X", "available": 1}]});
        let (status, answer) = send(
            &shop,
            reqwest::Method::PUT,
            "/orders/SHOP-1/shipments/DN-1",
            &headers,
            shipment_body(),
        )
        .await;
        assert_eq!(status, 400, "{name}: {bad:?} on a shipment: {answer}");
        let (status, answer) = post_levels(&shop, &headers, body.to_string().into_bytes()).await;
        assert_eq!(status, 400, "{name}: {bad:?} on levels: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(
        shop.level("other", "X"),
        None,
        "a refused request changes nothing"
    );
    assert!(shop.shipments().is_empty());
    shop.stop().await;
}

#[tokio::test]
async fn a_signing_shop_refuses_a_malformed_timestamp_without_checking_the_signature() {
    let shop = signing_shop().await;
    let headers: Vec<(&str, String)> = signed_headers(&levels_body())
        .into_iter()
        .map(|(k, v)| match k {
            "webhook-timestamp" => (k, format!("{v}.5")),
            _ => (k, v),
        })
        .collect();
    let (status, answer) = post_levels(&shop, &headers, levels_body()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]
        .as_str()
        .is_some_and(|e| e.contains("webhook-timestamp")));
    shop.stop().await;
}

async fn get(shop: &ShopMock, query: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let path = format!("/inventory/levels{query}");
    send(shop, reqwest::Method::GET, &path, headers, Vec::new()).await
}

#[tokio::test]
async fn reading_levels_needs_the_token_a_channel_and_skus_but_no_signature() {
    let shop = signing_shop().await;
    let auth = [("Authorization", format!("Bearer {SHOP_TOKEN}"))];
    let (status, answer) = get(&shop, "?channel=web&sku=A&sku=B", &auth).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"channel": "web", "levels": []}));
    for query in [
        "?sku=A",
        "?channel=&sku=A",
        "?channel=web",
        "?channel=web&sku=",
    ] {
        let (status, answer) = get(&shop, query, &auth).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(answer["error"].is_string(), "{query}: {answer}");
    }
    let (status, _) = get(&shop, "?channel=web&sku=A", &[]).await;
    assert_eq!(status, 401, "without the bearer token");
    shop.stop().await;
}

#[tokio::test]
async fn bodies_that_break_the_schema_are_refused_with_422() {
    let shop = ShopMock::start().await.expect("shop");
    let headers: Vec<(&str, String)> = signed_headers(&[])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("webhook-"))
        .collect();
    let levels = [
        json!({"channel": "web", "levels": []}),
        json!({"channel": "web", "levels": [{"sku": "A", "available": 1.5}]}),
        json!({"channel": "web", "levels": [{"sku": "A", "available": 1, "extra": 1}]}),
        json!({"channel": "web", "levels": [{"sku": "A", "available": 9_007_199_254_740_992_u64}]}),
        json!({"channel": "web", "levels": [{"sku": "A", "available": 1}], "note": "x"}),
    ];
    for body in levels {
        let (status, answer) = post_levels(&shop, &headers, body.to_string().into_bytes()).await;
        assert_eq!(status, 422, "{body}: {answer}");
    }
    let mut good: Value = serde_json::from_slice(&shipment_body()).expect("json");
    for (field, bad) in [
        ("status", json!("lost")),
        ("items", json!([])),
        ("items", json!([{"sku": "A", "qty": 0}])),
        ("shipped_at", json!("2026-13-01T00:00:00Z")),
        ("carrier", json!(5)),
    ] {
        let was = std::mem::replace(&mut good[field], bad.clone());
        let (status, answer) = send(
            &shop,
            reqwest::Method::PUT,
            "/orders/SHOP-1/shipments/DN-1",
            &headers,
            good.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 422, "{field}: {bad}: {answer}");
        good[field] = was;
    }
    assert!(shop.levels().is_empty() && shop.shipments().is_empty());
    shop.stop().await;
}
