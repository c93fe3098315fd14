//! What an attacker who can reach the relay cannot do: guess the admin token quickly, make a
//! signature check cost more than one HMAC per secret, hold memory with slow bodies, fill the
//! disk's flush queue through the health probes.

use crate::common;

use common::Harness;
use shoprelay::startup::Workers;

const TOKEN: &str = "admin-token-0123456789";

/// A client whose connections leave from `ip` (any address of 127.0.0.0/8 reaches loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse().expect("ip")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn bearer(c: &reqwest::Client, h: &Harness, token: &str) -> reqwest::Response {
    c.get(h.url("/admin/status"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /admin/status")
}

#[tokio::test]
async fn wrong_admin_tokens_are_slowed_per_address_and_other_addresses_still_get_in() {
    let h = Harness::start_with(Workers::Manual, |t| {
        t.replace(
            "[server]\n",
            "[server]\nadmin_failures_burst = 3\nadmin_failure_refill_secs = 3600\n",
        )
    })
    .await;
    let guesser = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(bearer(&guesser, &h, "guess").await.status(), 401);
    }
    let slowed = bearer(&guesser, &h, "guess").await;
    assert_eq!(slowed.status(), 429);
    let wait: u64 = slowed
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait > 3000 && wait <= 3600, "{wait}");
    let body: serde_json::Value = slowed.json().await.expect("JSON body");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many wrong admin tokens")),
        "{body}"
    );
    // While it waits even the right token is refused to that address (no free oracle) ...
    assert_eq!(bearer(&guesser, &h, TOKEN).await.status(), 429);
    // ... and the sign-in form shares the count.
    let form = guesser
        .post(h.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("POST /admin/login");
    assert_eq!(form.status(), 429);
    assert!(form
        .text()
        .await
        .expect("page")
        .contains("Too many wrong tokens"));

    // The admin at another address is not locked out.
    let admin = client_from("127.0.0.3");
    assert_eq!(bearer(&admin, &h, TOKEN).await.status(), 200);
    let signed = admin
        .post(h.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status(), 303);
    // Wrong sign-ins count as bearer guesses do.
    let other = client_from("127.0.0.4");
    for expected in [401, 401, 401, 429] {
        let r = other
            .post(h.url("/admin/login"))
            .form(&[("token", "guess")])
            .send()
            .await
            .expect("POST /admin/login");
        assert_eq!(r.status(), expected);
    }
    h.stop().await;
}

/// `count` well-formed `v1,` entries that match nothing.
fn bogus_signatures(count: usize) -> String {
    let one = format!("v1,{}=", "A".repeat(43));
    vec![one; count].join(" ")
}

async fn post_order_with(h: &Harness, signature: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(h.url("/webhooks/shop/orders"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_0123456789abcdef0123456789abcdef")
        .header("webhook-timestamp", common::orders::now_secs().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("POST /webhooks/shop/orders")
}

#[tokio::test]
async fn signed_erpnext_deliveries_are_answered_while_signature_floods_run() {
    let h = Harness::start_with(Workers::Background, common::orders::with_orders).await;
    // More entries than server.max_signature_entries (8): refused before any HMAC.
    let r = post_order_with(&h, &bogus_signatures(100), b"{}".to_vec()).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(body["error"], "signature_header_too_large", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("100 entries") && m.contains("at most 8")),
        "{body}"
    );
    let r = post_order_with(&h, &format!("v1,{}", "A".repeat(2000)), b"{}".to_vec()).await;
    assert_eq!(r.status(), 400);

    // Ten senders keep the largest allowed attempt in flight: a 1 MB body, 8 entries, each
    // now one HMAC per secret (2) instead of one per entry and secret (16).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = h.url("");
    let mut flood = Vec::new();
    for _ in 0..10 {
        let (stop, url) = (stop.clone(), url.clone());
        flood.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let body = vec![b' '; 1 << 20];
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = c
                    .post(format!("{url}/webhooks/shop/orders"))
                    .header("webhook-id", "msg_0123456789abcdef0123456789abcdef")
                    .header("webhook-timestamp", common::orders::now_secs().to_string())
                    .header("webhook-signature", bogus_signatures(8))
                    .body(body.clone())
                    .send()
                    .await
                    .expect("flood request");
                assert_eq!(r.status(), 401);
                sent += 1;
            }
            sent
        }));
    }
    for qty in 1..=5 {
        h.deliver(h.erp.stock_move("LAMP", common::STORES, 1.0).expect("move"))
            .await;
        h.wait_level("web", "LAMP", qty).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut attempts = 0;
    for f in flood {
        attempts += f.await.expect("flood task");
    }
    assert!(attempts >= 10, "the flood ran ({attempts} attempts)");
    h.stop().await;
}

#[tokio::test]
async fn a_flood_of_health_probes_costs_one_store_probe_a_second_and_a_failure_shows_at_once() {
    let h = Harness::start(Workers::Manual).await;
    let c = reqwest::Client::new();
    let probe = |path: &'static str| {
        let c = c.clone();
        let url = h.url(path);
        async move { c.get(url).send().await.expect("probe").status().as_u16() }
    };
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(probe("/healthz").await, 200);
        assert_eq!(probe("/readyz").await, 200);
    }
    let seconds = started.elapsed().as_secs();
    let ran = metric(&h.metrics().await, "shoprelay_store_probes_total");
    assert!(
        ran <= seconds + 1,
        "100 probes within {seconds} s ran {ran} store probes"
    );
    // A store failure a webhook meets is not hidden behind the last good probe.
    h.relay.store.inject_write_failure(true);
    let refused = h.erp.stock_move("LAMP", common::STORES, 3.0).expect("move");
    let (status, _) = h
        .erp
        .deliver_with_answer(&refused[0])
        .await
        .expect("deliver");
    assert_eq!(status, 503);
    assert_eq!(probe("/readyz").await, 503);
    h.relay.store.inject_write_failure(false);
    assert_eq!(probe("/readyz").await, 200);
    h.stop().await;
}

