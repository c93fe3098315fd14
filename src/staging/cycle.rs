//! What one run of the cycle holds: its clients (ERPNext, the shop, the relay's own API), the
//! names and money of the test order, what the setup learned about the site (company,
//! currency, country), what the run created (for the cleanup), and the reads several steps
//! share (the test item's Bins, the site's shoprelay webhooks and their delivery log).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::diagnose::{dead_letters_about, webhook_finding, Hook, HookFinding, LogRow};
use super::fields::{rows, text};
use super::order::{utc_date_and_time, Money, Names};
use super::{relay_base, StagingError, DEFAULT_EMAIL, PREFIX};
use crate::availability::Channel;
use crate::config::{Secret, Settings};
use crate::erpnext::{ErpClient, ErpError};
use crate::model::BinRow;
use crate::shop::ShopClient;

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A run id: the UTC time and three random letters (`20261129-132501-k3q`).
pub(super) fn run_id() -> String {
    let (_, time) = utc_date_and_time(now_secs());
    let stamp: String = time.chars().filter(char::is_ascii_digit).collect();
    let suffix: String = (0..3).map(|_| fastrand::lowercase()).collect();
    format!("{}-{}-{suffix}", &stamp[..8], &stamp[8..])
}

/// What the run created, for the cleanup.
#[derive(Debug, Default)]
pub(super) struct Created {
    pub(super) item: Option<String>,
    pub(super) stock_entry: Option<String>,
    pub(super) sales_order: Option<String>,
    pub(super) delivery_note: Option<String>,
    pub(super) shipment: Option<String>,
}

impl Created {
    pub(super) fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("Item", &self.item),
            ("Stock Entry", &self.stock_entry),
            ("Sales Order", &self.sales_order),
            ("Delivery Note", &self.delivery_note),
            ("Shipment", &self.shipment),
        ]
        .iter()
        .filter_map(|(dt, n)| n.as_ref().map(|n| format!("{dt} {n}")))
        .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The relay's HTTP API as the test uses it.
pub(super) struct RelayApi {
    pub(super) base: String,
    pub(super) admin_token: Option<Secret>,
    pub(super) http: reqwest::Client,
}

impl RelayApi {
    /// `GET {path}` with the admin token; None without a token or on any failure.
    pub(super) async fn admin(&self, path: &str) -> Option<(u16, Value)> {
        let token = self.admin_token.as_ref()?;
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token.expose())
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// The relay's dead letters mentioning `needle`, as `<status> <answer>` lines.
    pub(super) async fn dead_letters_about(&self, needle: &str) -> Vec<String> {
        match self.admin("/admin/dead-letters").await {
            Some((200, v)) => dead_letters_about(&v, needle),
            _ => Vec::new(),
        }
    }
}

/// One run of the cycle: what every step reads and what the steps learn and create.
pub(super) struct Cycle<'a> {
    pub(super) settings: &'a Settings,
    pub(super) erp: ErpClient,
    pub(super) shop: ShopClient,
    pub(super) relay: RelayApi,
    pub(super) names: Names,
    pub(super) money: Money,
    pub(super) channel: Channel,
    pub(super) warehouse: String,
    pub(super) email: String,
    pub(super) carrier: String,
    pub(super) timeout: Duration,
    pub(super) today: String,
    pub(super) company: String,
    pub(super) currency: String,
    pub(super) country_code: String,
    pub(super) created: Created,
    /// The Sales Order as read in step 2.
    pub(super) sales_order: Option<Value>,
}

