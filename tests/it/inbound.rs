//! `POST /webhooks/erpnext`: every case of tests/fixtures/webhook-vectors.json, and the
//! refusals (401, 400, 413, 422) that store nothing.

use crate::common;

use common::Harness;
use serde_json::Value;
use shoprelay::signing::frappe_signature;
use shoprelay::startup::Workers;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhook-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("the webhook vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    v["cases"].as_array().expect("cases").clone()
}

async fn post(url: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("X-Frappe-Webhook-Signature", sig);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_shared_vector_is_verified_as_frappe_signs_it() {
    for case in vectors() {
        let name = case["name"].as_str().expect("name").to_owned();
        let secret = case["secret"].as_str().expect("secret").to_owned();
        let h = Harness::start_with(Workers::Manual, |t| {
            t.replace(
                "webhook_secrets = [\"an-old-secret\", \"emulator-webhook-secret\"]",
                &format!(
                    "webhook_secrets = [{}]",
                    serde_json::to_string(&secret).expect("json")
                ),
            )
        })
        .await;
        let body = case["body"].as_str().expect("body").as_bytes().to_vec();
        let sig = case["signature"].as_str().expect("signature");
        let (status, answer) = post(&h.url("/webhooks/erpnext"), &body, Some(sig)).await;
        let depth = h.relay.store.depths().inbox;
        if case["valid"].as_bool() == Some(true) {
            assert_ne!(
                status, 401,
                "{name}: a valid signature was refused: {answer}"
            );
            // The signature is right; whether the content is an event shoprelay handles decides.
            assert!(status == 200 || status == 422, "{name}: {status} {answer}");
            assert_eq!(
                depth,
                usize::from(status == 200),
                "{name}: stored iff accepted"
            );
            if status == 422 {
                assert_eq!(answer["error"], "unknown_event", "{name}: {answer}");
            }
        } else {
            assert_eq!(
                status, 401,
                "{name}: an invalid signature was accepted: {answer}"
            );
            assert_eq!(answer["error"], "invalid_signature", "{name}");
            assert_eq!(depth, 0, "{name}: nothing may be stored");
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn stock_vectors_are_accepted_and_others_say_why_not() {
    // With the shipped vectors: Bin-shaped bodies are stock signals; an array, `{}` and a
    // doctype shoprelay does not handle are 422 with a reason.
    let h = Harness::start_with(Workers::Manual, |t| {
        t.replace("\"an-old-secret\"", "\"s3cret\"")
    })
    .await;
    for case in vectors()
        .iter()
        .filter(|c| c["secret"] == "s3cret" && c["valid"] == true)
    {
        let body = case["body"].as_str().expect("body").as_bytes();
        let (status, answer) = post(
            &h.url("/webhooks/erpnext"),
            body,
            case["signature"].as_str(),
        )
        .await;
        let expect = match case["name"].as_str().expect("name") {
            "array-body" | "empty-body" => 422,
            _ => 200,
        };
        assert_eq!(status, expect, "{}: {answer}", case["name"]);
        assert!(
            answer["message"].is_string() || answer["status"].is_string(),
            "{answer}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn refusals_have_json_bodies_and_store_nothing() {
    let h = Harness::start_with(Workers::Manual, |t| {
        t.replace("[server]", "[server]\nmax_body_bytes = 2048")
    })
    .await;
    let url = h.url("/webhooks/erpnext");
    let secret = shoprelay_testkit::WEBHOOK_SECRET;
    let good = br#"{"doctype": "Bin", "event": "on_change", "item_code": "A", "warehouse": "Stores - ACME"}"#;

    struct Case {
        what: &'static str,
        body: Vec<u8>,
        sig: Option<String>,
        status: u16,
        kind: &'static str,
    }
    let signed = |what, body: &[u8], status, kind| Case {
        what,
        body: body.to_vec(),
        sig: Some(frappe_signature(secret, body)),
        status,
        kind,
    };
    let cases = vec![
        Case {
            what: "missing signature",
            body: good.to_vec(),
            sig: None,
            status: 401,
            kind: "invalid_signature",
        },
        Case {
            what: "wrong signature",
            body: good.to_vec(),
            sig: Some(frappe_signature("nope", good)),
            status: 401,
            kind: "invalid_signature",
        },
        Case {
            what: "hex signature",
            body: good.to_vec(),
            sig: Some("ab".repeat(32)),
            status: 401,
            kind: "invalid_signature",
        },
        signed("not json", b"{\"doctype\": ", 400, "malformed_body"),
        signed("binary", &[0xff, 0x00, 0xfe], 400, "malformed_body"),
        signed(
            "unknown doctype",
            br#"{"doctype": "Journal Entry", "event": "on_submit"}"#,
            422,
            "unknown_event",
        ),
        signed(
            "missing warehouse",
            br#"{"doctype": "Bin", "event": "on_change", "item_code": "A"}"#,
            422,
            "unknown_event",
        ),
    ];
    for Case {
        what,
        body,
        sig,
        status,
        kind,
    } in cases
    {
        let (got, answer) = post(&url, &body, sig.as_deref()).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"], kind, "{what}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
        assert!(
            !answer.to_string().contains(secret),
            "{what}: the secret leaked"
        );
    }
    // Oversized, both with a Content-Length and streamed without one.
    let big = vec![b' '; 4096];
    let (got, answer) = post(&url, &big, Some(&frappe_signature(secret, &big))).await;
    assert_eq!(
        (got, answer["error"].as_str()),
        (413, Some("payload_too_large")),
        "{answer}"
    );
    let stream =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let resp = reqwest::Client::new()
        .post(&url)
        .header("X-Frappe-Webhook-Signature", "x")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(h.relay.store.depths().inbox, 0, "nothing may be stored");
    h.stop().await;
}

#[tokio::test]
async fn a_repeated_delivery_is_answered_200_once_stored_and_has_no_second_effect() {
    let h = Harness::start(Workers::Manual).await;
    let ds = h
        .erp
        .stock_move("SKU-1", common::STORES, 5.0)
        .expect("move");
    assert!(!ds.is_empty());
    // Frappe sends no Content-Type unless a header row adds it: strip ours.
    let mut bare = ds[0].clone();
    bare.headers.clear();
    assert_eq!(h.erp.deliver(&bare).await.expect("deliver"), 200);
    let before = h.relay.store.depths().inbox;
    for _ in 0..3 {
        let (status, answer) = post(
            &h.url("/webhooks/erpnext"),
            &bare.body,
            Some(&bare.signature),
        )
        .await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate"))
        );
    }
    assert_eq!(h.relay.store.depths().inbox, before);
    h.stop().await;
}

#[tokio::test]
async fn concurrent_deliveries_are_all_stored() {
    let h = Harness::start(Workers::Manual).await;
    let mut all = Vec::new();
    for i in 0..50 {
        all.extend(
            h.erp
                .stock_move(&format!("SKU-{i}"), common::STORES, 1.0)
                .expect("move"),
        );
    }
    let n = all.len();
    let futures: Vec<_> = all.iter().map(|d| h.erp.deliver(d)).collect();
    let statuses = futures_util::future::join_all(futures).await;
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(200))),
        "{statuses:?}"
    );
    assert_eq!(h.relay.store.depths().inbox, n);
    h.stop().await;
}
