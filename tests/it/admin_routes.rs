//! Every admin route refuses a request without the token and with a wrong one, and answers the
//! right one; the pages want a session instead, and their forms the CSRF token; the
//! `shoprelay admin` commands read the same API.

use crate::common;

use common::{wait_until, Harness, STORES};
use reqwest::Method;
use serde_json::{json, Value};
use shoprelay::cli::admin::{run, AdminCommand, Target};
use shoprelay::startup::Workers;
use shoprelay_testkit::shop::Scripted;

/// Every JSON route, with a body where it needs one and the status the right token gets.
fn json_routes() -> Vec<(Method, &'static str, Option<Value>, u16)> {
    let channels = json!({"channels": [{"name": "web", "warehouses": [STORES]}]});
    vec![
        (Method::GET, "/admin/status", None, 200),
        (Method::GET, "/admin/outbox", None, 200),
        (Method::GET, "/admin/channels", None, 200),
        (Method::PUT, "/admin/channels", Some(channels), 200),
        (Method::DELETE, "/admin/channels", None, 200),
        (Method::GET, "/admin/dead-letters", None, 200),
        (Method::POST, "/admin/dead-letters/retry", None, 200),
        (Method::DELETE, "/admin/dead-letters", None, 200),
        (Method::POST, "/admin/dead-letters/424242/retry", None, 404),
        (Method::DELETE, "/admin/dead-letters/424242", None, 404),
        (Method::GET, "/admin/skus/CHAIR", None, 200),
        (Method::POST, "/admin/reconcile", None, 202),
        (Method::POST, "/admin/reconcile?full=true", None, 202),
    ]
}

