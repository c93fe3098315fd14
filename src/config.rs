//! Configuration: the TOML file (shoprelay.example.toml) plus `SHOPRELAY_*` environment overrides, validated once into typed settings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::availability::Channel;

mod secret_files;

/// A secret value: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used (signing, an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why the configuration could not be loaded; names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The parser's message names the key and the line; it is the message, not a source.
    #[error("configuration file {path} is not valid TOML for shoprelay: {error}")]
    Parse {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("cannot read SHOPRELAY_* environment variables")]
    Env(#[from] envy::Error),
    /// A `SHOPRELAY_*_FILE` variable names a file that cannot be read.
    #[error("{var} names {path}, which cannot be read", path = path.display())]
    SecretFile {
        var: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: `{key}` {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<Secret>,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub workers: usize,
    /// How long a delivery's body hash is remembered for de-duplication.
    pub dedup_window_secs: u64,
    /// How long a request body may take to arrive once its head is in (408 after).
    pub body_timeout_secs: u64,
    /// Bytes of request bodies held at once, summed over all requests being read; a body
    /// that would pass it is refused with 503 (so slow senders cannot fill memory).
    pub max_body_bytes_in_flight: usize,
    /// Entries (`v1,...`) read from a `webhook-signature` header; more are refused with 400.
    pub max_signature_entries: usize,
    /// Wrong admin tokens (sign-in form or bearer) a client address may try at once, before
    /// each further attempt waits for `admin_failure_refill_secs`.
    pub admin_failures_burst: u32,
    /// Seconds after which a client address may try one more wrong admin token.
    pub admin_failure_refill_secs: u64,
}

/// The shortest admin token the relay starts with.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone)]
pub struct ErpnextSettings {
    pub url: reqwest::Url,
    pub api_key: Secret,
    pub api_secret: Secret,
    pub webhook_secrets: Vec<Secret>,
    pub order_id_field: String,
    pub reconcile_interval_secs: u64,
    pub reconcile_overlap_secs: u64,
    /// How often a reconcile pass reads every Bin (0: only when asked).
    pub full_reconcile_interval_secs: u64,
    pub timeout_secs: u64,
    /// Rows asked for per REST page when reading Bins back.
    pub page_size: usize,
    /// Items read back per REST request.
    pub readback_batch: usize,
    /// An Item field holding the shop SKU (e.g. a custom field `shop_sku`); None: the item code.
    pub sku_field: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ShopSettings {
    pub base_url: reqwest::Url,
    pub token: Secret,
    /// Standard Webhooks secrets; every push is signed with each (several while rotating).
    pub signing_secrets: Vec<Secret>,
    /// Verify orders the shop sends in (Standard Webhooks); several while rotating. Empty: the
    /// order endpoint refuses every order.
    pub webhook_secrets: Vec<Secret>,
    pub max_batch: usize,
    pub timeout_secs: u64,
    /// Bytes of a shop answer read (an error's explanation); the rest is dropped unread.
    pub max_answer_bytes: usize,
    /// The delay before each attempt of a push, the first at once: a push is tried
    /// `retry_schedule.len()` times, then dead-lettered.
    pub retry_schedule: Vec<std::time::Duration>,
}

/// The default retry schedule (seconds), like Svix's: at once, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h; about 27.6 hours from the first attempt to the last.
pub const DEFAULT_RETRY_SCHEDULE_SECS: [f64; 8] =
    [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0];
/// `[staging_test]`: what `shoprelay staging-test` may run against and what it uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingTestSettings {
    /// ERPNext hosts (`erp-staging.example.com`, `*.staging.example.com`, or a URL) the cycle
    /// may run against; anything else is treated as production and refused.
    #[serde(default)]
    pub allowed_sites: Vec<String>,
    /// The channel the test order is placed in (default: the first channel).
    pub channel: Option<String>,
    /// The warehouse the test stock is received into (default: the channel's first warehouse).
    pub warehouse: Option<String>,
    /// The test customer's email (default `shoprelay-staging-test@example.com`).
    pub customer_email: Option<String>,
    /// The carrier named on the test Delivery Note and Shipment (default `shoprelay-test`).
    pub carrier: Option<String>,
    /// A company Address for the Shipment's pickup (default: one of the company's, or one the
    /// test creates once and reuses).
    pub pickup_address: Option<String>,
    /// How long each step waits for its effect (default 60).
    pub step_timeout_secs: Option<u64>,
}

/// The validated settings the relay runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub erpnext: ErpnextSettings,
    pub shop: ShopSettings,
    pub channels: Vec<Channel>,
    pub staging_test: StagingTestSettings,
    /// `[orders]`: how shop orders become Sales Orders.
    pub orders: OrderSettings,
    /// `[orders]`: how the order queue retries and how many customers it serves at once.
    pub order_queue: OrderQueueSettings,
    /// `[orders]`: the bounds of one shop order.
    pub order_limits: OrderLimits,
}

/// `[orders]` and `[orders.fields]`: how shop orders become Sales Orders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderSettings {
    /// The account of the "Actual" taxes row that carries shipping.
    pub shipping_account: Option<String>,
    /// Customer group for customers the relay creates (a leaf group).
    pub customer_group: String,
    /// Territory for customers the relay creates (a leaf territory).
    pub territory: String,
    /// Submit the Sales Order (true) or leave it as a draft (false).
    pub submit: bool,
    /// `delivery_date` = the UTC date of `placed_at` + this many days.
    pub lead_time_days: u32,
    /// Shop `fields` keys mapped to ERPNext fieldnames, per document.
    pub fields: FieldMapping,
    /// `[orders.tax_accounts]`: a shop tax title (e.g. "VAT 19%") -> the account of its taxes
    /// row; the key `default` catches every title not listed.
    pub tax_accounts: BTreeMap<String, String>,
    /// `[orders.payment_accounts]`: a shop payment method (e.g. "card") -> the account its
    /// Payment Entries are paid into, and optionally their Mode of Payment; `default` catches
    /// every method not listed.
    pub payment_accounts: BTreeMap<String, PaymentAccount>,
    /// `orders.invoice`: when a Sales Invoice and Payment Entries are made.
    pub invoice: InvoicePolicy,
    /// `orders.unpaid_methods`: payment methods that get the invoice but no Payment Entry (the
    /// money is not in yet, e.g. cash on delivery). Lower-cased.
    pub unpaid_methods: Vec<String>,
}

