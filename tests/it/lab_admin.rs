//! The admin API and pages against a real ERPNext (read only: no webhook is installed, nothing
//! is written to ERPNext). Skipped, saying why, unless `ERPNEXT_URL`, `ERPNEXT_API_KEY` and
//! `ERPNEXT_API_SECRET` are set (and `ERPNEXT_WAREHOUSE`, default `Stores - ACME`):
//!
//! ```text
//! set -a; source $LAB/lab.env; set +a; cargo test --test it lab_admin:: -- --nocapture
//! ```

use serde_json::Value;
use shoprelay::config::Settings;
use shoprelay::startup::{Application, Workers};
use shoprelay_testkit::ShopMock;

fn lab() -> Option<(String, String, String, String)> {
    let env = crate::lab::env::env_or_skip("lab_admin")?;
    Some((env.url, env.key, env.secret, env.warehouse))
}

#[tokio::test]
async fn the_status_sku_lookup_and_warehouse_tree_show_a_real_erpnext() {
    let Some((url, key, secret, warehouse)) = lab() else {
        return;
    };
    let shop = ShopMock::start().await.expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
admin_token = "lab-admin-token-0123456789"

[erpnext]
url = "{url}"
api_key = "{key}"
api_secret = "{secret}"
webhook_secrets = ["unused-in-this-test"]

[shop]
base_url = "{shop}"
token = "shop-token"

[[channels]]
name = "web"
warehouses = ["{warehouse}"]
"#,
        data = dir.path().join("data").display(),
        shop = shop.base_url(),
    );
    let settings = Settings::from_toml(&toml, &[]).expect("settings");
    let app = Application::build(settings, Workers::Background)
        .await
        .expect("build");
    let port = app.port();
    let handle = app.handle();
    let run = tokio::spawn(app.run_until_stopped());
    let api = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth("lab-admin-token-0123456789")
    };

    let status: Value = api("/admin/status")
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    println!("ERPNext: {}", status["erpnext"]);
    assert_eq!(status["erpnext"]["reachable"], true, "{status}");

    // An item stocked in the warehouse, as ERPNext's REST API lists it.
    let erp = reqwest::Client::new();
    let bins: Value = erp
        .get(format!("{url}/api/resource/Bin"))
        .header("Authorization", format!("token {key}:{secret}"))
        .query(&[
            ("fields", r#"["item_code","actual_qty"]"#.to_string()),
            (
                "filters",
                serde_json::json!([["warehouse", "=", warehouse]]).to_string(),
            ),
            ("limit_page_length", "1".to_string()),
        ])
        .send()
        .await
        .expect("bins")
        .json()
        .await
        .expect("json");
    let Some(item) = bins["data"][0]["item_code"].as_str() else {
        println!("no Bin in {warehouse}: the SKU lookup is not tried");
        handle.stop(true).await;
        let _ = run.await;
        return;
    };
    let report: Value = api(&format!("/admin/skus/{}", item.replace(' ', "%20")))
        .send()
        .await
        .expect("sku")
        .json()
        .await
        .expect("json");
    println!("SKU {item}: {report}");
    assert_eq!(report["bins_source"], "erpnext", "{report}");
    let row = report["bins"]
        .as_array()
        .and_then(|b| b.iter().find(|r| r["warehouse"] == warehouse.as_str()))
        .unwrap_or_else(|| panic!("no Bin of {warehouse} in {report}"));
    assert_eq!(row["actual_qty"], bins["data"][0]["actual_qty"], "{report}");
    assert_eq!(row["feeds"], serde_json::json!(["web"]));

    // The channel page offers the real Warehouse tree, groups included.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http
        .post(format!("http://127.0.0.1:{port}/admin/login"))
        .form(&[("token", "lab-admin-token-0123456789")])
        .send()
        .await
        .expect("login");
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie");
    let page = http
        .get(format!("http://127.0.0.1:{port}/admin/ui/channels"))
        .header("Cookie", cookie.split(';').next().expect("pair"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains(&format!("value=\"{warehouse}\" selected")),
        "{page}"
    );
    assert!(
        page.contains("(group: all below)"),
        "no group warehouse offered"
    );
    println!(
        "channel page offers {} warehouses",
        page.matches("<option value=").count() - 3
    );
    handle.stop(true).await;
    let _ = run.await;
    shop.stop().await;
}
