//! `shoprelay staging-test`: the go-live test plan as one command. Against a running relay, its
//! ERPNext and its shop, it creates a clearly named test item, receives stock for it into a
//! channel warehouse, and plays the cycle a shop order goes through, checking each step where
//! it shows (ERPNext's documents and Bins, the shop's optional read endpoints):
//!
//! 1. a signed test order is placed at the relay (`POST /webhooks/shop/orders`);
//! 2. the Sales Order exists in ERPNext with the right customer, line, prices and shipping;
//! 3. ERPNext reserves the stock for it;
//! 4. the shop's level for the SKU dropped accordingly;
//! 5. a Delivery Note (mapped from the order as ERPNext maps it) and a Shipment with a carrier
//!    and a tracking number are submitted;
//! 6. the shop shows the order shipped with that tracking number.
//!
//! Then it cancels what it submitted and reverses the stock (unless `--keep`), and ends with a
//! verdict. Every wait is a poll with a deadline (`staging_test.step_timeout_secs`).
//!
//! This file is the driver: it runs the steps in order, prints each line as it completes, and
//! skips what a failed step makes pointless. Each step is a file of its own (`setup`,
//! `place_order`, `sales_order`, `reserve`, `shop_level`, `deliver`, `shipped`, `cleanup`)
//! working on the run's [`cycle::Cycle`]; `poll` waits with a deadline, `fields` reads
//! ERPNext's JSON, `diagnose` names likely causes, `report` renders the lines and the verdict.

mod cleanup;
mod cycle;
mod deliver;
pub mod diagnose;
mod fields;
pub mod guard;
pub mod order;
mod place_order;
mod poll;
pub mod report;
mod reserve;
mod sales_order;
mod setup;
mod shipped;
mod shop_level;

use std::io::Write;
use std::time::Instant;

use crate::config::Settings;
use crate::erpnext::ErpError;
use crate::shop::ShopError;
use cycle::Cycle;
use report::{Outcome, Report, StepLine};

/// How the command was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Leave every document in place for inspection.
    pub keep: bool,
    /// `--i-know-this-is-production`: run even where the guard would refuse.
    pub production_ok: bool,
}

/// Why the test could not run at all (a failing step is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error(transparent)]
    Guard(#[from] guard::GuardError),
    #[error("invalid configuration for staging-test: {0}")]
    Config(String),
    #[error("cannot set up the ERPNext client")]
    Erp(#[source] ErpError),
    #[error("cannot set up the shop client")]
    Shop(#[source] ShopError),
    #[error("cannot set up the relay client")]
    Relay(#[source] reqwest::Error),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// The test customer's email unless `staging_test.customer_email` says otherwise.
pub const DEFAULT_EMAIL: &str = "shoprelay-staging-test@example.com";
/// The prefix of every name the test gives.
pub const PREFIX: &str = "SRSTAGE";

/// The relay's base URL: `server.public_url`, else `http://` + `server.listen` (an unspecified
/// address means this machine).
pub fn relay_base(settings: &Settings) -> String {
    match settings
        .server
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let listen = settings.server.listen;
            let ip = if listen.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                listen.ip().to_string()
            };
            if listen.is_ipv6() && !listen.ip().is_unspecified() {
                format!("http://[{ip}]:{}", listen.port())
            } else {
                format!("http://{ip}:{}", listen.port())
            }
        }
    }
}

/// The titles of steps 1 to 6, in order.
const STEPS: [&str; 6] = [
    place_order::TITLE,
    sales_order::TITLE,
    reserve::TITLE,
    shop_level::TITLE,
    deliver::TITLE,
    shipped::TITLE,
];

/// Runs step `n` (1 to 6).
async fn step(cycle: &mut Cycle<'_>, n: u8) -> Outcome {
    match n {
        1 => place_order::run(cycle).await,
        2 => sales_order::run(cycle).await,
        3 => reserve::run(cycle).await,
        4 => shop_level::run(cycle).await,
        5 => deliver::run(cycle).await,
        _ => shipped::run(cycle).await,
    }
}

/// Which later steps cannot run after step `n` ended with `outcome`.
fn blocks_after(cycle: &Cycle<'_>, n: u8, outcome: &Outcome) -> Option<String> {
    let failed = matches!(outcome, Outcome::Fail { .. });
    match n {
        1 if failed => Some("not run: no order reached the relay (step 1)".into()),
        2 if cycle.sales_order.is_none() => {
            Some("not run: there is no Sales Order (step 2)".into())
        }
        5 if cycle.created.delivery_note.is_none() => {
            Some("not run: there is no Delivery Note (step 5)".into())
        }
        _ => None,
    }
}

/// Runs the cycle, printing each line to `out` as it completes; returns the report.
pub async fn run(
    settings: &Settings,
    options: &Options,
    out: &mut impl Write,
) -> Result<Report, StagingError> {
    let allowed = &settings.staging_test.allowed_sites;
    guard::check(&settings.erpnext.url, allowed, false).or_else(|refusal| {
        if options.production_ok {
            Ok(())
        } else {
            Err(refusal)
        }
    })?;
    let mut cycle = Cycle::new(settings)?;
    if guard::check(&settings.erpnext.url, allowed, false).is_err() {
        writeln!(
            out,
            "WARNING: {} is not in staging_test.allowed_sites; running because --i-know-this-is-production was given",
            settings.erpnext.url
        )?;
    }
    writeln!(
        out,
        "staging test {} against ERPNext {}, relay {}, shop {} (channel {}, warehouse {})",
        cycle.names.item_code,
        settings.erpnext.url,
        cycle.relay.base,
        settings.shop.base_url,
        cycle.channel.name,
        cycle.warehouse
    )?;
    let mut report = Report::default();

    let t = Instant::now();
    let setup = setup::run(&mut cycle).await;
    let setup_ok = setup.is_ok();
    record(
        &mut report,
        out,
        None,
        setup::TITLE,
        setup.unwrap_or_else(|o| o),
        t,
    )?;
    let mut blocked: Option<String> = (!setup_ok).then(|| "not run: the setup failed".to_owned());
    for (i, title) in STEPS.iter().enumerate() {
        let n = i as u8 + 1;
        let t = Instant::now();
        let outcome = match &blocked {
            Some(why) => Outcome::Skip(why.clone()),
            None => step(&mut cycle, n).await,
        };
        if blocked.is_none() {
            blocked = blocks_after(&cycle, n, &outcome);
        }
        record(&mut report, out, Some(n), title, outcome, t)?;
    }
    let t = Instant::now();
    let cleanup = if options.keep {
        Outcome::Skip(format!(
            "--keep: left in place for inspection: {}",
            cycle.created.describe()
        ))
    } else {
        cleanup::run(&mut cycle).await
    };
    record(&mut report, out, None, cleanup::TITLE, cleanup, t)?;
    writeln!(out, "{}", report.verdict())?;
    Ok(report)
}

/// Prints a finished step and adds it to the report.
fn record(
    report: &mut Report,
    out: &mut impl Write,
    number: Option<u8>,
    title: &str,
    outcome: Outcome,
    started: Instant,
) -> std::io::Result<()> {
    let line = StepLine {
        number,
        title: title.to_owned(),
        outcome,
        took: started.elapsed(),
    };
    writeln!(out, "{}", line.render())?;
    out.flush()?;
    report.lines.push(line);
    Ok(())
}