async fn send(
    h: &Harness,
    method: Method,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, h.url(path));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_admin_route_wants_the_right_token() {
    // Every route is tried with four wrong tokens: more than the default burst of failures.
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace("[server]\n", "[server]\nadmin_failures_burst = 1000\n")
    })
    .await;
    for (method, path, body, ok) in json_routes() {
        for (auth, want) in [
            (None, 401),
            (Some("Bearer wrong-token"), 401),
            (Some("Bearer admin-token-0123456789X"), 401),
            (Some("Basic admin-token-0123456789"), 401),
            (Some("Bearer admin-token-0123456789"), ok),
        ] {
            let (status, answer) = send(&h, method.clone(), path, body.clone(), auth).await;
            assert_eq!(status, want, "{method} {path} with {auth:?}: {answer}");
            if want == 401 {
                assert!(
                    answer["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("token")),
                    "{answer}"
                );
            }
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn without_a_configured_token_every_admin_route_is_refused() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace("admin_token = \"admin-token-0123456789\"\n", "")
    })
    .await;
    for (method, path, body, _) in json_routes() {
        let (status, answer) = send(
            &h,
            method.clone(),
            path,
            body,
            Some("Bearer admin-token-0123456789"),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    let page = no_redirects()
        .get(h.url("/admin/"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 403);
    h.stop().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Posts the sign-in form with the right token.
async fn sign_in(h: &Harness) -> reqwest::Response {
    no_redirects()
        .post(h.url("/admin/login"))
        .form(&[("token", "admin-token-0123456789")])
        .send()
        .await
        .expect("sign in")
}

/// Signs in as a browser would and returns the session cookie.
async fn session(h: &Harness) -> String {
    let resp = sign_in(h).await;
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    assert!(!cookie.contains("admin-token-0123456789"), "{cookie}");
    cookie.split(';').next().expect("name=value").to_owned()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn the_pages_want_a_session_and_their_forms_the_csrf_token() {
    let h = Harness::start(Workers::Background).await;
    let c = no_redirects();
    let pages = [
        "/admin/",
        "/admin/ui/channels",
        "/admin/ui/sku?sku=CHAIR",
        "/admin/ui/dead-letters",
    ];
    let forms = [
        ("/admin/ui/reconcile", vec![("full", "on")]),
        (
            "/admin/ui/channels",
            vec![
                ("rows", "1"),
                ("ch0.name", "x"),
                ("ch0.wh", STORES),
                ("action", "save"),
            ],
        ),
        (
            "/admin/ui/dead-letters",
            vec![("id", "all"), ("action", "discard")],
        ),
        ("/admin/logout", vec![]),
    ];
    // No session, or a forged one: to the sign-in page.
    for cookie in [
        None,
        Some("shoprelay_admin=99999999999.00.abc"),
        Some("shoprelay_admin="),
    ] {
        for p in pages {
            let mut req = c.get(h.url(p));
            if let Some(k) = cookie {
                req = req.header("Cookie", k);
            }
            let resp = req.send().await.expect("page");
            assert_eq!(resp.status().as_u16(), 303, "{p} with {cookie:?}");
            assert_eq!(resp.headers()["location"], "/admin/login");
        }
        for (p, fields) in &forms {
            let mut req = c.post(h.url(p)).form(fields);
            if let Some(k) = cookie {
                req = req.header("Cookie", k);
            }
            assert_eq!(
                req.send().await.expect("form").status().as_u16(),
                303,
                "{p}"
            );
        }
    }
    // A wrong token: 401, no cookie. The bearer token does not open the pages.
    let wrong = c
        .post(h.url("/admin/login"))
        .form(&[("token", "admin-token-0123456789X")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let bearer = c
        .get(h.url("/admin/"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .expect("page");
    assert_eq!(bearer.status().as_u16(), 303);

    let cookie = session(&h).await;
    for p in pages {
        let resp = c
            .get(h.url(p))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(resp.status().as_u16(), 200, "{p}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html"));
    }
    // The session cookie does not open the JSON API (so a forged form cannot reach it).
    let api = c
        .get(h.url("/admin/status"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("api");
    assert_eq!(api.status().as_u16(), 401);

    // Forms without the CSRF token, or with another session's, are refused and change nothing.
    let page = c
        .get(h.url("/admin/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("page");
    let csrf = csrf_of(&page.text().await.expect("html"));
    let other = session(&h).await;
    for (p, fields) in &forms {
        for token in [None, Some("0000"), Some(csrf.as_str())] {
            let mut fields = fields.clone();
            if let Some(t) = token {
                fields.push(("csrf", t));
            }
            let resp = c
                .post(h.url(p))
                .header("Cookie", &other)
                .form(&fields)
                .send()
                .await
                .expect("form");
            assert_eq!(resp.status().as_u16(), 403, "{p} with csrf {token:?}");
        }
    }
    let (_, view) = send(
        &h,
        Method::GET,
        "/admin/channels",
        None,
        Some("Bearer admin-token-0123456789"),
    )
    .await;
    assert_eq!(view["source"], "file", "nothing was saved: {view}");

    // With it, they work.
    let resp = c
        .post(h.url("/admin/ui/reconcile"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("full", "on")])
        .send()
        .await
        .expect("reconcile");
    assert_eq!(
        (resp.status().as_u16(), &resp.headers()["location"]),
        (303, &"/admin/".parse().expect("hv"))
    );
    let resp = c
        .post(h.url("/admin/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 303);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap_or("")
        .contains("Max-Age=0"));
    h.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let h = Harness::start_with(Workers::Background, |t| {
        t.replace(
            "[server]",
            "[server]\npublic_url = \"https://relay.example.com\"",
        )
    })
    .await;
    let resp = sign_in(&h).await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    h.stop().await;
}

async fn cli(h: &Harness, command: AdminCommand) -> String {
    let target = Target::new(Some(&h.tool_settings()), Some(h.url("")), None).expect("target");
    let mut out = Vec::new();
    run(&target, &command, false, &mut out)
        .await
        .expect("admin command");
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn the_admin_commands_read_the_same_api() {
    let h = Harness::start(Workers::Background).await;
    h.shop.script([Scripted::status(422)]);
    h.deliver(h.erp.stock_move("CHAIR", STORES, 9.0).expect("move"))
        .await;
    wait_until(
        "a dead letter",
        || h.relay.store.depths().dead == 1,
        || format!("{:?}", h.relay.store.depths()),
    )
    .await;
    // Channels are pushed in name order: marketplace's push met the 422, web's went through.
    h.wait_level("web", "CHAIR", 9).await;

    let status = cli(&h, AdminCommand::Status).await;
    assert!(status.starts_with("shoprelay: NEEDS ATTENTION"), "{status}");
    assert!(status.contains("ERPNext   reachable"), "{status}");
    assert!(status.contains("dead letters  1"), "{status}");
    let channels = cli(&h, AdminCommand::Channels).await;
    assert!(
        channels.contains("web: Finished Goods - ACME, Stores - ACME")
            || channels.contains("web: Stores - ACME, Finished Goods - ACME"),
        "{channels}"
    );
    let dead = cli(&h, AdminCommand::DeadLetters).await;
    assert!(
        dead.contains("levels on marketplace: 1 SKU(s); shop answered 422"),
        "{dead}"
    );
    let sku = cli(&h, AdminCommand::Sku("CHAIR".into())).await;
    assert!(
        sku.contains("web              level 9; shop has 9"),
        "{sku}"
    );
    assert!(
        sku.contains("marketplace      level 7; 7 refused by the shop"),
        "{sku}"
    );
    let retried = cli(&h, AdminCommand::Retry(None)).await;
    assert!(retried.starts_with("retried: ["), "{retried}");
    h.wait_level("marketplace", "CHAIR", 7).await;
    assert_eq!(
        cli(&h, AdminCommand::DeadLetters).await.trim(),
        "no dead letters"
    );

    // The token comes from the configuration; without one the command says what to set.
    let no_token = Target::new(None, Some(h.url("")), None);
    assert!(no_token.is_err());
    let wrong = Target::new(None, Some(h.url("")), Some("wrong".into())).expect("target");
    let err = run(&wrong, &AdminCommand::Status, false, &mut Vec::new())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("401"), "{err}");
    h.stop().await;
}

async fn look_up_chair(h: &Harness) -> (u16, Value) {
    send(
        h,
        Method::GET,
        "/admin/skus/CHAIR",
        None,
        Some("Bearer admin-token-0123456789"),
    )
    .await
}

#[tokio::test]
async fn a_sku_lookup_while_erpnext_is_down_shows_the_stored_rows_and_says_why() {
    let h = Harness::start(Workers::Background).await;
    h.erp.set_rest_down(true);
    let (status, answer) = look_up_chair(&h).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["bins_source"], "stored", "{answer}");
    assert!(
        answer["erpnext_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{answer}"
    );
    h.erp.set_rest_down(false);
    let (status, answer) = look_up_chair(&h).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["bins_source"], "erpnext", "{answer}");
    h.stop().await;
}
