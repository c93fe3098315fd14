//! The processor: inbox events become dirty items; dirty items are read back from ERPNext,
//! their sellable levels computed per channel and queued for the shop when they changed.

use std::collections::{BTreeMap, BTreeSet};

use crate::admin::Metrics;
use crate::availability::channel_level;
use crate::config::Channel;
use crate::erpnext::{ErpClient, ErpError};
use crate::inbound::erpnext::{ErpEvent, InboxRecord};
use crate::model::{BinRow, DocKind, Level};
use crate::shipments::{plan, sales_orders, DeliveryNoteDoc, ShipmentDoc};
use crate::store::{Store, StoreError};
use std::sync::Arc;

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
    /// Delivery Notes and Shipments read back.
    pub documents: usize,
    /// Shipment operations queued for the shop.
    pub shipments_queued: usize,
}

impl StepReport {
    /// True when the step found nothing to do.
    pub fn is_idle(&self) -> bool {
        self.events == 0 && self.items == 0 && self.documents == 0
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
    order_id_field: String,
    metrics: Arc<Metrics>,
}

impl Processor {
    pub fn new(
        store: Store,
        erp: ErpClient,
        channels: Vec<Channel>,
        dirty_batch: usize,
        order_id_field: String,
        metrics: Arc<Metrics>,
    ) -> Self {
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
            order_id_field,
            metrics,
        }
    }

    /// One step: drain a batch of inbox events, then read back and price a batch of dirty items.
    pub async fn step(&self) -> Result<StepReport, ProcessError> {
        let mut report = StepReport {
            events: self.drain_inbox()?,
            ..StepReport::default()
        };
        let (documents, shipments_queued) = self.refresh_documents().await?;
        report.documents = documents;
        report.shipments_queued = shipments_queued;
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
        let mut docs: BTreeSet<(DocKind, String)> = BTreeSet::new();
        let mut ids = Vec::with_capacity(batch.len());
        for (id, bytes) in &batch {
            ids.push(*id);
            match serde_json::from_slice::<InboxRecord>(bytes) {
                Ok(InboxRecord {
                    event: ErpEvent::Document { doc, name, .. },
                    ..
                }) => {
                    docs.insert((doc, name));
                }
                Ok(InboxRecord {
                    event: ErpEvent::Stock(signal),
                    ..
                }) => {
                    if let (true, Some(so)) = (signal.doctype == "Sales Order", &signal.name) {
                        // Its shop order id may have changed (po_no is allow_on_submit).
                        self.store.forget_so(so)?;
                    }
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
        let docs: Vec<(DocKind, String)> = docs.into_iter().collect();
        self.store.inbox_done(&ids, &items, &docs)?;
        Ok(batch.len())
    }

    /// Reads back dirty Shipments (recording their tracking and marking their delivery notes
    /// dirty), then dirty Delivery Notes, and queues the shipments they come to.
    async fn refresh_documents(&self) -> Result<(usize, usize), ProcessError> {
        let mut documents = 0;
        for (name, stamp) in self
            .store
            .dirty_docs_batch(DocKind::Shipment, self.dirty_batch)?
        {
            if let Some(doc) = self
                .erp
                .get_doc::<ShipmentDoc>(DocKind::Shipment.doctype(), &name)
                .await?
            {
                let mut notes = Vec::new();
                for (dn, tracking) in doc.trackings() {
                    self.store.set_tracking(&dn, &tracking)?;
                    notes.push((DocKind::DeliveryNote, dn));
                }
                self.store.mark_docs_dirty(&notes)?;
            }
            self.store
                .dirty_doc_clear(DocKind::Shipment, &name, stamp)?;
            documents += 1;
        }
        let mut queued = 0;
        for (name, stamp) in self
            .store
            .dirty_docs_batch(DocKind::DeliveryNote, self.dirty_batch)?
        {
            if let Some(dn) = self
                .erp
                .get_doc::<DeliveryNoteDoc>(DocKind::DeliveryNote.doctype(), &name)
                .await?
            {
                let mut orders = BTreeMap::new();
                for so in sales_orders(&dn) {
                    let id = self.order_id(&so).await?;
                    orders.insert(so, id);
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64;
                let shipped_at = if dn.docstatus == 1 {
                    self.store.shipped_at(&name, now)?
                } else {
                    now
                };
                let trackings = self.store.trackings(&name)?;
                let p = plan(
                    &dn,
                    |so| orders.get(so).cloned().flatten(),
                    &trackings,
                    shipped_at,
                );
                if p.is_return {
                    self.metrics.return_skipped();
                }
                if p.skipped_rows > 0 {
                    self.metrics.rows_without_order(p.skipped_rows);
                    tracing::info!(
                        delivery_note = name,
                        rows = p.skipped_rows,
                        "rows without a shop order skipped"
                    );
                }
                queued += self.store.queue_shipments(&p.ops)?;
            }
            self.store
                .dirty_doc_clear(DocKind::DeliveryNote, &name, stamp)?;
            documents += 1;
        }
        Ok((documents, queued))
    }

    /// The shop order id of a Sales Order (its `erpnext.order_id_field`), cached in the store.
    async fn order_id(&self, so: &str) -> Result<Option<String>, ProcessError> {
        if let Some(cached) = self.store.so_order_id(so)? {
            return Ok(cached);
        }
        let doc: Option<serde_json::Value> = self.erp.get_doc("Sales Order", so).await?;
        let id = doc
            .as_ref()
            .and_then(|d| d.get(&self.order_id_field))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        self.store.set_so_order_id(so, id.as_deref())?;
        Ok(id)
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
