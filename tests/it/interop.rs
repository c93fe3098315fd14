//! Interop with the official Standard Webhooks library, as a shop team would use it: a Python
//! shop (tests/interop/python_shop.py) that verifies every push with `standardwebhooks`
//! `Webhook(secret).verify(body, headers)` and its default settings receives levels, a
//! shipment, its tracking and its cancellation from the real relay and verifies every request;
//! and `shoprelay shop check` passes against it.
//!
//! Needs python3 with `standardwebhooks` (`pip install standardwebhooks==1.1.0`; `.ci/run`
//! installs it). `SHOPRELAY_PYTHON` names another interpreter (a virtualenv's). Without one the
//! tests print why and pass without running, unless `SHOPRELAY_INTEROP_REQUIRED` is set. Run
//! them alone with `SHOPRELAY_PYTHON=target/ci-venv/bin/python cargo test --test it interop::`.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{ship_and_track, wait_until_async, Harness};
use serde_json::Value;
use shoprelay::cli::shop_check;
use shoprelay::config::Settings;
use shoprelay::startup::Workers;
use shoprelay_testkit::shop::SHOP_TOKEN;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/python_shop.py");

/// The interpreter to use, or why there is none (a panic when `SHOPRELAY_INTEROP_REQUIRED` is
/// set, as CI sets it: there the tests must run).
fn python() -> Result<String, String> {
    let found = find_python();
    if let (Err(why), Ok(_)) = (&found, std::env::var("SHOPRELAY_INTEROP_REQUIRED")) {
        panic!("SHOPRELAY_INTEROP_REQUIRED is set but {why}");
    }
    found
}