/// Where a payment method's money is booked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PaymentAccount {
    /// Only the account (`card = "Bank Account - ACME"`).
    Account(String),
    /// `card = { account = "...", mode_of_payment = "Credit Card" }`.
    Full {
        account: String,
        #[serde(default)]
        mode_of_payment: Option<String>,
    },
}

impl PaymentAccount {
    pub fn account(&self) -> &str {
        match self {
            Self::Account(a) | Self::Full { account: a, .. } => a,
        }
    }

    pub fn mode_of_payment(&self) -> Option<&str> {
        match self {
            Self::Account(_) => None,
            Self::Full {
                mode_of_payment, ..
            } => mode_of_payment.as_deref(),
        }
    }
}

/// `orders.invoice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoicePolicy {
    /// Once the payments cover the total: a submitted Sales Invoice and its Payment Entries.
    #[default]
    OnPayment,
    /// No invoices or payments (the Sales Order only).
    Never,
}

/// Which shop `fields` key goes into which ERPNext field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldMapping {
    /// Customer fields (from `customer.fields`).
    pub customer: BTreeMap<String, String>,
    /// Sales Order fields (from the order's `fields`).
    pub order: BTreeMap<String, String>,
    /// Sales Order Item fields (from each line's `fields`).
    pub line: BTreeMap<String, String>,
}

/// The order queue's own settings (`[orders]` keys beside the Sales Order settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQueueSettings {
    /// First retry delay while ERPNext is unavailable; doubles (with jitter) up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Orders placed at once, each for a different customer email (one customer's orders are
    /// always placed one after another).
    pub concurrency: usize,
}

