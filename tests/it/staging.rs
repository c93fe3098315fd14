//! `shoprelay staging-test` against the ERPNext emulator (behind its REST front, whose worker
//! delivers webhooks as a site's does) and the reference shop, with the real relay between
//! them: a passing cycle, a disabled Delivery Note webhook, a shop that refuses pushes, and the
//! production guard.

use serde_json::json;
use shoprelay::cli::erpnext_setup;
use shoprelay::config::Settings;
use shoprelay::staging::report::{Outcome, Report};
use shoprelay::staging::{run, Options, StagingError};
use shoprelay::startup::{Application, Workers};
use shoprelay_testkit::erp::{API_KEY, API_SECRET};
use shoprelay_testkit::erp_front::ErpFront;
use shoprelay_testkit::shop::MockOptions;
use shoprelay_testkit::{relay_toml, ErpEmulator, Scripted, ShopMock};

const ORDER_SECRET: &str = "whsec_c3RhZ2luZy10ZXN0LW9yZGVyLXNlY3JldA==";

struct Stage {
    front: ErpFront,
    shop: ShopMock,
    handle: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The configuration a user would give `staging-test` (the relay's, with public_url).
    toml: String,
    _dir: tempfile::TempDir,
}

impl Stage {
    /// A fresh emulated site (no webhooks yet), the reference shop, and the relay, wired with
    /// `erpnext setup` as a user would.
    async fn start() -> Self {
        let erp = ErpEmulator::start_bare().await.expect("emulator");
        let front = ErpFront::start(erp, &["Stores - ACME", "Finished Goods - ACME"])
            .await
            .expect("front");
        let shop = ShopMock::start_with(MockOptions::default())
            .await
            .expect("shop");
        let dir = tempfile::tempdir().expect("tempdir");
        let base = format!(
            "{}\n[orders]\nshipping_account = \"Freight and Forwarding Charges - ACME\"\n",
            relay_toml(&front.url(), &shop.base_url(), &dir.path().join("data")).replace(
                "max_batch = 100",
                &format!("max_batch = 100\nwebhook_secret = \"{ORDER_SECRET}\""),
            )
        );
        let settings = Settings::from_toml(&base, &[]).expect("relay settings");
        let app = Application::build(settings, Workers::Background)
            .await
            .expect("relay");
        let relay_url = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let join = tokio::spawn(app.run_until_stopped());
        front.erp().set_relay(&relay_url);
        let toml = format!(
            "{}\n[staging_test]\nallowed_sites = [\"127.0.0.1\"]\npickup_address = \"ACME Depot-Shipping\"\nstep_timeout_secs = 10\n",
            base.replace("[server]", &format!("[server]\npublic_url = \"{relay_url}\""))
        );
        let stage = Self {
            front,
            shop,
            handle,
            join,
            toml,
            _dir: dir,
        };
        let mut out = Vec::new();
        erpnext_setup(&stage.settings(), false, false, &mut out)
            .await
            .expect("erpnext setup");
        stage
    }

    fn settings(&self) -> Settings {
        Settings::from_toml(&self.toml, &[]).expect("staging settings")
    }

