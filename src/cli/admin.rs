//! `shoprelay admin ...`: the admin API from a terminal. Each command calls the same HTTP
//! endpoint the web pages use and prints what it answered in plain words (`--json`: as is).

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::config::Settings;

/// What to ask the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Status,
    Channels,
    DeadLetters,
    /// Retry one dead letter, or all of them (None).
    Retry(Option<u64>),
    /// Discard one dead letter, or all of them (None).
    Discard(Option<u64>),
    Sku(String),
}

/// Where the relay is and how to sign in.
#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8787`
    pub url: String,
    pub token: String,
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminCliError {
    #[error(
        "no admin token: set server.admin_token in the configuration or SHOPRELAY_ADMIN_TOKEN"
    )]
    NoToken,
    #[error("cannot reach the relay at {url} (is `shoprelay serve` running?)")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the relay answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

impl Target {
    /// The relay of `settings` (its `server.listen`, with a wildcard address made loopback) or
    /// `url`; the token from `SHOPRELAY_ADMIN_TOKEN` (already applied to `settings`) or `token`.
    pub fn new(
        settings: Option<&Settings>,
        url: Option<String>,
        token: Option<String>,
    ) -> Result<Self, AdminCliError> {
        let url = url.unwrap_or_else(|| match settings {
            Some(s) => {
                let mut addr = s.server.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
            None => "http://127.0.0.1:8787".into(),
        });
        let token = token
            .or_else(|| {
                settings.and_then(|s| s.server.admin_token.as_ref().map(|t| t.expose().to_owned()))
            })
            .filter(|t| !t.is_empty())
            .ok_or(AdminCliError::NoToken)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

async fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
) -> Result<Value, AdminCliError> {
    let url = format!("{}{}", target.url, path);
    let unreachable = |source| AdminCliError::Unreachable {
        url: target.url.clone(),
        source,
    };
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(unreachable)?
        .request(method, url)
        .bearer_auth(&target.token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(AdminCliError::Refused {
            status,
            message: body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string()),
        })
    }
}

fn ago(now_ms: u64, at: &Value) -> String {
    match at.as_u64() {
        Some(t) => format!(
            "{} ago",
            crate::admin::ops::health::age(now_ms.saturating_sub(t))
        ),
        None => "none since the relay started".into(),
    }
}

fn print_status(v: &Value, out: &mut impl Write) -> std::io::Result<()> {
    let now = crate::model::now_ms();
    let verdict = if v["healthy"].as_bool() == Some(true) {
        "healthy"
    } else {
        "NEEDS ATTENTION"
    };
    writeln!(out, "shoprelay: {verdict}")?;
    for peer in ["erpnext", "shop"] {
        let p = &v[peer];
        writeln!(
            out,
            "  {:<9} {} ({})",
            if peer == "erpnext" { "ERPNext" } else { "shop" },
            if p["reachable"].as_bool() == Some(true) {
                "reachable"
            } else {
                "UNREACHABLE"
            },
            p["detail"].as_str().unwrap_or("")
        )?;
    }
    writeln!(out, "  last webhook  {}", ago(now, &v["last_event_ms"]))?;
    writeln!(out, "  last push     {}", ago(now, &v["last_push_ms"]))?;
    writeln!(out, "  queues:")?;
    for q in v["queue_ages"].as_array().into_iter().flatten() {
        let age = q["oldest_age_ms"]
            .as_u64()
            .map(|a| format!(", oldest {}", crate::admin::ops::health::age(a)))
            .unwrap_or_default();
        writeln!(
            out,
            "    {:<16} {}{age}",
            q["name"].as_str().unwrap_or("?"),
            q["depth"]
        )?;
    }
    writeln!(out, "  dead letters  {}", v["dead_letters"])?;
    writeln!(
        out,
        "  reconcile     watermark {}",
        v["reconcile_watermark"].as_str().unwrap_or("none yet")
    )?;
    let r = &v["reconcile"];
    if r["running"].is_object() {
        writeln!(
            out,
            "                running: {} of {} Bins",
            r["running"]["rows"],
            r["running"]["total"]
                .as_u64()
                .map_or_else(|| "?".to_string(), |t| t.to_string())
        )?;
    }
    if let Some(last) = r["last"].as_object() {
        match last.get("error").and_then(Value::as_str) {
            Some(e) => writeln!(out, "                last pass failed: {e}")?,
            None => writeln!(
                out,
                "                last pass {}: {} Bins",
                ago(now, &last["finished_ms"]),
                last["rows"]
            )?,
        }
    }
    Ok(())
}

fn print_channels(v: &Value, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "channels in force (from {}):",
        if v["source"] == "admin" {
            "the admin API"
        } else {
            "the configuration file"
        }
    )?;
    let resolved = v["resolved"].as_array();
    for (i, c) in v["channels"].as_array().into_iter().flatten().enumerate() {
        let names = |c: &Value| {
            c["warehouses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "  {}: {} policy {}, buffer {}",
            c["name"].as_str().unwrap_or("?"),
            names(c),
            c["policy"].as_str().unwrap_or("?"),
            c["buffer"]
        )?;
        if let Some(r) = resolved.and_then(|r| r.get(i)) {
            if r["warehouses"] != c["warehouses"] {
                writeln!(out, "      resolved: {}", names(r))?;
            }
        }
    }
    Ok(())
}

fn print_dead(v: &Value, out: &mut impl Write) -> std::io::Result<()> {
    let list = v["dead_letters"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return writeln!(out, "no dead letters");
    }
    for d in &list {
        let what = match d["kind"].as_str() {
            Some("levels") => format!(
                "levels on {}: {} SKU(s)",
                d["channel"].as_str().unwrap_or("?"),
                d["levels"].as_array().map_or(0, Vec::len)
            ),
            _ => format!(
                "shipment {} of order {}",
                d["op"]["shipment_id"].as_str().unwrap_or("?"),
                d["op"]["order_id"].as_str().unwrap_or("?")
            ),
        };
        let answer: String = d["response"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(120)
            .collect();
        writeln!(
            out,
            "  {:>6}  {what}; shop answered {} {answer}",
            d["id"], d["status"]
        )?;
    }
    writeln!(
        out,
        "{} dead letter(s); `shoprelay admin dead-letters retry [ID]` or `discard [ID]`",
        list.len()
    )
}

fn print_sku(v: &Value, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} (item {})",
        v["sku"].as_str().unwrap_or("?"),
        v["item_code"].as_str().unwrap_or("?")
    )?;
    if let Some(e) = v["erpnext_error"].as_str() {
        writeln!(
            out,
            "  ERPNext did not answer ({e}); Bins as last read back"
        )?;
    }
    writeln!(out, "  per channel:")?;
    for c in v["channels"].as_array().into_iter().flatten() {
        let shop = &c["shop"];
        let sent = match shop["state"].as_str() {
            Some("sent") => format!("shop has {}", shop["value"]),
            Some("waiting") => format!("{} waiting to be sent", shop["value"]),
            Some("dead_letter") => format!(
                "{} refused by the shop (dead letter {})",
                shop["value"], shop["dead_letter"]
            ),
            _ => "never sent".into(),
        };
        writeln!(
            out,
            "    {:<16} level {}; {sent}",
            c["channel"].as_str().unwrap_or("?"),
            c["level"]
        )?;
    }
    writeln!(out, "  Bins:")?;
    for b in v["bins"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "    {:<28} actual {} reserved {} projected {}",
            b["warehouse"].as_str().unwrap_or("?"),
            b["actual_qty"],
            b["reserved_qty"],
            b["projected_qty"]
        )?;
    }
    Ok(())
}