/// The bounds of one shop order (`[orders]` keys), checked before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLimits {
    /// `orders.max_lines`: lines in one order (default 500).
    pub max_lines: usize,
    /// `orders.max_text_chars`: characters in each text of the order (order id, channel, SKU,
    /// email, names, phone, address parts, shipping method). Default 140: ERPNext's Data and
    /// Link fields, where these end up, hold 140.
    pub max_text_chars: usize,
    /// `orders.max_field_chars`: characters in each string inside a `fields` object
    /// (default 2000).
    pub max_field_chars: usize,
    /// `orders.max_problems`: problems listed in a refusal; the rest are only counted
    /// (default 50).
    pub max_problems: usize,
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            max_lines: 500,
            max_text_chars: 140,
            max_field_chars: 2000,
            max_problems: 50,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    erpnext: RawErpnext,
    #[serde(default)]
    shop: RawShop,
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    staging_test: StagingTestSettings,
    #[serde(default)]
    orders: RawOrders,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOrders {
    shipping_account: Option<String>,
    customer_group: Option<String>,
    territory: Option<String>,
    submit: Option<bool>,
    lead_time_days: Option<u32>,
    retry_base_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    concurrency: Option<usize>,
    max_lines: Option<usize>,
    max_text_chars: Option<usize>,
    max_field_chars: Option<usize>,
    max_problems: Option<usize>,
    #[serde(default)]
    fields: RawFieldMapping,
    #[serde(default)]
    tax_accounts: BTreeMap<String, String>,
    #[serde(default)]
    payment_accounts: BTreeMap<String, PaymentAccount>,
    invoice: Option<InvoicePolicy>,
    #[serde(default)]
    unpaid_methods: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFieldMapping {
    #[serde(default)]
    customer: BTreeMap<String, String>,
    #[serde(default)]
    order: BTreeMap<String, String>,
    #[serde(default)]
    line: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    admin_token: Option<String>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    dedup_window_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    max_body_bytes_in_flight: Option<usize>,
    max_signature_entries: Option<usize>,
    admin_failures_burst: Option<u32>,
    admin_failure_refill_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawErpnext {
    url: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
    webhook_secrets: Option<Vec<String>>,
    order_id_field: Option<String>,
    reconcile_interval_secs: Option<u64>,
    reconcile_overlap_secs: Option<u64>,
    full_reconcile_interval_secs: Option<u64>,
    timeout_secs: Option<u64>,
    page_size: Option<usize>,
    readback_batch: Option<usize>,
    sku_field: Option<String>,
}

/// One secret, or a list while rotating.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShop {
    base_url: Option<String>,
    token: Option<String>,
    signing_secret: Option<OneOrMany>,
    webhook_secret: Option<OneOrMany>,
    max_batch: Option<usize>,
    timeout_secs: Option<u64>,
    max_answer_bytes: Option<usize>,
    retry_schedule_secs: Option<Vec<f64>>,
    /// Replaced by `retry_schedule_secs`; named in the error.
    retry_base_ms: Option<toml::Value>,
    /// Replaced by `retry_schedule_secs`; named in the error.
    retry_max_ms: Option<toml::Value>,
}

/// Secrets (and only secrets) that may come from the environment instead of the file.
#[derive(Deserialize, Default, Debug)]
struct EnvOverrides {
    admin_token: Option<String>,
    erpnext_api_key: Option<String>,
    erpnext_api_secret: Option<String>,
    erpnext_webhook_secrets: Option<String>,
    shop_token: Option<String>,
    shop_signing_secret: Option<String>,
    shop_webhook_secret: Option<String>,
}

impl Settings {
    /// Reads `path`, applies `SHOPRELAY_*` variables from the process environment (a secret's
    /// `SHOPRELAY_*_FILE` variable read from its file), validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        const PREFIX: &str = "SHOPRELAY_";
        let vars = std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?.strip_prefix(PREFIX)?.to_owned();
            Some((k, v.into_string().ok()?))
        });
        let env: EnvOverrides = envy::from_iter(
            secret_files::resolve(vars, PREFIX)?
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v)),
        )?;
        Self::from_parts(&text, path, env_pairs(env))
    }

    /// Parses TOML text with explicit overrides (`("shop_token", "...")`, or
    /// `("shop_token_file", path)`, ...); used by tests.
    pub fn from_toml(text: &str, overrides: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let env: EnvOverrides = envy::from_iter(
            secret_files::resolve(overrides, "SHOPRELAY_")?
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v)),
        )?;
        Self::from_parts(text, Path::new("<inline>"), env_pairs(env))
    }

    fn from_parts(text: &str, path: &Path, env: EnvOverrides) -> Result<Self, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error,
        })?;
        validate(raw, env)
    }
}

fn env_pairs(env: EnvOverrides) -> EnvOverrides {
    // Empty variables count as unset, so `SHOPRELAY_SHOP_TOKEN=` does not blank a file value.
    let keep = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    EnvOverrides {
        // An admin token of only spaces is refused rather than ignored (see `admin_token`).
        admin_token: env.admin_token.filter(|s| !s.is_empty()),
        erpnext_api_key: keep(env.erpnext_api_key),
        erpnext_api_secret: keep(env.erpnext_api_secret),
        erpnext_webhook_secrets: keep(env.erpnext_webhook_secrets),
        shop_token: keep(env.shop_token),
        shop_signing_secret: keep(env.shop_signing_secret),
        shop_webhook_secret: keep(env.shop_webhook_secret),
    }
}

/// A secret that may be rotated: the environment's comma-separated list, else the file's one
/// value or list; blank entries dropped.
fn secret_list(env: Option<String>, file: Option<OneOrMany>) -> Vec<Secret> {
    match env {
        Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
        None => file.map(OneOrMany::into_vec).unwrap_or_default(),
    }
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .map(Secret)
    .collect()
}

fn required_secret(
    key: &str,
    env: Option<String>,
    file: Option<String>,
) -> Result<Secret, ConfigError> {
    match env.or(file).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Secret(s)),
        None => Err(invalid(
            key,
            format!(
                "is required (in the file or as SHOPRELAY_{})",
                key.replace('.', "_").to_ascii_uppercase()
            ),
        )),
    }
}