/// A sample's value in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {name} in {text}")) as u64
}

/// Opens a connection that sends a head declaring `declared` bytes and then `sent` of them,
/// and stops; returns the status line the relay answers with.
async fn slow_sender(port: u16, declared: usize, sent: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /webhooks/erpnext HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&vec![b' '; sent])
        .await
        .expect("most of the body");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_bodies_are_answered_408_and_a_signed_delivery_still_gets_through() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace("[server]\n", "[server]\nbody_timeout_secs = 1\n")
    })
    .await;
    let senders: Vec<_> = (0..20)
        .map(|_| tokio::spawn(slow_sender(h.port, 1_000_000, 900_000)))
        .collect();
    // While they hold their connections, ERPNext's delivery is taken.
    h.deliver(h.erp.stock_move("LAMP", common::STORES, 2.0).expect("move"))
        .await;
    h.wait_level("web", "LAMP", 2).await;
    for s in senders {
        let answer = s.await.expect("sender");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"error\":\"body_timeout\""), "{answer}");
        assert!(answer.contains("server.body_timeout_secs"), "{answer}");
    }
    // Their bytes were given back.
    let text = h.metrics().await;
    assert_eq!(metric(&text, "shoprelay_request_body_bytes_in_flight"), 0);
    h.stop().await;
}

#[tokio::test]
async fn bodies_past_the_in_flight_budget_are_refused_503_until_bytes_are_free() {
    let h = Harness::start_with(Workers::Manual, |t| {
        t.replace(
            "[server]\n",
            "[server]\nbody_timeout_secs = 2\nmax_body_bytes_in_flight = 2000000\n",
        )
    })
    .await;
    let answers = futures_join(
        (0..3)
            .map(|_| slow_sender(h.port, 1_000_000, 900_000))
            .collect(),
    )
    .await;
    let busy = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503") && a.contains("\"error\":\"busy\""))
        .count();
    let timed_out = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 408"))
        .count();
    assert_eq!((busy, timed_out), (1, 2), "{answers:?}");
    // Once they are gone, a delivery is read again.
    h.deliver(h.erp.stock_move("LAMP", common::STORES, 2.0).expect("move"))
        .await;
    h.stop().await;
}

async fn futures_join(
    fs: Vec<impl std::future::Future<Output = String> + Send + 'static>,
) -> Vec<String> {
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn sign_in(c: &reqwest::Client, h: &Harness) -> String {
    let r = c
        .post(h.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie");
    set.split(';').next().expect("name=value").to_owned()
}

async fn status_page(c: &reqwest::Client, h: &Harness, cookie: &str) -> u16 {
    c.get(h.url("/admin/"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /admin/")
        .status()
        .as_u16()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn sign_out_ends_the_session_and_a_second_cookie_locks_nobody_out() {
    let h = Harness::start(Workers::Manual).await;
    let c = client_from("127.0.0.1");
    let cookie = sign_in(&c, &h).await;
    // A stale cookie of the same name sent first (another path, an old tab) does not hide
    // the good one.
    let both = format!("shoprelay_admin=junk.junk.junk; {cookie}");
    assert_eq!(status_page(&c, &h, &both).await, 200);
    let page = c
        .get(h.url("/admin/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    let out = c
        .post(h.url("/admin/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status(), 303);
    // The old cookie (kept by someone who copied it) no longer signs in.
    assert_eq!(status_page(&c, &h, &cookie).await, 303);
    let other = sign_in(&c, &h).await;
    assert_eq!(status_page(&c, &h, &other).await, 200);
    h.stop().await;
}

#[tokio::test]
async fn admin_sku_dot_dot_is_refused_with_a_failing_exit_status() {
    let h = Harness::start(Workers::Manual).await;
    for sku in ["..", "."] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoprelay"))
            .args(["admin", "--url", &h.url(""), "sku", sku])
            .env("SHOPRELAY_ADMIN_TOKEN", TOKEN)
            .env("SHOPRELAY_LOG_FORMAT", "text")
            .current_dir(h.dir.path())
            .output()
            .expect("run shoprelay admin sku");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sku}: {err}");
        assert!(
            err.contains("is not a SKU that can be looked up"),
            "{sku}: {err}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn an_order_id_of_dot_dot_never_steers_a_shipment_to_another_shop_path() {
    let h = Harness::start(Workers::Background).await;
    h.deliver(
        h.erp
            .stock_move("SKU 1/A", common::STORES, 5.0)
            .expect("move"),
    )
    .await;
    let (so, ds) = h
        .erp
        .submit_sales_order("..", &[("SKU 1/A", common::STORES, 2.0)])
        .expect("so");
    h.deliver(ds).await;
    let (_, ds) = h
        .erp
        .submit_delivery_note(
            &[(Some(&so), "SKU 1/A", common::STORES, 1.0)],
            common::DHL_LR_1,
            None,
        )
        .expect("dn");
    h.deliver(ds).await;
    h.wait_dead_letters(1).await;
    let dead = h.dead_letters().await;
    assert!(
        dead.to_string()
            .contains("cannot be sent as a URL path segment"),
        "{dead}"
    );
    assert!(
        h.shop
            .requests()
            .iter()
            .all(|r| !r.path.contains("/shipments/")),
        "no shipment was sent anywhere"
    );
    h.stop().await;
}
