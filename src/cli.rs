//! The administrative subcommands (`erpnext setup`, `erpnext check`, `reconcile`, and in
//! [`admin`] the admin API from a terminal), written to a writer so that tests can read what a
//! user would see.

pub mod admin;

use std::io::Write;

use crate::config::Settings;
use crate::erpnext::reconcile::Progress;
use crate::erpnext::setup::{apply, check, plan, Action};
use crate::erpnext::webhooks::for_site;
use crate::erpnext::{ErpClient, ErpError};
use crate::startup::{Relay, StartupError};
use crate::telemetry::error_chain;

/// Why a subcommand failed. Shown to the user as is (with its causes).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Erp(#[from] ErpError),
    #[error("`server.public_url` is required: it is the address ERPNext sends webhooks to")]
    NoPublicUrl,
    #[error("the shipped webhook documents do not parse: {0}")]
    Shipped(String),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    #[error("{0} (is `shoprelay serve` running on this data directory? Then ask it: POST /admin/reconcile)")]
    Open(String),
}

fn public_url(settings: &Settings) -> Result<&str, CliError> {
    settings
        .server
        .public_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or(CliError::NoPublicUrl)
}

/// `shoprelay erpnext setup`: prints the plan, then (unless `dry_run`) carries it out. Returns
/// how many webhooks were created, updated or disabled.
pub async fn erpnext_setup(
    settings: &Settings,
    dry_run: bool,
    reset_secret: bool,
    out: &mut impl Write,
) -> Result<usize, CliError> {
    let url = public_url(settings)?;
    let erp = ErpClient::new(&settings.erpnext)?;
    let hooks = for_site(settings.erpnext.sku_field.as_deref()).map_err(CliError::Shipped)?;
    let actions = plan(&erp, &hooks, url).await?;
    writeln!(out, "ERPNext {}: webhooks to {url}", settings.erpnext.url)?;
    for a in &actions {
        writeln!(out, "  {}", a.describe())?;
    }
    let pending = actions
        .iter()
        .filter(|a| !matches!(a, Action::Unchanged { .. }))
        .count();
    if dry_run {
        writeln!(out, "dry run: {pending} change(s) planned, nothing changed")?;
        return Ok(0);
    }
    // Setup installs the first secret; while rotating, the relay accepts all of them.
    let secret = settings
        .erpnext
        .webhook_secrets
        .first()
        .ok_or_else(|| CliError::Other("erpnext.webhook_secrets is empty".into()))?;
    let changed = apply(&erp, &actions, secret, reset_secret).await?;
    if changed == 0 {
        writeln!(
            out,
            "nothing to change: every shoprelay webhook is as shipped"
        )?;
    } else {
        writeln!(
            out,
            "done: {changed} webhook(s) created, updated or disabled"
        )?;
    }
    Ok(changed)
}

/// `shoprelay erpnext check`: prints one line per finding and a verdict (with the `[orders]`
/// findings when the relay takes shop orders). Returns true when everything is right.
pub async fn erpnext_check(settings: &Settings, out: &mut impl Write) -> Result<bool, CliError> {
    let url = public_url(settings)?;
    let erp = ErpClient::new(&settings.erpnext)?;
    let hooks = for_site(settings.erpnext.sku_field.as_deref()).map_err(CliError::Shipped)?;
    let mut findings = check(&erp, &hooks, url).await;
    // The `[orders]` settings matter once the relay takes orders (a shop webhook secret is set).
    if !settings.shop.webhook_secrets.is_empty() {
        findings.extend(crate::orders::check::check(&erp, &settings.orders).await);
    }
    for f in &findings {
        writeln!(out, "  {} {}", if f.ok { "ok  " } else { "FAIL" }, f.text)?;
    }
    let problems = findings.iter().filter(|f| !f.ok).count();
    if problems == 0 {
        writeln!(
            out,
            "verdict: OK, ERPNext {} is wired to this relay",
            settings.erpnext.url
        )?;
    } else {
        writeln!(out, "verdict: {problems} problem(s) found")?;
    }
    Ok(problems == 0)
}