/// `server.admin_token` (or `SHOPRELAY_ADMIN_TOKEN`, which wins): absent or empty disables the
/// admin API and pages; otherwise it must hold at least [`MIN_ADMIN_TOKEN_CHARS`] characters
/// and not only spaces, or the relay does not start (a short token is guessed quickly).
fn admin_token(env: Option<String>, file: Option<String>) -> Result<Option<Secret>, ConfigError> {
    let (source, token) = match (env, file) {
        (Some(t), _) => ("SHOPRELAY_ADMIN_TOKEN", t),
        (None, Some(t)) if !t.is_empty() => ("server.admin_token", t),
        _ => return Ok(None),
    };
    if token.trim().is_empty() {
        return Err(invalid(
            "server.admin_token",
            format!("(from {source}) holds only spaces; set a random token of at least {MIN_ADMIN_TOKEN_CHARS} characters, or leave it out to disable the admin API"),
        ));
    }
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(invalid(
            "server.admin_token",
            format!("(from {source}) is {chars} characters long; it must be at least {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -hex 16`)"),
        ));
    }
    Ok(Some(Secret(token)))
}

fn url(key: &str, value: Option<String>) -> Result<reqwest::Url, ConfigError> {
    let value = value.ok_or_else(|| invalid(key, "is required"))?;
    let parsed = reqwest::Url::parse(value.trim_end_matches('/'))
        .map_err(|e| invalid(key, format!("is not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(key, "must be an http:// or https:// URL"));
    }
    Ok(parsed)
}

/// `shop.retry_schedule_secs`: the delays before each attempt, the first 0 (at once).
fn retry_schedule(raw: &RawShop) -> Result<Vec<std::time::Duration>, ConfigError> {
    const KEY: &str = "shop.retry_schedule_secs";
    for (old, given) in [
        ("shop.retry_base_ms", &raw.retry_base_ms),
        ("shop.retry_max_ms", &raw.retry_max_ms),
    ] {
        if given.is_some() {
            return Err(invalid(
                old,
                "is replaced by shop.retry_schedule_secs (the delay before each attempt, e.g. [0, 5, 300, 1800, 7200, 18000, 36000, 36000])",
            ));
        }
    }
    let secs = raw
        .retry_schedule_secs
        .clone()
        .unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE_SECS.to_vec());
    if secs.is_empty() || secs.len() > 100 {
        return Err(invalid(KEY, "must list between 1 and 100 delays"));
    }
    if secs[0] != 0.0 {
        return Err(invalid(
            KEY,
            "must start with 0: the first attempt is made at once",
        ));
    }
    secs.iter()
        .map(|s| {
            std::time::Duration::try_from_secs_f64(*s).map_err(|_| {
                invalid(
                    KEY,
                    format!("holds {s}; each delay must be a number of seconds >= 0"),
                )
            })
        })
        .collect()
}

/// An optional document field name: letters, digits and `_`, not starting with a digit (it is
/// written into the Item webhook's condition).
fn field_name(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(f) = value.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let ok = f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !f.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(Some(f))
    } else {
        Err(invalid(
            key,
            format!("`{f}` is not a field name (letters, digits and _)"),
        ))
    }
}

fn positive<T: PartialOrd + Default + Copy>(key: &str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(invalid(key, "must be greater than 0"))
    }
}

