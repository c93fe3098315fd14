//! The administrative subcommands (`erpnext setup`, `erpnext check`, `reconcile`), written to a
//! writer so that tests can read what a user would see.

use std::io::Write;

use crate::config::Settings;
use crate::erpnext::setup::{apply, check, plan, Action};
use crate::erpnext::webhooks::shipped;
use crate::erpnext::{ErpClient, ErpError};

/// Why a subcommand failed. Shown to the user as is (with its causes).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Erp(#[from] ErpError),
    #[error("`server.public_url` is required: it is the address ERPNext sends webhooks to")]
    NoPublicUrl,
    #[error("the shipped webhook documents do not parse: {0}")]
    Shipped(String),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
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
    let hooks = shipped().map_err(CliError::Shipped)?;
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

/// `shoprelay erpnext check`: prints one line per finding and a verdict. Returns true when
/// everything is right.
pub async fn erpnext_check(settings: &Settings, out: &mut impl Write) -> Result<bool, CliError> {
    let url = public_url(settings)?;
    let erp = ErpClient::new(&settings.erpnext)?;
    let hooks = shipped().map_err(CliError::Shipped)?;
    let findings = check(&erp, &hooks, url).await;
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