    async fn run(&self, options: Options) -> (Result<Report, StagingError>, String) {
        let mut out = Vec::new();
        let r = run(&self.settings(), &options, &mut out).await;
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    /// Changes a Webhook document over REST, as an admin would in ERPNext's form.
    async fn edit_webhook(&self, name: &str, changes: serde_json::Value) {
        let resp = reqwest::Client::new()
            .put(format!(
                "{}/api/resource/Webhook/{}",
                self.front.url(),
                name.replace(' ', "%20")
            ))
            .header("Authorization", format!("token {API_KEY}:{API_SECRET}"))
            .json(&changes)
            .send()
            .await
            .expect("PUT Webhook");
        assert_eq!(resp.status().as_u16(), 200);
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.join.await;
        self.front.stop().await;
        self.shop.stop().await;
    }
}

fn cause(report: &Report, step: u8) -> String {
    match report.step(step).map(|l| &l.outcome) {
        Some(Outcome::Fail { cause, found, .. }) => format!("{found} / {cause}"),
        other => panic!("step {step} did not fail: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cycle_passes_and_cleans_up_after_itself() {
    let stage = Stage::start().await;
    let (report, out) = stage.run(Options::default()).await;
    eprintln!("{out}");
    let report = report.expect("ran");
    assert!(report.passed(), "{out}");
    for n in 1..=6 {
        assert!(
            matches!(report.step(n).map(|l| &l.outcome), Some(Outcome::Pass(_))),
            "step {n} should pass: {out}"
        );
    }
    assert!(out.contains("verdict: PASS (6 passed, 0 skipped)"), "{out}");
    // The shop saw the order shipped with the test tracking number, and after the cleanup the
    // test stock is gone again (the receipt cancelled, the order and the note cancelled).
    let item = out
        .split_whitespace()
        .find(|w| w.starts_with("SRSTAGE-") && !w.ends_with("-ORDER"))
        .expect("the test item is named")
        .to_owned();
    let bin = stage.front.erp().bin(&item, "Stores - ACME").expect("bin");
    assert_eq!(bin["actual_qty"], 0.0, "{bin}");
    assert_eq!(bin["reserved_qty"], 0.0, "{bin}");
    assert!(
        out.contains("cancelled") && out.contains("disabled"),
        "{out}"
    );
    stage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_leaves_the_documents_for_inspection() {
    let stage = Stage::start().await;
    let (report, out) = stage
        .run(Options {
            keep: true,
            ..Options::default()
        })
        .await;
    assert!(report.expect("ran").passed(), "{out}");
    assert!(out.contains("--keep: left in place"), "{out}");
    assert!(
        stage
            .shop
            .shipments()
            .values()
            .any(|s| s["status"] == "shipped"),
        "the shipment stays in the shop: {out}"
    );
    stage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_delivery_note_webhook_fails_step_6_naming_it() {
    let stage = Stage::start().await;
    stage
        .edit_webhook("shoprelay Delivery Note on_submit", json!({"enabled": 0}))
        .await;
    let (report, out) = stage.run(Options::default()).await;
    let report = report.expect("ran");
    assert!(!report.passed(), "{out}");
    let why = cause(&report, 6);
    assert!(
        why.contains("`shoprelay Delivery Note on_submit` is disabled"),
        "{out}"
    );
    for n in 1..=5 {
        assert!(
            !report.step(n).expect("line").failed(),
            "only step 6 fails: {out}"
        );
    }
    assert!(out.contains("verdict: FAIL (1 failed: step 6;"), "{out}");
    stage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_that_refuses_pushes_fails_step_4_with_its_answer() {
    let stage = Stage::start().await;
    stage.shop.refuse_pushes(Some(Scripted {
        status: 422,
        headers: Vec::new(),
        body: json!({"error": "this SKU is not sold here"}).to_string(),
    }));
    let (report, out) = stage.run(Options::default()).await;
    let report = report.expect("ran");
    let why = cause(&report, 4);
    assert!(
        why.contains("the shop refused the relay's push: 422")
            && why.contains("this SKU is not sold here"),
        "{out}"
    );
    stage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_worker_is_stopped_fails_step_4_saying_so() {
    let stage = Stage::start().await;
    stage.front.pause_worker(true);
    let (report, out) = stage.run(Options::default()).await;
    let report = report.expect("ran");
    let why = cause(&report, 4);
    assert!(
        why.contains("ERPNext has not sent `shoprelay ") && why.contains("background worker"),
        "{out}"
    );
    stage.front.pause_worker(false);
    stage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_a_site_not_listed_and_changes_nothing() {
    let stage = Stage::start().await;
    let before = stage.front.erp().rest_requests();
    let production = stage.toml.replace(
        "allowed_sites = [\"127.0.0.1\"]",
        "allowed_sites = [\"erp-staging.example.com\"]",
    );
    let settings = Settings::from_toml(&production, &[]).expect("settings");
    let mut out = Vec::new();
    let err = run(&settings, &Options::default(), &mut out)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1")
            && text.contains("erp-staging.example.com")
            && text.contains("--i-know-this-is-production"),
        "{text}"
    );
    assert_eq!(
        stage.front.erp().rest_requests(),
        before,
        "nothing was asked of ERPNext"
    );
    // Saying so runs it, with a warning.
    let (report, out) = {
        let mut out = Vec::new();
        let r = run(
            &settings,
            &Options {
                production_ok: true,
                ..Options::default()
            },
            &mut out,
        )
        .await;
        (r, String::from_utf8_lossy(&out).into_owned())
    };
    assert!(report.expect("ran").passed(), "{out}");
    assert!(out.starts_with("WARNING: "), "{out}");
    stage.stop().await;
}

#[test]
fn the_command_refuses_production_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("staging.toml");
    std::fs::write(
        &path,
        r#"[erpnext]
url = "https://erp.example.com"
api_key = "k"
api_secret = "s"
webhook_secrets = ["w"]
[shop]
base_url = "https://shop.example.com/erp"
token = "t"
[[channels]]
name = "web"
warehouses = ["Stores - ACME"]
[staging_test]
allowed_sites = ["erp-staging.example.com"]
"#,
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoprelay"))
        .args(["staging-test", "--config"])
        .arg(&path)
        .output()
        .expect("run shoprelay");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to run against ERPNext at erp.example.com"),
        "{err}"
    );
}