fn find_python() -> Result<String, String> {
    let python = std::env::var("SHOPRELAY_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(python),
        Ok(out) => Err(format!(
            "{python} cannot import standardwebhooks ({}); pip install standardwebhooks==1.1.0",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{python} does not run: {e}")),
    }
}

/// The Python shop, stopped when dropped.
pub struct PythonShop {
    child: Child,
    pub base_url: String,
    root: String,
}

impl PythonShop {
    /// Starts `python_shop.py serve` on a free loopback port; None (with the reason printed)
    /// when Python or the library is missing.
    pub fn start(token: &str, secret: &str) -> Option<Self> {
        let python = match python() {
            Ok(p) => p,
            Err(why) => {
                eprintln!("SKIP: the interop tests need python3 with standardwebhooks: {why}");
                return None;
            }
        };
        let mut child = Command::new(python)
            .args([SHOP, "serve", "--token", token, "--secret", secret])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python shop");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the Python shop says where it listens");
        let root = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Some(Self {
            child,
            base_url: format!("{root}/erp"),
            root,
        })
    }

    /// What the shop recorded: `requests` (method, path, verified, status, body), `levels`,
    /// `shipments`.
    pub async fn recorded(&self) -> Value {
        reqwest::get(format!("{}/_recorded", self.root))
            .await
            .expect("the Python shop answers")
            .json()
            .await
            .expect("JSON")
    }
}

impl Drop for PythonShop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Standard Webhooks headers the library's own `sign` gives `body` (how a shop signs an order
/// for the relay's `POST /webhooks/shop/orders`), or None when Python or the library is missing.
pub fn library_sign(secret: &str, body: &[u8]) -> Option<Vec<(String, String)>> {
    let python = python()
        .map_err(|why| {
            eprintln!("SKIP: the interop tests need python3 with standardwebhooks: {why}")
        })
        .ok()?;
    let mut child = Command::new(python)
        .args([SHOP, "sign", "--secret", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python_shop.py sign");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), body).expect("write body");
    let out = child.wait_with_output().expect("signed");
    assert!(out.status.success(), "python_shop.py sign failed");
    let headers: serde_json::Map<String, Value> =
        serde_json::from_slice(&out.stdout).expect("headers as JSON");
    Some(
        headers
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect(),
    )
}

/// The relay's configuration pointed at `base_url`, signing with [`SECRET`].
fn pointed_at(toml: String, base_url: &str) -> String {
    toml.lines()
        .map(|l| {
            if l.starts_with("base_url = ") {
                format!("base_url = \"{base_url}\"\nsigning_secret = \"{SECRET}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_shop_verifying_with_the_official_library_accepts_every_push_of_a_full_flow() {
    let Some(shop) = PythonShop::start(SHOP_TOKEN, SECRET) else {
        return;
    };
    let h = Harness::start_with(Workers::Background, |t| pointed_at(t, &shop.base_url)).await;
    let (_, dn) = ship_and_track(&h, None).await;
    let shipment = format!("SHOP-1/{dn}");
    wait_until_async("the tracking", || async {
        shop.recorded().await["shipments"][&shipment]["tracking_number"] == "1Z1"
    })
    .await;
    h.deliver(h.erp.cancel_delivery_note(&dn).expect("cancel"))
        .await;
    wait_until_async("the cancellation", || async {
        shop.recorded().await["shipments"][&shipment]["status"] == "cancelled"
    })
    .await;
    wait_until_async("the relay to be idle", || async {
        let d = h.relay.store.depths();
        d.outbox == 0 && d.shipment_outbox == 0 && d.dirty_docs == 0
    })
    .await;

    let recorded = shop.recorded().await;
    let requests = recorded["requests"].as_array().expect("requests");
    for r in requests {
        assert_eq!(r["verified"], true, "the library refused {r}");
        assert_eq!(r["status"], 200, "{r}");
    }
    let count = |method: &str, status: Option<&str>| {
        requests
            .iter()
            .filter(|r| r["method"] == method)
            .filter(|r| {
                status.is_none_or(|s| {
                    serde_json::from_str::<Value>(r["body"].as_str().unwrap_or_default())
                        .is_ok_and(|b| b["status"] == s)
                })
            })
            .count()
    };
    assert!(count("POST", None) >= 1, "levels: {recorded}");
    // One PUT or two: the untracked state may be superseded by the tracked one before it is sent.
    assert!(count("PUT", Some("shipped")) >= 1, "shipped: {recorded}");
    assert_eq!(count("PUT", Some("cancelled")), 1, "{recorded}");
    assert_eq!(
        requests.len(),
        count("POST", None) + count("PUT", None),
        "only POST and PUT"
    );
    assert!(
        recorded["levels"]["web/SKU 1/A"].is_u64(),
        "the shop holds the level: {recorded}"
    );
    h.stop().await;
}

#[tokio::test]
async fn shop_check_passes_against_the_library_based_shop() {
    let Some(shop) = PythonShop::start(SHOP_TOKEN, SECRET) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = pointed_at(
        shoprelay_testkit::relay_toml("http://127.0.0.1:9", "unused", dir.path()),
        &shop.base_url,
    );
    let settings = Settings::from_toml(&toml, &[]).expect("settings");
    let mut out = Vec::new();
    let ok = shop_check(
        &settings,
        "shoprelay-check",
        &["SHOPRELAY-CHECK-1".into(), "SHOPRELAY CHECK/2".into()],
        &mut out,
    )
    .await
    .expect("check runs");
    let text = String::from_utf8_lossy(&out);
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL") && !text.contains("SKIP"), "{text}");
    let recorded = shop.recorded().await;
    let refused: Vec<&Value> = recorded["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["verified"] == false)
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "only the deliberately mis-signed request fails verification: {refused:?}"
    );
}

#[test]
fn an_order_signed_by_the_library_verifies_with_the_relays_verifier() {
    let body = br#"{"order_id": "SHOP-10042", "channel": "web"}"#;
    let Some(headers) = library_sign(SECRET, body) else {
        return;
    };
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let secrets = [shoprelay::config::Secret::new(SECRET)];
    let verify = |body: &[u8]| {
        shoprelay::inbound::signature::verify_standard(
            &secrets,
            get("webhook-id"),
            get("webhook-timestamp"),
            get("webhook-signature"),
            body,
            now,
            300,
            8,
        )
    };
    assert!(verify(body).is_ok(), "{headers:?}");
    assert!(verify(br#"{"order_id": "SHOP-10043", "channel": "web"}"#).is_err());
}