/// The rules every channel list keeps (the file's `[[channels]]`, or one set through the admin
/// API): at least one channel, unique non-empty names, warehouses, a buffer of 0 or more.
pub fn validate_channels(channels: &[Channel]) -> Result<(), ConfigError> {
    if channels.is_empty() {
        return Err(invalid("channels", "needs at least one [[channels]] entry"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, ch) in channels.iter().enumerate() {
        let key = format!("channels[{i}]");
        if ch.name.trim().is_empty() || ch.name.contains('\u{1f}') {
            return Err(invalid(format!("{key}.name"), "must be a non-empty name"));
        }
        if !seen.insert(ch.name.clone()) {
            return Err(invalid(
                format!("{key}.name"),
                format!("`{}` is used by two channels", ch.name),
            ));
        }
        if ch.warehouses.is_empty() || ch.warehouses.iter().any(|w| w.trim().is_empty()) {
            return Err(invalid(
                format!("{key}.warehouses"),
                "must list at least one warehouse name",
            ));
        }
        if !ch.buffer.is_finite() || ch.buffer < 0.0 {
            return Err(invalid(
                format!("{key}.buffer"),
                "must be a number of 0 or more",
            ));
        }
    }
    Ok(())
}

fn validate(raw: RawFile, env: EnvOverrides) -> Result<Settings, ConfigError> {
    let listen_text = raw.server.listen.unwrap_or_else(|| "127.0.0.1:8787".into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        invalid(
            "server.listen",
            format!("`{listen_text}` is not an address like 127.0.0.1:8787"),
        )
    })?;
    let server = ServerSettings {
        listen,
        data_dir: raw
            .server
            .data_dir
            .unwrap_or_else(|| "shoprelay-data".into()),
        admin_token: admin_token(env.admin_token, raw.server.admin_token)?,
        public_url: raw.server.public_url,
        max_body_bytes: positive(
            "server.max_body_bytes",
            raw.server.max_body_bytes.unwrap_or(1 << 20),
        )?,
        workers: positive("server.workers", raw.server.workers.unwrap_or(2))?,
        dedup_window_secs: positive(
            "server.dedup_window_secs",
            raw.server.dedup_window_secs.unwrap_or(900),
        )?,
        body_timeout_secs: positive(
            "server.body_timeout_secs",
            raw.server.body_timeout_secs.unwrap_or(10),
        )?,
        max_body_bytes_in_flight: positive(
            "server.max_body_bytes_in_flight",
            raw.server.max_body_bytes_in_flight.unwrap_or(64 << 20),
        )?,
        max_signature_entries: positive(
            "server.max_signature_entries",
            raw.server.max_signature_entries.unwrap_or(8),
        )?,
        admin_failures_burst: positive(
            "server.admin_failures_burst",
            raw.server.admin_failures_burst.unwrap_or(10),
        )?,
        admin_failure_refill_secs: positive(
            "server.admin_failure_refill_secs",
            raw.server.admin_failure_refill_secs.unwrap_or(3),
        )?,
    };
    if server.max_body_bytes_in_flight < server.max_body_bytes {
        return Err(invalid(
            "server.max_body_bytes_in_flight",
            format!(
                "must be at least server.max_body_bytes ({}), or no body of the largest size could be read",
                server.max_body_bytes
            ),
        ));
    }

    let secrets: Vec<String> = match env.erpnext_webhook_secrets {
        Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
        None => raw.erpnext.webhook_secrets.unwrap_or_default(),
    };
    if secrets.is_empty() || secrets.iter().any(|s| s.is_empty()) {
        return Err(invalid(
            "erpnext.webhook_secrets",
            "needs at least one non-empty secret (or SHOPRELAY_ERPNEXT_WEBHOOK_SECRETS, comma-separated)",
        ));
    }
    let erpnext = ErpnextSettings {
        url: url("erpnext.url", raw.erpnext.url)?,
        api_key: required_secret("erpnext.api_key", env.erpnext_api_key, raw.erpnext.api_key)?,
        api_secret: required_secret(
            "erpnext.api_secret",
            env.erpnext_api_secret,
            raw.erpnext.api_secret,
        )?,
        webhook_secrets: secrets.into_iter().map(Secret).collect(),
        order_id_field: raw.erpnext.order_id_field.unwrap_or_else(|| "po_no".into()),
        reconcile_interval_secs: raw.erpnext.reconcile_interval_secs.unwrap_or(300),
        reconcile_overlap_secs: raw.erpnext.reconcile_overlap_secs.unwrap_or(300),
        full_reconcile_interval_secs: raw.erpnext.full_reconcile_interval_secs.unwrap_or(86_400),
        timeout_secs: positive(
            "erpnext.timeout_secs",
            raw.erpnext.timeout_secs.unwrap_or(15),
        )?,
        page_size: positive("erpnext.page_size", raw.erpnext.page_size.unwrap_or(500))?,
        readback_batch: positive(
            "erpnext.readback_batch",
            raw.erpnext.readback_batch.unwrap_or(50),
        )?,
        sku_field: field_name("erpnext.sku_field", raw.erpnext.sku_field)?,
    };

    let retry_schedule = retry_schedule(&raw.shop)?;
    let shop = ShopSettings {
        base_url: url("shop.base_url", raw.shop.base_url)?,
        token: required_secret("shop.token", env.shop_token, raw.shop.token)?,
        signing_secrets: secret_list(env.shop_signing_secret, raw.shop.signing_secret),
        webhook_secrets: secret_list(env.shop_webhook_secret, raw.shop.webhook_secret),
        max_batch: positive("shop.max_batch", raw.shop.max_batch.unwrap_or(100))?,
        timeout_secs: positive("shop.timeout_secs", raw.shop.timeout_secs.unwrap_or(15))?,
        max_answer_bytes: positive(
            "shop.max_answer_bytes",
            raw.shop.max_answer_bytes.unwrap_or(64 << 10),
        )?,
        retry_schedule,
    };

    validate_channels(&raw.channels)?;
    let order_limits = order_limits(&raw.orders)?;
    let (orders, order_queue) = validate_orders(raw.orders, &erpnext.order_id_field)?;
    if raw.staging_test.step_timeout_secs == Some(0) {
        return Err(invalid(
            "staging_test.step_timeout_secs",
            "must be greater than 0",
        ));
    }

    Ok(Settings {
        server,
        erpnext,
        shop,
        channels: raw.channels,
        orders,
        order_queue,
        order_limits,
        staging_test: raw.staging_test,
    })
}

/// A non-empty name (trimmed), or `default` when the key is absent.
fn name_or(key: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    match value {
        None => Ok(default.to_owned()),
        Some(v) if v.trim().is_empty() => Err(invalid(key, "must not be empty")),
        Some(v) => Ok(v.trim().to_owned()),
    }
}

/// Sales Order fields the relay sets itself; a mapped shop field may not overwrite them.
const RELAY_ORDER_FIELDS: [&str; 16] = [
    "name",
    "doctype",
    "docstatus",
    "customer",
    "items",
    "taxes",
    "title",
    "delivery_date",
    "transaction_date",
    "currency",
    "discount_amount",
    "apply_discount_on",
    "ignore_pricing_rule",
    "set_warehouse",
    "company",
    "po_no",
];

/// Fields of a customer, and of an order line, that the relay sets itself.
const RELAY_CUSTOMER_FIELDS: [&str; 8] = [
    "name",
    "doctype",
    "customer_name",
    "customer_type",
    "customer_group",
    "territory",
    "email_id",
    "mobile_no",
];
const RELAY_LINE_FIELDS: [&str; 7] = [
    "name",
    "doctype",
    "item_code",
    "qty",
    "rate",
    "price_list_rate",
    "warehouse",
];

/// One `[orders.fields]` table: shop keys to ERPNext fieldnames (lower-case letters, digits
/// and `_`, starting with a letter, as Frappe names fields), none of them a field the relay
/// sets itself.
fn field_map(
    table: &str,
    map: BTreeMap<String, String>,
    reserved: &[&str],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut targets = std::collections::BTreeSet::new();
    for (shop_key, fieldname) in map {
        let key = format!("orders.fields.{table}.{shop_key}");
        if shop_key.trim().is_empty() {
            return Err(invalid(
                format!("orders.fields.{table}"),
                "has an empty shop key",
            ));
        }
        let fieldname = fieldname.trim().to_owned();
        let well_formed = fieldname.starts_with(|c: char| c.is_ascii_lowercase())
            && fieldname
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(invalid(
                key,
                format!(
                    "`{fieldname}` is not an ERPNext fieldname (lower-case letters, digits and _)"
                ),
            ));
        }
        if reserved.contains(&fieldname.as_str()) {
            return Err(invalid(
                key,
                format!("`{fieldname}` is set by the relay itself; map the shop field to a custom field"),
            ));
        }
        if !targets.insert(fieldname.clone()) {
            return Err(invalid(
                key,
                format!("`{fieldname}` is the target of two shop fields"),
            ));
        }
        out.insert(shop_key, fieldname);
    }
    Ok(out)
}

