//! A real ERPNext 15 site for end-to-end runs (the lab). The one place its settings are read
//! from the environment ([`env::LabEnv`]: `ERPNEXT_URL`, `ERPNEXT_API_KEY`, `ERPNEXT_API_SECRET`,
//! optionally `ERPNEXT_COMPANY`, `ERPNEXT_WAREHOUSE`, `ERPNEXT_CUSTOMER`), with the one skip
//! message ([`env::env_or_skip`]); REST helpers to create items and vouchers, a relay with a recording
//! shop in front of it, and (in [`orders`]) the order worker's context and fixtures. Without
//! `ERPNEXT_URL` the tests that use it say so and pass without doing anything. The lab
//! benchmarks include [`env`] and [`orders`].
#![allow(dead_code)]

pub mod env;
pub mod orders;

use env::env_or_skip;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoprelay::config::Settings;
use shoprelay::startup::{Application, Relay, Workers};
use shoprelay_testkit::ShopMock;

pub struct Lab {
    pub url: String,
    key: String,
    secret: String,
    pub company: String,
    pub warehouse: String,
    http: reqwest::Client,
}

fn encode(s: &str) -> String {
    shoprelay::http::encode_segment(s)
}

/// A stock item named `code`.
fn item_doc(code: &str) -> Value {
    json!({"item_code": code, "item_name": code, "item_group": "All Item Groups",
           "stock_uom": "Nos", "is_stock_item": 1})
}

impl Lab {
    /// The site from the environment, or None (printing why) when no lab is configured.
    pub fn from_env(test: &str) -> Option<Self> {
        let env = env_or_skip(test)?;
        Some(Self {
            url: env.url,
            key: env.key,
            secret: env.secret,
            company: env.company,
            warehouse: env.warehouse,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        })
    }

    fn auth(&self) -> String {
        format!("token {}:{}", self.key, self.secret)
    }

