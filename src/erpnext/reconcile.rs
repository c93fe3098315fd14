//! Reconcile: pages through the Bins changed since a durable watermark (minus an overlap, so
//! late commits and equal timestamps are never skipped) and marks their items dirty; the
//! processor reads them back and pushes only levels that differ from what the shop was sent.
//!
//! `modified` is the site's wall clock in its System Settings time zone, and that clock can go
//! back (the time zone corrected, a backup restored). Each pass reads the site's own time (its
//! HTTP `Date` in that zone): a watermark ahead of it, or a zone offset that shrank by more than
//! the overlap since the last pass, starts a full pass, and rows stamped ahead of it never lift
//! the watermark past it. A full pass also runs on a schedule
//! (`erpnext.full_reconcile_interval_secs`) to repair whatever else went wrong.

use std::collections::BTreeSet;

use serde_json::json;

use super::client::{ErpClient, ErpError};
use super::timezone;
use crate::model::{now_ms, BinRow, Modified};
use crate::store::{Store, StoreError};

/// Why a pass stopped; the watermark is only moved by a finished pass, so the next one covers
/// what this one missed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("reading the Bins from ERPNext failed")]
    Erp(#[from] ErpError),
}

pub(crate) const WATERMARK: &str = "reconcile/watermark";

/// When the last full pass finished (the relay's clock, ms since 1970).
const LAST_FULL: &str = "reconcile/last_full_ms";

/// The site's UTC offset (seconds) at the last pass.
const SITE_OFFSET: &str = "reconcile/site_offset_secs";

/// How far a watermark may lie ahead of the site's clock before the clock is taken to have gone
/// back: the `Date` header counts whole seconds.
const CLOCK_SLACK_SECS: u64 = 2;

/// The zone Frappe falls back to when System Settings names none (`get_system_timezone`).
const FRAPPE_DEFAULT_ZONE: &str = "Asia/Kolkata";

/// How far a pass has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub rows: u64,
    /// Bins the pass will read, when ERPNext could count them.
    pub total: Option<u64>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub pages: u64,
    pub rows: u64,
    /// Items marked for read-back (an item in several warehouses counts once per page).
    pub items: u64,
    /// The `modified` the pass started from (None: a full pass).
    pub from: Option<Modified>,
    /// The watermark stored after the pass.
    pub watermark: Option<Modified>,
    /// Whether every Bin was read.
    pub full: bool,
    /// The stored watermark lay ahead of the site's clock, or its time zone's offset shrank by
    /// more than the overlap: the pass started over from nothing.
    pub clock_went_back: bool,
    /// The site's time when the pass began, in its time zone (None: it could not be read).
    pub site_now: Option<Modified>,
}

/// Runs reconcile passes for one site and store.
pub struct Reconciler {
    erp: ErpClient,
    store: Store,
    page_size: usize,
    overlap_secs: u64,
    full_every_ms: u64,
}

impl Reconciler {
    /// `full_every_secs`: how often a pass reads every Bin (0: only when asked).
    pub fn new(
        erp: ErpClient,
        store: Store,
        page_size: usize,
        overlap_secs: u64,
        full_every_secs: u64,
    ) -> Self {
        Self {
            erp,
            store,
            page_size: page_size.max(1),
            overlap_secs,
            full_every_ms: full_every_secs.saturating_mul(1000),
        }
    }

    /// How long until the scheduled full pass is due (zero: now); None when none is scheduled.
    pub async fn next_full_in(&self) -> Result<Option<std::time::Duration>, ReconcileError> {
        if self.full_every_ms == 0 {
            return Ok(None);
        }
        let last = self.store.meta(LAST_FULL).await?.map(|v| {
            let mut b = [0u8; 8];
            let n = v.len().min(8);
            b[..n].copy_from_slice(&v[..n]);
            u64::from_be_bytes(b)
        });
        let due = last.map_or(0, |l| l.saturating_add(self.full_every_ms));
        Ok(Some(std::time::Duration::from_millis(
            due.saturating_sub(now_ms()),
        )))
    }