impl<'a> Cycle<'a> {
    pub(super) fn new(settings: &'a Settings) -> Result<Self, StagingError> {
        let st = &settings.staging_test;
        let channel = match &st.channel {
            Some(name) => settings
                .channels
                .iter()
                .find(|c| &c.name == name)
                .cloned()
                .ok_or_else(|| {
                    StagingError::Config(format!(
                        "`staging_test.channel` `{name}` is not one of the [[channels]]"
                    ))
                })?,
            None => settings
                .channels
                .first()
                .cloned()
                .ok_or_else(|| StagingError::Config("no [[channels]] configured".into()))?,
        };
        let warehouse = st
            .warehouse
            .clone()
            .or_else(|| channel.warehouses.first().cloned())
            .ok_or_else(|| {
                StagingError::Config(format!("channel `{}` has no warehouse", channel.name))
            })?;
        let relay = RelayApi {
            base: relay_base(settings),
            admin_token: settings.server.admin_token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(settings.shop.timeout_secs.max(5)))
                .user_agent(concat!(
                    "shoprelay-staging-test/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .map_err(StagingError::Relay)?,
        };
        let (today, _) = utc_date_and_time(now_secs());
        Ok(Self {
            settings,
            erp: ErpClient::new(&settings.erpnext).map_err(StagingError::Erp)?,
            shop: ShopClient::new(&settings.shop).map_err(StagingError::Shop)?,
            relay,
            names: Names::new(PREFIX, &run_id()),
            money: Money::TEST,
            channel,
            warehouse,
            email: st
                .customer_email
                .clone()
                .unwrap_or_else(|| DEFAULT_EMAIL.to_owned()),
            carrier: st
                .carrier
                .clone()
                .unwrap_or_else(|| "shoprelay-test".into()),
            timeout: Duration::from_secs(st.step_timeout_secs.unwrap_or(60)),
            today,
            company: String::new(),
            currency: String::new(),
            country_code: String::new(),
            created: Created::default(),
            sales_order: None,
        })
    }

    /// The warehouse the Sales Order's line reserves in.
    pub(super) fn order_warehouse(&self) -> String {
        self.sales_order
            .as_ref()
            .and_then(|so| {
                rows(so, "items")
                    .iter()
                    .find(|r| text(r, "item_code") == self.names.item_code)
                    .map(|r| text(r, "warehouse"))
            })
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| self.warehouse.clone())
    }

    pub(super) async fn bins(&self) -> Result<Vec<BinRow>, ErpError> {
        self.erp
            .list_page::<BinRow>(
                "Bin",
                &BinRow::FIELDS,
                &json!([["item_code", "=", self.names.item_code]]),
                "name asc",
                0,
                100,
            )
            .await
    }

    /// Where the site's webhooks must point: `server.public_url` (what `erpnext setup` used);
    /// empty (not checked) when it is not configured.
    pub(super) fn hooks_base(&self) -> &str {
        self.settings
            .server
            .public_url
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
    }

    /// The shoprelay webhooks of the site, or why they cannot be read.
    pub(super) async fn hooks(&self) -> Result<Vec<Hook>, String> {
        self.erp
            .list_page::<Hook>(
                "Webhook",
                &[
                    "name",
                    "webhook_doctype",
                    "webhook_docevent",
                    "enabled",
                    "request_url",
                ],
                &json!([["name", "like", "shoprelay %"]]),
                "name asc",
                0,
                0,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// The Webhook Request Log rows for `documents`; None when it cannot be read.
    pub(super) async fn request_log(&self, documents: &[&str]) -> Option<Vec<LogRow>> {
        self.erp
            .list_page::<LogRow>(
                "Webhook Request Log",
                &["webhook", "reference_document", "error", "response"],
                &json!([["reference_document", "in", documents]]),
                "creation asc",
                0,
                0,
            )
            .await
            .ok()
    }

    pub(super) async fn finding(
        &self,
        doctype: &str,
        event: &str,
        document: Option<&str>,
    ) -> HookFinding {
        let hooks = self.hooks().await;
        let log = match document {
            Some(d) => self.request_log(&[d]).await,
            None => None,
        };
        webhook_finding(
            hooks.as_deref().map_err(String::as_str),
            log.as_deref(),
            doctype,
            event,
            document,
            self.hooks_base(),
        )
    }
}