    async fn answer(resp: reqwest::Response, what: &str) -> Value {
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "{what}: {status} {text}");
        serde_json::from_str(&text).expect("JSON")
    }

    pub async fn get(&self, path_and_query: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.url))
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("GET");
        Self::answer(resp, path_and_query).await
    }

    async fn send_json(&self, req: reqwest::RequestBuilder, body: &Value, what: &str) -> Value {
        let resp = req
            .header("Authorization", self.auth())
            .json(body)
            .send()
            .await
            .expect(what);
        Self::answer(resp, what).await
    }

    /// `POST /api/resource/{doctype}`; returns the document.
    pub async fn insert(&self, doctype: &str, body: Value) -> Value {
        let req = self
            .http
            .post(format!("{}/api/resource/{}", self.url, encode(doctype)));
        self.send_json(req, &body, doctype).await["data"].clone()
    }

    /// `PUT /api/resource/{doctype}/{name}`; returns the document.
    pub async fn update(&self, doctype: &str, name: &str, body: Value) -> Value {
        let req = self.http.put(format!(
            "{}/api/resource/{}/{}",
            self.url,
            encode(doctype),
            encode(name)
        ));
        self.send_json(req, &body, doctype).await["data"].clone()
    }

    /// Submits a saved document.
    pub async fn submit(&self, doctype: &str, name: &str) -> Value {
        self.update(doctype, name, json!({"docstatus": 1})).await
    }

    /// `frappe.client.cancel`.
    pub async fn cancel(&self, doctype: &str, name: &str) {
        let req = self
            .http
            .post(format!("{}/api/method/frappe.client.cancel", self.url));
        self.send_json(req, &json!({"doctype": doctype, "name": name}), "cancel")
            .await;
    }

    /// The System Settings time zone.
    pub async fn time_zone(&self) -> String {
        self.get("/api/resource/System%20Settings/System%20Settings")
            .await["data"]["time_zone"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Sets the System Settings time zone, as an admin does in the form.
    pub async fn set_time_zone(&self, zone: &str) {
        self.update(
            "System Settings",
            "System Settings",
            json!({"time_zone": zone}),
        )
        .await;
        assert_eq!(self.time_zone().await, zone);
    }

    /// A stock item.
    pub async fn item(&self, code: &str) {
        self.insert("Item", item_doc(code)).await;
    }

    /// Inserts and submits a document; returns its name.
    pub async fn submitted(&self, doctype: &str, body: Value) -> String {
        let doc = self.insert(doctype, body).await;
        let name = doc["name"].as_str().expect("name").to_owned();
        self.submit(doctype, &name).await;
        name
    }

    /// Webhook Request Log rows of shoprelay's webhooks matching `more` filters.
    async fn request_log_count(&self, more: &[Value]) -> u64 {
        let mut filters = vec![json!(["webhook", "like", "shoprelay %"])];
        filters.extend(more.iter().cloned());
        self.get(&format!(
            "/api/method/frappe.client.get_count?doctype=Webhook%20Request%20Log&filters={}",
            encode(&Value::Array(filters).to_string())
        ))
        .await["message"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Failed deliveries of shoprelay's webhooks (Request Log rows with an error) so far.
    pub async fn failed_jobs(&self) -> u64 {
        self.request_log_count(&[json!(["error", "is", "set"])])
            .await
    }

    /// A submitted Material Receipt of `lines` (item, qty) into `warehouse`; returns its name and
    /// when its submit returned.
    pub async fn receipt(&self, warehouse: &str, lines: &[(String, f64)]) -> (String, Instant) {
        let items: Vec<Value> = lines
            .iter()
            .map(|(i, q)| json!({"item_code": i, "qty": q, "t_warehouse": warehouse, "basic_rate": 10.0}))
            .collect();
        let name = self
            .submitted(
                "Stock Entry",
                json!({"stock_entry_type": "Material Receipt", "purpose": "Material Receipt",
                       "company": self.company, "items": items}),
            )
            .await;
        (name, Instant::now())
    }

    /// Stock items, up to 200 a request (`frappe.client.insert_many`; each is inserted as one
    /// `insert()` would, its webhooks included).
    pub async fn items(&self, codes: &[String]) {
        for chunk in codes.chunks(200) {
            let docs: Vec<Value> = chunk
                .iter()
                .map(|c| {
                    let mut doc = item_doc(c);
                    doc["doctype"] = json!("Item");
                    doc
                })
                .collect();
            let req = self
                .http
                .post(format!("{}/api/method/frappe.client.insert_many", self.url));
            self.send_json(req, &json!({"docs": docs}), "insert_many")
                .await;
        }
    }

    /// Webhook jobs the site ran for shoprelay's webhooks so far (one Request Log row each).
    pub async fn jobs_so_far(&self) -> u64 {
        self.request_log_count(&[]).await
    }

    /// Waits until the count of jobs has not moved for 5 s (the site's worker is done), at most
    /// 240 s; returns how many ran since `since`.
    pub async fn jobs_settled(&self, since: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(240);
        let (mut last, mut still) = (self.jobs_so_far().await, Instant::now());
        while Instant::now() < deadline && still.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.jobs_so_far().await;
            if now != last {
                (last, still) = (now, Instant::now());
            }
        }
        last - since
    }

    /// The Bin's `actual_qty` of (item, warehouse).
    pub async fn actual_qty(&self, item: &str, warehouse: &str) -> f64 {
        let filters = json!([["item_code", "=", item], ["warehouse", "=", warehouse]]).to_string();
        let v = self
            .get(&format!(
                "/api/resource/Bin?fields=%5B%22actual_qty%22%5D&filters={}",
                encode(&filters)
            ))
            .await;
        v["data"][0]["actual_qty"].as_f64().unwrap_or(0.0)
    }

    /// Disables every `shoprelay ` webhook (so the site's worker stops calling a relay that is
    /// gone).
    pub async fn disable_webhooks(&self) {
        let filters = json!([["name", "like", "shoprelay %"], ["enabled", "=", 1]]).to_string();
        let list = self
            .get(&format!(
                "/api/resource/Webhook?limit_page_length=0&filters={}",
                encode(&filters)
            ))
            .await;
        for w in list["data"].as_array().cloned().unwrap_or_default() {
            if let Some(name) = w["name"].as_str() {
                self.update("Webhook", name, json!({"enabled": 0})).await;
            }
        }
    }

    /// A unique prefix for this run's documents.
    pub fn prefix(tag: &str) -> String {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("{tag}-{}", ms % 100_000_000)
    }

    /// The relay's configuration for this site: one channel `web` on the lab's warehouse.
    pub fn relay_toml(&self, shop_url: &str, data: &std::path::Path, extra: &str) -> String {
        format!(
            r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

[erpnext]
url = "{url}"
api_key = "{key}"
api_secret = "{secret}"
webhook_secrets = ["lab-webhook-secret"]
{extra}

[shop]
base_url = "{shop_url}"
token = "{token}"
retry_schedule_secs = [0, 0.05, 0.5, 2]

[[channels]]
name = "web"
warehouses = ["{wh}"]
policy = "actual"
"#,
            data = data.display(),
            url = self.url,
            key = self.key,
            secret = self.secret,
            wh = self.warehouse,
            token = shoprelay_testkit::shop::SHOP_TOKEN,
        )
    }
}

/// A relay between the lab and a recording shop.
pub struct LabRelay {
    pub relay: Relay,
    pub shop: ShopMock,
    pub port: u16,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LabRelay {
    pub async fn start(lab: &Lab, workers: Workers, extra: &str) -> Self {
        let shop = ShopMock::start().await.expect("shop");
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = lab.relay_toml(&shop.base_url(), &dir.path().join("data"), extra);
        let settings = Settings::from_toml(&toml, &[]).expect("settings");
        let app = Application::build(settings, workers).await.expect("build");
        let port = app.port();
        let relay = app.relay();
        let handle = app.handle();
        let join = tokio::spawn(app.run_until_stopped());
        let with_url = toml.replace(
            "[server]",
            &format!("[server]\npublic_url = \"http://127.0.0.1:{port}\""),
        );
        let settings = Settings::from_toml(&with_url, &[]).expect("settings");
        Self {
            relay,
            shop,
            port,
            settings,
            handle,
            join,
            _dir: dir,
        }
    }

    /// Installs the shipped webhooks on the site, pointing at this relay.
    pub async fn install_webhooks(&self) {
        let mut out = Vec::new();
        shoprelay::cli::erpnext_setup(&self.settings, false, true, &mut out)
            .await
            .unwrap_or_else(|e| panic!("setup: {e}: {}", String::from_utf8_lossy(&out)));
    }

    /// Waits until the shop shows `value` for `sku` on `web`; returns when it did.
    pub async fn wait_level(&self, sku: &str, value: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.shop.level("web", sku) == Some(value) {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Steps the processor and the pusher until both are idle (manual mode).
    pub async fn settle(&self) {
        crate::common::settle(&self.relay).await;
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.join.await;
        self.shop.stop().await;
    }
}
