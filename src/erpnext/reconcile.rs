//! Reconcile: pages through the Bins changed since a durable watermark (minus an overlap, so
//! late commits and equal timestamps are never skipped) and marks their items dirty; the
//! processor reads them back and pushes only levels that differ from what the shop was sent.

use std::collections::BTreeSet;

use serde_json::json;

use super::client::{ErpClient, ErpError};
use crate::model::{BinRow, Modified};
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
}

/// Runs reconcile passes for one site and store.
pub struct Reconciler {
    erp: ErpClient,
    store: Store,
    page_size: usize,
    overlap_secs: u64,
}

impl Reconciler {
    pub fn new(erp: ErpClient, store: Store, page_size: usize, overlap_secs: u64) -> Self {
        Self {
            erp,
            store,
            page_size: page_size.max(1),
            overlap_secs,
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

    /// One pass over the Bins of `warehouses`: all of them when `full` or when no watermark is
    /// stored yet, otherwise those with `modified >=` the watermark minus the overlap. Pages are
    /// read by (`modified`, `name`) with a cursor that skips only rows already read at the page
    /// edge, so a run of equal timestamps longer than a page is read whole. Memory stays bounded
    /// by one page: each page's items are marked dirty in the store at once.
    pub async fn pass(
        &self,
        warehouses: &[String],
        full: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<PassReport, ReconcileError> {
        let old = self.watermark().await?;
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
            ..PassReport::default()
        };
        let mut cursor = from;
        let mut skip = 0usize;
        let mut newest = old;
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
        if let Some(w) = &newest {
            self.store.set_meta(WATERMARK, w.0.as_bytes()).await?;
        }
        self.store.durable().await?;
        report.watermark = newest;
        Ok(report)
    }
}