/// A one-line progress bar: `[#########-----------]  45%  4500/10000 Bins`.
pub fn progress_line(p: Progress) -> String {
    match p.total {
        Some(total) if total > 0 => {
            let done = p.rows.min(total);
            let filled = (done * 20 / total) as usize;
            format!(
                "[{}{}] {:3}%  {done}/{total} Bins",
                "#".repeat(filled),
                "-".repeat(20 - filled),
                done * 100 / total
            )
        }
        _ => format!("{} Bins read", p.rows),
    }
}

/// What `shoprelay reconcile` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSummary {
    pub rows: u64,
    pub pages: u64,
    pub items_read_back: usize,
    pub levels_pushed: u64,
    /// Levels still waiting for the shop when the command gave up on it (shop down).
    pub levels_waiting: usize,
}

/// `shoprelay reconcile [--full]`: one pass, then reads back the marked items and pushes what
/// changed, with a progress bar on `progress` and a summary on `out`.
pub async fn reconcile(
    settings: &Settings,
    full: bool,
    out: &mut impl Write,
    progress: &mut impl Write,
) -> Result<ReconcileSummary, CliError> {
    let relay = Relay::open(settings).await.map_err(|e| match e {
        StartupError::Store { .. } => CliError::Open(error_chain(&e)),
        other => CliError::Other(error_chain(&other)),
    })?;
    let report = relay
        .reconcile_pass(full, |p| {
            let _ = write!(progress, "\r{}", progress_line(p));
            let _ = progress.flush();
        })
        .await
        .map_err(|e| CliError::Other(error_chain(&e)))?;
    writeln!(progress)?;
    let mut items_read_back = 0;
    loop {
        let r = relay
            .processor
            .step()
            .await
            .map_err(|e| CliError::Other(error_chain(&e)))?;
        items_read_back += r.items;
        if r.is_idle() {
            break;
        }
    }
    // Push until the outbox is empty, or until the shop only fails (the relay will retry it).
    loop {
        let r = relay
            .pusher
            .step()
            .await
            .map_err(|e| CliError::Other(error_chain(&e)))?;
        if relay.store.depths().outbox == 0 || (r.accepted == 0 && r.dead == 0) {
            break;
        }
    }
    relay
        .store
        .flush_now()
        .map_err(|e| CliError::Other(error_chain(&e)))?;
    let summary = ReconcileSummary {
        rows: report.rows,
        pages: report.pages,
        items_read_back,
        levels_pushed: relay.metrics.levels_pushed(),
        levels_waiting: relay.store.depths().outbox,
    };
    writeln!(
        out,
        "reconcile{}: {} Bins in {} page(s) since {}; {} item(s) read back; {} level(s) pushed; {} waiting for the shop; watermark {}",
        if full { " (full)" } else { "" },
        summary.rows,
        summary.pages,
        report.from.map(|m| m.0).unwrap_or_else(|| "the beginning".into()),
        summary.items_read_back,
        summary.levels_pushed,
        summary.levels_waiting,
        report.watermark.map(|m| m.0).unwrap_or_else(|| "(none)".into()),
    )?;
    Ok(summary)
}

/// `shoprelay shop check`: one line per rule and a verdict. Returns true when no rule failed.
pub async fn shop_check(
    settings: &Settings,
    channel: &str,
    skus: &[String],
    out: &mut impl Write,
) -> Result<bool, CliError> {
    let client = crate::shop::ShopClient::new(&settings.shop)
        .map_err(|e| CliError::Other(error_chain(&e)))?;
    writeln!(
        out,
        "checking the shop at {} (channel {channel}, SKUs {})",
        settings.shop.base_url,
        skus.join(", ")
    )?;
    let lines = crate::shop::check::run(
        &client,
        !settings.shop.signing_secrets.is_empty(),
        channel,
        skus,
    )
    .await;
    for l in &lines {
        writeln!(out, "  {}", l.render())?;
    }
    let failed = lines
        .iter()
        .filter(|l| matches!(l.outcome, crate::shop::check::Outcome::Fail(_)))
        .count();
    let skipped = lines
        .iter()
        .filter(|l| matches!(l.outcome, crate::shop::check::Outcome::Skip(_)))
        .count();
    if failed == 0 {
        writeln!(
            out,
            "verdict: the shop keeps the contract ({} passed, {skipped} skipped)",
            lines.len() - skipped
        )?;
    } else {
        writeln!(out, "verdict: {failed} rule(s) broken")?;
    }
    Ok(failed == 0)
}