fn id_path(id: Option<u64>, one: &str, all: &str) -> String {
    match id {
        Some(id) => one.replace("{id}", &id.to_string()),
        None => all.to_owned(),
    }
}

/// Runs one admin command against `target`, writing the answer to `out`.
pub async fn run(
    target: &Target,
    command: &AdminCommand,
    json: bool,
    out: &mut impl Write,
) -> Result<(), AdminCliError> {
    use reqwest::Method;
    let (method, path) = match command {
        AdminCommand::Status => (Method::GET, "/admin/status".to_string()),
        AdminCommand::Channels => (Method::GET, "/admin/channels".to_string()),
        AdminCommand::DeadLetters => (Method::GET, "/admin/dead-letters".to_string()),
        AdminCommand::Retry(id) => (
            Method::POST,
            id_path(
                *id,
                "/admin/dead-letters/{id}/retry",
                "/admin/dead-letters/retry",
            ),
        ),
        AdminCommand::Discard(id) => (
            Method::DELETE,
            id_path(*id, "/admin/dead-letters/{id}", "/admin/dead-letters"),
        ),
        AdminCommand::Sku(sku) if crate::shop::client::is_dot_segment(sku) || sku.is_empty() => {
            return Err(AdminCliError::Usage(format!(
                "`{sku}` is not a SKU that can be looked up (`.`, `..` and empty names address other paths)"
            )));
        }
        AdminCommand::Sku(sku) => (
            Method::GET,
            format!("/admin/skus/{}", crate::http::encode_segment(sku)),
        ),
    };
    let v = call(target, method, &path).await?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(());
    }
    match command {
        AdminCommand::Status => print_status(&v, out)?,
        AdminCommand::Channels => print_channels(&v, out)?,
        AdminCommand::DeadLetters => print_dead(&v, out)?,
        AdminCommand::Retry(_) => writeln!(out, "retried: {}", v["retried"])?,
        AdminCommand::Discard(_) => writeln!(out, "discarded: {}", v["discarded"])?,
        AdminCommand::Sku(_) => print_sku(&v, out)?,
    }
    Ok(())
}