fn order_limits(raw: &RawOrders) -> Result<OrderLimits, ConfigError> {
    let d = OrderLimits::default();
    Ok(OrderLimits {
        max_lines: positive("orders.max_lines", raw.max_lines.unwrap_or(d.max_lines))?,
        max_text_chars: positive(
            "orders.max_text_chars",
            raw.max_text_chars.unwrap_or(d.max_text_chars),
        )?,
        max_field_chars: positive(
            "orders.max_field_chars",
            raw.max_field_chars.unwrap_or(d.max_field_chars),
        )?,
        max_problems: positive(
            "orders.max_problems",
            raw.max_problems.unwrap_or(d.max_problems),
        )?,
    })
}

/// A title -> account table: keys as written (trimmed), accounts non-empty.
fn account_map(
    key: &str,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (title, account) in raw {
        if account.trim().is_empty() {
            return Err(invalid(
                format!("{key}.{title}"),
                "must name an account, not be empty",
            ));
        }
        out.insert(title.trim().to_owned(), account.trim().to_owned());
    }
    Ok(out)
}

/// `[orders.payment_accounts]`: methods lower-cased, accounts non-empty.
fn payment_map(
    raw: BTreeMap<String, PaymentAccount>,
) -> Result<BTreeMap<String, PaymentAccount>, ConfigError> {
    let mut out = BTreeMap::new();
    for (method, target) in raw {
        if target.account().trim().is_empty() {
            return Err(invalid(
                format!("orders.payment_accounts.{method}"),
                "must name an account, not be empty",
            ));
        }
        out.insert(method.trim().to_lowercase(), target);
    }
    Ok(out)
}