    /// The site's current time in its time zone and that zone's offset from UTC in seconds;
    /// None (logged) when it cannot be read, e.g. the API user may not read System Settings:
    /// the clock checks are then skipped.
    async fn site_now(&self) -> Option<(Modified, i64)> {
        let clock = match self.erp.site_clock().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the site's time zone (System Settings): a clock that goes back is left to the scheduled full pass");
                return None;
            }
        };
        let zone = clock.time_zone.as_deref().unwrap_or(FRAPPE_DEFAULT_ZONE);
        match timezone::utc_offset(zone, clock.utc_secs) {
            Ok(offset) => Some((
                Modified::from_micros((clock.utc_secs + offset) * 1_000_000),
                offset,
            )),
            Err(e) => {
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(error = %e, cause, "cannot convert the site's time: a clock that goes back is left to the scheduled full pass");
                None
            }
        }
    }

    /// The stored watermark: the newest Bin `modified` a finished pass has read.
    pub async fn watermark(&self) -> Result<Option<Modified>, ReconcileError> {
        Ok(self
            .store
            .meta(WATERMARK)
            .await?
            .map(|v| Modified(String::from_utf8_lossy(&v).into_owned())))
    }

    /// One pass over the Bins of `warehouses`: all of them when `full`, when no watermark is
    /// stored yet, when the watermark lies ahead of the site's clock or when the scheduled full
    /// pass is due; otherwise those with `modified >=` the watermark minus the overlap. Pages are
    /// read by (`modified`, `name`) with a cursor that skips only rows already read at the page
    /// edge, so a run of equal timestamps longer than a page is read whole. Memory stays bounded
    /// by one page: each page's items are marked dirty in the store at once.
    pub async fn pass(
        &self,
        warehouses: &[String],
        full: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<PassReport, ReconcileError> {
        let clock = self.site_now().await;
        let site_now = clock.as_ref().map(|(now, _)| now.clone());
        // Rows stamped beyond this lie in the site's future: its clock went back since.
        let horizon = site_now
            .as_ref()
            .and_then(|n| n.plus_secs(CLOCK_SLACK_SECS));
        let old = self.watermark().await?;
        let ahead = matches!((&old, &horizon), (Some(w), Some(h)) if w > h);
        // A time zone whose offset shrank by more than the overlap (corrected, or a summer time
        // ending) stamps rows that far behind the ones before it, however long ago that was.
        let previous_offset = self
            .store
            .meta(SITE_OFFSET)
            .await?
            .and_then(|v| String::from_utf8_lossy(&v).parse::<i64>().ok());
        let zone_went_back = matches!(
            (previous_offset, &clock),
            (Some(before), Some((_, now))) if before.saturating_sub(*now) > self.overlap_secs as i64
        );
        let clock_went_back = ahead || zone_went_back;
        if clock_went_back {
            tracing::warn!(
                watermark = old.as_ref().map(|w| w.0.as_str()),
                site_now = site_now.as_ref().map(|n| n.0.as_str()),
                offset_before = previous_offset,
                offset_now = clock.as_ref().map(|c| c.1),
                "the site's clock went back (its time zone corrected, its clock set back, or a backup restored): starting over with a full pass"
            );
        }
        let scheduled = self.next_full_in().await?.is_some_and(|d| d.is_zero());
        let full = full || clock_went_back || scheduled || old.is_none();
        let from = if full {
            None
        } else {
            old.as_ref().and_then(|w| w.minus_secs(self.overlap_secs))
        };
        let filters_from = |m: &Option<Modified>| {
            let mut f = vec![json!(["warehouse", "in", warehouses])];
            if let Some(m) = m {
                f.push(json!(["modified", ">=", m.0]));
            }
            serde_json::Value::Array(f)
        };
        let total = self.erp.count("Bin", &filters_from(&from)).await.ok();
        let mut report = PassReport {
            from: from.clone(),
            full,
            clock_went_back,
            site_now: site_now.clone(),
            ..PassReport::default()
        };
        let mut cursor = from;
        let mut skip = 0usize;
        // A full pass forgets the old watermark: it may lie in the site's future.
        let mut newest = if full { None } else { old };
        loop {
            let rows: Vec<BinRow> = self
                .erp
                .list_page(
                    "Bin",
                    &BinRow::FIELDS,
                    &filters_from(&cursor),
                    "modified asc, name asc",
                    skip,
                    self.page_size,
                )
                .await?;
            report.pages += 1;
            report.rows += rows.len() as u64;
            let items: BTreeSet<String> = rows.iter().map(|r| r.item_code.clone()).collect();
            report.items += items.len() as u64;
            self.store
                .mark_dirty(&items.into_iter().collect::<Vec<_>>())
                .await?;
            progress(Progress {
                rows: report.rows,
                total,
            });
            let Some(last) = rows.last().map(|r| r.modified.clone()) else {
                break;
            };
            if newest.as_ref().is_none_or(|n| *n < last) {
                newest = Some(last.clone());
            }
            if rows.len() < self.page_size {
                break;
            }
            if cursor.as_ref() == Some(&last) {
                skip += rows.len();
            } else {
                skip = rows.iter().rev().take_while(|r| r.modified == last).count();
                cursor = Some(last);
            }
        }
        // Rows stamped while the clock ran ahead must not lift the watermark past the site's now,
        // or every row written after the clock went back would fall below it again.
        if let (Some(n), Some(h), Some(now)) = (&newest, &horizon, &site_now) {
            if n > h {
                newest = Some(now.clone());
            }
        }
        match &newest {
            Some(w) => self.store.set_meta(WATERMARK, w.0.as_bytes()).await?,
            None => self.store.remove_meta(WATERMARK).await?,
        }
        if full {
            self.store
                .set_meta(LAST_FULL, &now_ms().to_be_bytes())
                .await?;
        }
        if let Some((_, offset)) = &clock {
            self.store
                .set_meta(SITE_OFFSET, offset.to_string().as_bytes())
                .await?;
        }
        self.store.durable().await?;
        report.watermark = newest;
        Ok(report)
    }
}
