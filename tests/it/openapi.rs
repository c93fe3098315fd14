//! shop_adapter_spec/openapi.yaml: it parses as OpenAPI 3.1, every reference resolves, every
//! example validates against its own schema, and every request the relay really sends validates
//! against the schema of its path.

use crate::common;

use common::{ship_and_track, wait_until, Harness, DHL_LR_1, STORES};
use serde_json::{json, Value};
use shoprelay_testkit::shop::SHOP_TOKEN;

const SPEC: &str = include_str!("../../shop_adapter_spec/openapi.yaml");
const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

fn spec() -> Value {
    yaml_serde::from_str(SPEC).expect("the spec is YAML")
}

/// A validator for `schema`, whose `#/components/...` references resolve against the spec.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

fn errors(spec: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    validator(spec, schema)
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// Follows a `$ref` to a component (parameters, responses).
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

/// Every (where, operation) of `paths` and `webhooks`.
fn operations(spec: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for section in ["paths", "webhooks"] {
        for (path, item) in spec[section].as_object().cloned().unwrap_or_default() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    let mut op = op.clone();
                    // Path-level parameters apply to every operation.
                    if let Some(shared) = item.get("parameters").and_then(Value::as_array) {
                        let mut params = shared.clone();
                        params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
                        op["parameters"] = Value::Array(params);
                    }
                    out.push((format!("{section} {m} {path}"), op));
                }
            }
        }
    }
    out
}

/// (schema, example) pairs of a media-type object.
fn media_examples(media: &Value) -> Vec<(Value, Value)> {
    let schema = media["schema"].clone();
    let mut out = Vec::new();
    if let Some(e) = media.get("example") {
        out.push((schema.clone(), e.clone()));
    }
    for (_, e) in media["examples"].as_object().cloned().unwrap_or_default() {
        out.push((schema.clone(), e["value"].clone()));
    }
    out
}

#[test]
fn the_spec_parses_as_openapi_3_1_and_every_reference_resolves() {
    let typed = oas3::from_yaml(SPEC).expect("a valid OpenAPI 3.1 document");
    assert!(typed.openapi.starts_with("3.1"), "{}", typed.openapi);
    let spec = spec();
    let mut refs = Vec::new();
    fn walk(v: &Value, refs: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    refs.push(r.clone());
                }
                m.values().for_each(|x| walk(x, refs));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, refs)),
            _ => {}
        }
    }
    walk(&spec, &mut refs);
    assert!(refs.len() > 20);
    for r in refs {
        assert!(
            spec.pointer(r.trim_start_matches('#')).is_some(),
            "{r} does not resolve"
        );
    }
    // Every operation the relay calls, and the order webhook, is there.
    let ops: Vec<String> = operations(&spec).into_iter().map(|(w, _)| w).collect();
    for want in [
        "paths post /inventory/levels",
        "paths get /inventory/levels",
        "paths put /orders/{order_id}/shipments/{shipment_id}",
        "paths get /orders/{order_id}/shipments/{shipment_id}",
        "webhooks post shopOrder",
    ] {
        assert!(ops.iter().any(|o| o == want), "{want} missing from {ops:?}");
    }
}