fn validate_orders(
    raw: RawOrders,
    order_id_field: &str,
) -> Result<(OrderSettings, OrderQueueSettings), ConfigError> {
    let shipping_account = match raw.shipping_account {
        Some(a) if a.trim().is_empty() => {
            return Err(invalid("orders.shipping_account", "must not be empty"))
        }
        other => other.map(|a| a.trim().to_owned()),
    };
    let lead_time_days = raw.lead_time_days.unwrap_or(3);
    if lead_time_days > 3650 {
        return Err(invalid(
            "orders.lead_time_days",
            "must be a number of days from 0 to 3650",
        ));
    }
    let mut order_reserved: Vec<&str> = RELAY_ORDER_FIELDS.to_vec();
    order_reserved.push(order_id_field);
    let settings = OrderSettings {
        shipping_account,
        customer_group: name_or("orders.customer_group", raw.customer_group, "Individual")?,
        territory: name_or("orders.territory", raw.territory, "Rest Of The World")?,
        submit: raw.submit.unwrap_or(true),
        lead_time_days,
        fields: FieldMapping {
            customer: field_map("customer", raw.fields.customer, &RELAY_CUSTOMER_FIELDS)?,
            order: field_map("order", raw.fields.order, &order_reserved)?,
            line: field_map("line", raw.fields.line, &RELAY_LINE_FIELDS)?,
        },
        tax_accounts: account_map("orders.tax_accounts", raw.tax_accounts)?,
        payment_accounts: payment_map(raw.payment_accounts)?,
        invoice: raw.invoice.unwrap_or_default(),
        unpaid_methods: raw
            .unpaid_methods
            .iter()
            .map(|m| m.trim().to_lowercase())
            .filter(|m| !m.is_empty())
            .collect(),
    };
    let retry_base_ms = positive("orders.retry_base_ms", raw.retry_base_ms.unwrap_or(1_000))?;
    let retry_max_ms = positive("orders.retry_max_ms", raw.retry_max_ms.unwrap_or(300_000))?;
    if retry_max_ms < retry_base_ms {
        return Err(invalid(
            "orders.retry_max_ms",
            "must not be smaller than orders.retry_base_ms",
        ));
    }
    let queue = OrderQueueSettings {
        retry_base_ms,
        retry_max_ms,
        concurrency: positive("orders.concurrency", raw.concurrency.unwrap_or(4))?,
    };
    Ok((settings, queue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::Policy;

    const GOOD: &str = r#"
[erpnext]
url = "http://127.0.0.1:9000"
api_key = "k"
api_secret = "s"
webhook_secrets = ["one", "two"]
[shop]
base_url = "http://127.0.0.1:9001/erp"
token = "t"
[[channels]]
name = "web"
warehouses = ["Stores - ACME"]
"#;

    #[test]
    fn a_short_or_blank_admin_token_stops_the_start_wherever_it_comes_from() {
        let file = |t: &str| format!("[server]\nadmin_token = \"{t}\"\n{GOOD}");
        let refused = |r: Result<Settings, ConfigError>| match r {
            Err(ConfigError::Invalid { key, reason }) => {
                assert_eq!(key, "server.admin_token");
                reason
            }
            other => panic!("not refused: {other:?}"),
        };
        assert!(refused(Settings::from_toml(&file("a"), &[])).contains("1 characters long"));
        assert!(refused(Settings::from_toml(&file(" "), &[])).contains("only spaces"));
        let fifteen = "0123456789abcde";
        assert!(refused(Settings::from_toml(&file(fifteen), &[])).contains("at least 16"));
        let env = refused(Settings::from_toml(GOOD, &[("admin_token", "   ")]));
        assert!(env.contains("SHOPRELAY_ADMIN_TOKEN"), "{env}");
        let env = refused(Settings::from_toml(
            &file("a-long-enough-file-token"),
            &[("admin_token", "short")],
        ));
        assert!(env.contains("SHOPRELAY_ADMIN_TOKEN"), "{env}");
        assert!(!env.contains("short"), "the token is never shown: {env}");
        let ok = Settings::from_toml(&file(&format!("{fifteen}f")), &[]).expect("16 characters");
        assert_eq!(
            ok.server.admin_token.as_ref().map(Secret::expose),
            Some("0123456789abcdef")
        );
        // Absent or empty: the admin API is off, as before.
        assert!(Settings::from_toml(&file(""), &[("admin_token", "")])
            .expect("empty")
            .server
            .admin_token
            .is_none());
    }

    #[test]
    fn defaults_are_applied() {
        let s = Settings::from_toml(GOOD, &[]).expect("valid");
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(s.shop.max_batch, 100);
        assert_eq!(s.erpnext.order_id_field, "po_no");
        assert_eq!(s.channels[0].policy, Policy::ActualMinusReserved);
        assert_eq!(s.erpnext.webhook_secrets.len(), 2);
    }

    #[test]
    fn environment_overrides_secrets() {
        let s = Settings::from_toml(
            GOOD,
            &[
                ("shop_token", "from-env"),
                ("erpnext_webhook_secrets", "a, b,c"),
            ],
        )
        .expect("valid");
        assert_eq!(s.shop.token.expose(), "from-env");
        let secrets: Vec<_> = s
            .erpnext
            .webhook_secrets
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        assert_eq!(secrets, ["a", "b", "c"]);
    }

    #[test]
    fn errors_name_the_bad_key() {
        let cases = [
            (
                GOOD.replace("max_batch", "x").replace("token = \"t\"", ""),
                "shop.token",
            ),
            (GOOD.replace("127.0.0.1:9000", "not a url"), "erpnext.url"),
            (
                GOOD.replace("[\"Stores - ACME\"]", "[]"),
                "channels[0].warehouses",
            ),
            (
                format!("{GOOD}\n[[channels]]\nname = \"web\"\nwarehouses = [\"X\"]\n"),
                "channels[1].name",
            ),
            (
                GOOD.replace("[\"one\", \"two\"]", "[]"),
                "erpnext.webhook_secrets",
            ),
            (
                format!("[server]\nlisten = \"nowhere\"\n{GOOD}"),
                "server.listen",
            ),
            (
                GOOD.replace(
                    "webhook_secrets = [\"one\", \"two\"]",
                    "webhook_secrets = [\"one\", \"two\"]\nsku_field = \"x\\\") or (1\"",
                ),
                "erpnext.sku_field",
            ),
        ];
        for (text, key) in cases {
            let err = Settings::from_toml(&text, &[]).expect_err(key).to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn the_signing_secret_may_be_one_or_a_list() {
        let one = Settings::from_toml(
            &GOOD.replace(
                "token = \"t\"",
                "token = \"t\"\nsigning_secret = \"whsec_a\"",
            ),
            &[],
        )
        .expect("one");
        assert_eq!(one.shop.signing_secrets.len(), 1);
        let two = Settings::from_toml(
            &GOOD.replace(
                "token = \"t\"",
                "token = \"t\"\nsigning_secret = [\"whsec_a\", \"whsec_b\"]",
            ),
            &[],
        )
        .expect("two");
        assert_eq!(two.shop.signing_secrets.len(), 2);
        let env =
            Settings::from_toml(GOOD, &[("shop_signing_secret", "whsec_x,whsec_y")]).expect("env");
        assert_eq!(env.shop.signing_secrets.len(), 2);
    }

    #[test]
    fn orders_are_configured_and_checked() {
        let s = Settings::from_toml(GOOD, &[]).expect("defaults");
        assert_eq!(s.orders.customer_group, "Individual");
        assert!(s.orders.submit);
        assert_eq!(s.orders.lead_time_days, 3);
        assert_eq!(s.order_queue.concurrency, 4);
        assert!(s.shop.webhook_secrets.is_empty());
        let text = format!(
            "{GOOD}\n[orders]\nshipping_account = \"Freight - ACME\"\nsubmit = false\nlead_time_days = 0\n\
             [orders.fields]\ncustomer = {{ loyalty_tier = \"shop_loyalty_tier\" }}\n\
             line = {{ assembly_required = \"shop_assembly_required\" }}\n"
        );
        let s = Settings::from_toml(&text, &[("shop_webhook_secret", "whsec_a,whsec_b")])
            .expect("orders");
        assert_eq!(s.orders.shipping_account.as_deref(), Some("Freight - ACME"));
        assert!(!s.orders.submit);
        assert_eq!(
            s.orders.fields.customer["loyalty_tier"],
            "shop_loyalty_tier"
        );
        assert_eq!(
            s.orders.fields.line["assembly_required"],
            "shop_assembly_required"
        );
        assert_eq!(
            s.shop.webhook_secrets.len(),
            2,
            "rotation from the environment"
        );
        for (orders, key) in [
            ("customer_group = \" \"", "orders.customer_group"),
            ("lead_time_days = 9999", "orders.lead_time_days"),
            ("retry_base_ms = 0", "orders.retry_base_ms"),
            ("concurrency = 0", "orders.concurrency"),
            (
                "[orders.fields]\norder = { note = \"Shop Note\" }",
                "orders.fields.order.note",
            ),
            (
                "[orders.fields]\norder = { id = \"po_no\" }",
                "orders.fields.order.id",
            ),
            (
                "[orders.fields]\nline = { a = \"x_flag\", b = \"x_flag\" }",
                "orders.fields.line",
            ),
            ("colour = \"red\"", "colour"),
        ] {
            let err = Settings::from_toml(&format!("{GOOD}\n[orders]\n{orders}\n"), &[])
                .expect_err(key)
                .to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            Settings::from_toml(&format!("{GOOD}\n[shop2]\nx=1\n"), &[]).expect_err("unknown");
        assert!(err.to_string().contains("shop2"), "{err}");
    }

    #[test]
    fn the_example_configuration_loads() {
        let text = include_str!("../shoprelay.example.toml");
        let s = Settings::from_toml(text, &[]).expect("shoprelay.example.toml is valid");
        assert_eq!(s.channels.len(), 2);
        assert_eq!(
            s.server.listen.ip().to_string(),
            "127.0.0.1",
            "loopback by default"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::from_toml(GOOD, &[]).expect("valid");
        let dump = format!("{s:?}");
        assert!(
            !dump.contains("\"t\"") && !dump.contains("\"one\""),
            "{dump}"
        );
    }
}
