//! The processor: inbox events become dirty items; dirty items are read back from ERPNext,
//! their sellable levels computed per channel and queued for the shop when they changed.

use std::collections::{BTreeMap, BTreeSet};

use crate::availability::channel_level;
use crate::config::Channel;
use crate::erpnext::{ErpClient, ErpError};
use crate::inbound::erpnext::{ErpEvent, InboxRecord};
use crate::model::{BinRow, Level};
use crate::store::{Store, StoreError};

/// Why a processing step stopped; the work it did not finish stays in the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading Bins back from ERPNext failed")]
    Erp(#[from] ErpError),
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// Inbox events turned into dirty items.
    pub events: usize,
    /// Items read back from ERPNext.
    pub items: usize,
    /// Levels queued for the shop (those that changed).
    pub queued: usize,
    /// Read-back rows ignored because a newer one was already stored.
    pub stale_rows: usize,
}

impl StepReport {
    /// True when the step found nothing to do.
    pub fn is_idle(&self) -> bool {
        self.events == 0 && self.items == 0
    }
}

/// Turns signals into levels. Owned by the processing loop; tests call [`Processor::step`].
pub struct Processor {
    store: Store,
    erp: ErpClient,
    channels: Vec<Channel>,
    warehouses: Vec<String>,
    inbox_batch: usize,
    dirty_batch: usize,
}

impl Processor {
    pub fn new(store: Store, erp: ErpClient, channels: Vec<Channel>, dirty_batch: usize) -> Self {
        let warehouses: BTreeSet<String> = channels
            .iter()
            .flat_map(|c| c.warehouses.iter().cloned())
            .collect();
        Self {
            store,
            erp,
            channels,
            warehouses: warehouses.into_iter().collect(),
            inbox_batch: 1000,
            dirty_batch: dirty_batch.max(1),
        }
    }

    /// One step: drain a batch of inbox events, then read back and price a batch of dirty items.
    pub async fn step(&self) -> Result<StepReport, ProcessError> {
        let mut report = StepReport {
            events: self.drain_inbox()?,
            ..StepReport::default()
        };
        let dirty = self.store.dirty_batch(self.dirty_batch)?;
        if dirty.is_empty() {
            return Ok(report);
        }
        let items: Vec<String> = dirty.iter().map(|(i, _)| i.clone()).collect();
        let rows = self.erp.bins(&items, &self.warehouses).await?;
        let (queued, stale) = self.apply(&items, rows)?;
        self.store.dirty_clear(&dirty)?;
        report.items = items.len();
        report.queued = queued;
        report.stale_rows = stale;
        Ok(report)
    }

    fn drain_inbox(&self) -> Result<usize, ProcessError> {
        let batch = self.store.inbox_batch(self.inbox_batch)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let mut items: BTreeSet<String> = BTreeSet::new();
        let mut ids = Vec::with_capacity(batch.len());
        for (id, bytes) in &batch {
            ids.push(*id);
            match serde_json::from_slice::<InboxRecord>(bytes) {
                Ok(InboxRecord {
                    event: ErpEvent::Stock(signal),
                    ..
                }) => {
                    for (item, wh) in signal.keys {
                        if self.warehouses.binary_search(&wh).is_ok() {
                            items.insert(item);
                        } else {
                            tracing::debug!(
                                item,
                                warehouse = wh,
                                "warehouse feeds no channel; ignored"
                            );
                        }
                    }
                }
                Err(e) => {
                    // Only a record written by another version could fail here; keep it visible.
                    tracing::error!(id, error = %e, record = %String::from_utf8_lossy(bytes), "unreadable inbox record dropped");
                }
            }
        }
        let items: Vec<String> = items.into_iter().collect();
        self.store.inbox_done(&ids, &items)?;
        Ok(batch.len())
    }

    /// Stores the read-back rows and queues the levels of `items` on every channel.
    fn apply(&self, items: &[String], rows: Vec<BinRow>) -> Result<(usize, usize), ProcessError> {
        let requested: BTreeSet<&str> = items.iter().map(String::as_str).collect();
        let rows: Vec<BinRow> = rows
            .into_iter()
            .filter(|r| requested.contains(r.item_code.as_str()))
            .collect();
        let present: BTreeSet<(&str, &str)> = rows
            .iter()
            .map(|r| (r.item_code.as_str(), r.warehouse.as_str()))
            .collect();
        let absent: Vec<(String, String)> = items
            .iter()
            .flat_map(|i| self.warehouses.iter().map(move |w| (i, w)))
            .filter(|(i, w)| !present.contains(&(i.as_str(), w.as_str())))
            .map(|(i, w)| (i.clone(), w.clone()))
            .collect();
        let stale = self.store.apply_bins(&rows, &absent)?;
        let mut levels = Vec::with_capacity(items.len() * self.channels.len());
        for item in items {
            let mut bins: BTreeMap<String, BinRow> = BTreeMap::new();
            for wh in &self.warehouses {
                if let Some(b) = self.store.bin(item, wh)? {
                    bins.insert(wh.clone(), b);
                }
            }
            for ch in &self.channels {
                levels.push(Level {
                    channel: ch.name.clone(),
                    sku: item.clone(),
                    available: channel_level(ch, |w| bins.get(w)),
                });
            }
        }
        Ok((self.store.queue_levels(&levels)?, stale))
    }
}