#[test]
fn every_example_validates_against_its_own_schema() {
    let spec = spec();
    let mut checked = 0;
    for (whence, op) in operations(&spec) {
        let mut pairs: Vec<(String, Value, Value)> = Vec::new();
        for (ct, media) in op["requestBody"]["content"]
            .as_object()
            .cloned()
            .unwrap_or_default()
        {
            for (s, e) in media_examples(&media) {
                pairs.push((format!("{whence} request {ct}"), s, e));
            }
        }
        for (status, resp) in op["responses"].as_object().cloned().unwrap_or_default() {
            let resp = resolve(&spec, &resp);
            for (ct, media) in resp["content"].as_object().cloned().unwrap_or_default() {
                for (s, e) in media_examples(&media) {
                    pairs.push((format!("{whence} {status} {ct}"), s, e));
                }
            }
            for (name, h) in resp["headers"].as_object().cloned().unwrap_or_default() {
                if let Some(e) = h.get("example") {
                    pairs.push((
                        format!("{whence} {status} header {name}"),
                        h["schema"].clone(),
                        e.clone(),
                    ));
                }
            }
        }
        for p in op["parameters"].as_array().cloned().unwrap_or_default() {
            let p = resolve(&spec, &p);
            if let Some(e) = p.get("example") {
                pairs.push((
                    format!("{whence} parameter {}", p["name"]),
                    p["schema"].clone(),
                    e.clone(),
                ));
            }
        }
        for (what, schema, example) in pairs {
            let errs = errors(&spec, &schema, &example);
            assert!(
                errs.is_empty(),
                "{what}: {example} does not validate: {errs:?}"
            );
            checked += 1;
        }
    }
    for (name, schema) in spec["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        for example in schema["examples"].as_array().cloned().unwrap_or_default() {
            let errs = errors(
                &spec,
                &json!({"$ref": format!("#/components/schemas/{name}")}),
                &example,
            );
            assert!(
                errs.is_empty(),
                "schema {name}: {example} does not validate: {errs:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} examples");
    // And the schemas are strict enough to catch a broken body.
    let levels = json!({"$ref": "#/components/schemas/LevelsRequest"});
    assert!(!errors(
        &spec,
        &levels,
        &json!({"channel": "web", "levels": [{"sku": "A", "available": -1}]})
    )
    .is_empty());
    assert!(!errors(
        &spec,
        &levels,
        &json!({"channel": "web", "levels": [{"sku": "A", "delta": 3}]})
    )
    .is_empty());
}

/// The spec's operation for a request the shop received, with the path template matched.
fn operation_for<'a>(spec: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let path = path.strip_prefix("/erp")?;
    let segments: Vec<&str> = path.split('/').collect();
    spec["paths"]
        .as_object()?
        .iter()
        .find_map(|(template, item)| {
            let t: Vec<&str> = template.split('/').collect();
            let same = t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(a, b)| a.starts_with('{') || a == b);
            same.then(|| item.get(method.to_ascii_lowercase()))
                .flatten()
        })
}

#[tokio::test]
async fn every_request_the_relay_sends_validates_against_the_spec() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let h = Harness::start_signed(&[secret], secret).await;
    // Stock, an order, a delivery with tracking, a cancelled delivery: every kind of request.
    let (so, dn) = ship_and_track(&h, Some("https://t.example/1Z1")).await;
    let (dn2, ds) = h
        .erp
        .submit_delivery_note(&[(Some(&so), "SKU 1/A", STORES, 1.0)], DHL_LR_1, None)
        .expect("dn2");
    h.deliver(ds).await;
    wait_until(
        "dn2 shipped",
        || h.shop.shipments().keys().any(|(_, s)| *s == dn2),
        || format!("{:?}", h.shop.shipments()),
    )
    .await;
    h.deliver(h.erp.cancel_delivery_note(&dn2).expect("cancel"))
        .await;
    wait_until(
        "tracked and cancelled",
        || {
            let s = h.shop.shipments();
            s.iter()
                .any(|((_, id), b)| *id == dn && b["tracking_number"] == "1Z1")
                && s.iter()
                    .any(|((_, id), b)| *id == dn2 && b["status"] == "cancelled")
        },
        || format!("{:?}", h.shop.shipments()),
    )
    .await;

    let spec = spec();
    let requests = h.shop.requests();
    let kinds: std::collections::BTreeSet<String> =
        requests.iter().map(|r| r.method.clone()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["POST", "PUT"]);
    for r in &requests {
        assert_eq!(
            r.status / 100,
            2,
            "{} {} was refused: the shop verifies signatures",
            r.method,
            r.path
        );
        let op = operation_for(&spec, &r.method, &r.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", r.method, r.path));
        match op.get("requestBody") {
            Some(rb) => {
                let schema = &rb["content"]["application/json"]["schema"];
                let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
                let errs = errors(&spec, schema, &body);
                assert!(
                    errs.is_empty(),
                    "{} {}: {body} breaks the spec: {errs:?}",
                    r.method,
                    r.path
                );
                assert_eq!(r.header("content-type"), Some("application/json"));
            }
            None => {
                assert!(
                    r.body.is_empty(),
                    "{} {} must have no body",
                    r.method,
                    r.path
                );
                assert_eq!(r.header("content-type"), None);
            }
        }
        for p in op["parameters"].as_array().cloned().unwrap_or_default() {
            let p = resolve(&spec, &p);
            if p["in"] != "header" {
                continue;
            }
            let name = p["name"].as_str().expect("name");
            // The relay signs here, so the optional signature headers must be there too.
            let value = r
                .header(name)
                .unwrap_or_else(|| panic!("{} {} lacks {name}", r.method, r.path));
            let errs = errors(&spec, &p["schema"], &json!(value));
            assert!(
                errs.is_empty(),
                "{} {} header {name}: {value}: {errs:?}",
                r.method,
                r.path
            );
        }
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {SHOP_TOKEN}").as_str())
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PUT" && r.json()["status"] == "cancelled"),
        "the cancelled delivery note was PUT as cancelled"
    );
    h.stop().await;
}
