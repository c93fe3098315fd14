//! The processor: inbox events become dirty items and documents; dirty items are read back from
//! ERPNext and their sellable levels computed per channel; Delivery Notes and Shipments are read
//! back and planned into shipments; whatever changed is queued for the shop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::availability::channel_level;
use crate::channels::ChannelMap;
use crate::channels::{ChannelError, Channels};
use crate::erpnext::{ErpClient, ErpError};
use crate::metrics::Metrics;
use crate::model::{now_ms, BinRow, DocKind, ErpEvent, InboxRecord, Level};
use crate::shipments::{plan, sales_orders, DeliveryNoteDoc, ShipmentDoc};
use crate::store::{FieldCache, Store, StoreError};
use crate::telemetry::error_chain;

/// Why a processing step stopped; the work it did not finish stays in the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading from ERPNext failed")]
    Erp(#[from] ErpError),
    #[error("resolving the channels failed")]
    Channels(#[from] ChannelError),
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
    /// Bin read-back requests made.
    pub readbacks: usize,
    /// Item signals that needed no read-back: the item was read back after they arrived.
    pub skipped_signals: usize,
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

/// What the processor is configured with.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Items per read-back step.
    pub dirty_batch: usize,
    /// The Sales Order field holding the shop's order id.
    pub order_id_field: String,
    /// The Item field holding the shop SKU; None: the item code is the SKU.
    pub sku_field: Option<String>,
}

/// Turns signals into levels and shipments. Owned by the processing loop; tests call
/// [`Processor::step`].
pub struct Processor {
    store: Store,
    erp: ErpClient,
    settings: ProcessorSettings,
    channels: Arc<Channels>,
    inbox_batch: usize,
    metrics: Arc<Metrics>,
    /// Item -> the store sequence at which its last read-back began.
    read_at: Mutex<HashMap<String, u64>>,
}

/// Items whose last read-back the processor remembers before it starts over.
const READ_MEMORY: usize = 100_000;

impl Processor {
    pub fn new(
        store: Store,
        erp: ErpClient,
        settings: ProcessorSettings,
        channels: Arc<Channels>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            erp,
            channels,
            settings: ProcessorSettings {
                dirty_batch: settings.dirty_batch.max(1),
                ..settings
            },
            inbox_batch: 1000,
            metrics,
            read_at: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the Warehouse tree and resolves the channels against it (see
    /// [`Channels::refresh`]).
    pub async fn refresh_channel_map(&self) -> Result<Arc<ChannelMap>, ProcessError> {
        Ok(self.channels.refresh().await?)
    }

    /// The resolved channel map, resolving it on first use.
    pub async fn channel_map(&self) -> Result<Arc<ChannelMap>, ProcessError> {
        Ok(self.channels.map().await?)
    }

    /// One step: drain a batch of inbox events, read back dirty documents, then read back and
    /// price a batch of dirty items.
    pub async fn step(&self) -> Result<StepReport, ProcessError> {
        let map = self.channel_map().await?;
        let (events, skipped_signals) = self.drain_inbox(&map).await?;
        let mut report = StepReport {
            events,
            skipped_signals,
            ..StepReport::default()
        };
        let (documents, shipments_queued) = self.refresh_documents().await?;
        report.documents = documents;
        report.shipments_queued = shipments_queued;
        let dirty = self.store.dirty_batch(self.settings.dirty_batch).await?;
        if dirty.is_empty() {
            return Ok(report);
        }
        let items: Vec<String> = dirty.iter().map(|(i, _)| i.clone()).collect();
        // Every signal that arrives before this point is seen by the read that follows.
        let seq = self.store.sequence()?;
        let started = std::time::Instant::now();
        let rows = self.erp.bins(&items, &map.warehouses).await;
        self.metrics
            .observe_readback(started.elapsed().as_secs_f64());
        let (rows, readbacks) = rows?;
        let queued = self.apply(&map, &items, rows).await?;
        self.store.dirty_clear(&dirty).await?;
        self.record_reads(&items, seq);
        report.readbacks = readbacks;
        report.items = items.len();
        report.queued = queued;
        Ok(report)
    }

    /// True when `item` was read back after the inbox record `id` arrived.
    fn read_since(&self, item: &str, id: u64) -> bool {
        self.read_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(item)
            .is_some_and(|seq| *seq > id)
    }

    /// Remembers that `items` were read back by a read that began at `seq`. Only an optimisation:
    /// the memory is dropped when it grows large, costing at worst a read-back more.
    fn record_reads(&self, items: &[String], seq: u64) {
        let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
        if read_at.len() > READ_MEMORY {
            read_at.clear();
        }
        for item in items {
            read_at.insert(item.clone(), seq);
        }
    }

    /// Turns a batch of inbox records into dirty items and documents; returns how many records
    /// were drained and how many item signals needed no read-back.
    async fn drain_inbox(&self, map: &ChannelMap) -> Result<(usize, usize), ProcessError> {
        let batch = self.store.inbox_batch(self.inbox_batch).await?;
        if batch.is_empty() {
            return Ok((0, 0));
        }
        let mut items: BTreeSet<String> = BTreeSet::new();
        let mut docs: BTreeSet<(DocKind, String)> = BTreeSet::new();
        let mut ids = Vec::with_capacity(batch.len());
        let mut skipped = 0usize;
        for (id, bytes) in &batch {
            ids.push(*id);
            let record = match serde_json::from_slice::<InboxRecord>(bytes) {
                Ok(r) => r,
                Err(e) => {
                    // Only a record written by another version could fail here; keep it visible.
                    tracing::error!(id, error = %e, record = %String::from_utf8_lossy(bytes), "unreadable inbox record dropped");
                    continue;
                }
            };
            let keys = match record.event {
                ErpEvent::Document {
                    doc: DocKind::Item,
                    name,
                    ..
                } => {
                    // Its SKU may have changed; re-price it if it is stocked where we look.
                    self.store
                        .forget_cached_field(FieldCache::ItemSku, &name)
                        .await?;
                    if self.store.has_bins(&name).await? {
                        items.insert(name);
                    }
                    Vec::new()
                }
                ErpEvent::Document {
                    doc, name, keys, ..
                } => {
                    docs.insert((doc, name));
                    keys
                }
                ErpEvent::Stock(signal) => {
                    if let (true, Some(so)) = (signal.doctype == "Sales Order", &signal.name) {
                        // Its shop order id may have changed (po_no is allow_on_submit).
                        self.store
                            .forget_cached_field(FieldCache::OrderId, so)
                            .await?;
                    }
                    signal.keys
                }
            };
            for (item, wh) in keys {
                if map.warehouses.binary_search(&wh).is_err() {
                    tracing::debug!(item, warehouse = wh, "warehouse feeds no channel; ignored");
                } else if self.read_since(&item, *id) {
                    // Read back after this signal arrived: that read already saw its change.
                    skipped += 1;
                } else {
                    items.insert(item);
                }
            }
        }
        let items: Vec<String> = items.into_iter().collect();
        let docs: Vec<(DocKind, String)> = docs.into_iter().collect();
        self.store.inbox_into_dirty(&ids, &items, &docs).await?;
        Ok((batch.len(), skipped))
    }

    /// The shop SKU of an item: the item code, or the Item's `erpnext.sku_field` (cached).
    async fn sku(&self, item: &str) -> Result<Option<String>, ProcessError> {
        match &self.settings.sku_field {
            None => Ok(Some(item.to_owned())),
            Some(field) => {
                self.cached_field(FieldCache::ItemSku, "Item", item, field)
                    .await
            }
        }
    }

    /// One non-empty text field of a document, read over REST once and kept in the store until
    /// the document's webhook says it changed.
    async fn cached_field(
        &self,
        cache: FieldCache,
        doctype: &str,
        name: &str,
        field: &str,
    ) -> Result<Option<String>, ProcessError> {
        if let Some(cached) = self.store.cached_field(cache, name).await? {
            return Ok(cached);
        }
        let doc: Option<serde_json::Value> = self.erp.get_doc(doctype, name).await?;
        let value = doc
            .as_ref()
            .and_then(|d| d.get(field))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        self.store
            .set_cached_field(cache, name, value.as_deref())
            .await?;
        Ok(value)
    }

    /// Reads back dirty Shipments (recording their tracking and marking their delivery notes
    /// dirty), then dirty Delivery Notes, and queues the shipments they come to.
    async fn refresh_documents(&self) -> Result<(usize, usize), ProcessError> {
        let mut documents = 0;
        let mut queued = 0;
        for kind in [DocKind::Shipment, DocKind::DeliveryNote] {
            for (name, stamp) in self
                .store
                .dirty_docs_batch(kind, self.settings.dirty_batch)
                .await?
            {
                match self.refresh_document(kind, &name).await {
                    Ok(n) => queued += n,
                    Err(ProcessError::Erp(e)) if e.is_permanent() => {
                        // Waiting will not change a refusal: drop it, loudly, and go on.
                        self.metrics.document_failed();
                        tracing::error!(doctype = kind.doctype(), name, error = %error_chain(&e), "document skipped: ERPNext refuses to give what it needs");
                    }
                    Err(ProcessError::Erp(e)) => {
                        // Left dirty for the next step; stock goes on meanwhile.
                        tracing::warn!(doctype = kind.doctype(), name, error = %error_chain(&e), "document read-back failed; will retry");
                        return Ok((documents, queued));
                    }
                    Err(e) => return Err(e),
                }
                self.store.dirty_doc_clear(kind, &name, stamp).await?;
                documents += 1;
            }
        }
        Ok((documents, queued))
    }

    /// Reads one Shipment (recording its tracking, marking its notes dirty) or Delivery Note
    /// (planning its shipments); returns the shipment operations queued.
    async fn refresh_document(&self, kind: DocKind, name: &str) -> Result<usize, ProcessError> {
        match kind {
            DocKind::Shipment => {
                if let Some(doc) = self
                    .erp
                    .get_doc::<ShipmentDoc>(kind.doctype(), name)
                    .await?
                {
                    let mut notes = Vec::new();
                    for (dn, tracking) in doc.trackings() {
                        self.store.set_tracking(&dn, &tracking).await?;
                        notes.push((DocKind::DeliveryNote, dn));
                    }
                    self.store.mark_docs_dirty(&notes).await?;
                }
                Ok(0)
            }
            DocKind::DeliveryNote => match self
                .erp
                .get_doc::<DeliveryNoteDoc>(kind.doctype(), name)
                .await?
            {
                Some(dn) => self.plan_delivery_note(dn).await,
                None => Ok(0),
            },
            DocKind::Item => Ok(0),
        }
    }

    async fn plan_delivery_note(&self, mut dn: DeliveryNoteDoc) -> Result<usize, ProcessError> {
        let mut orders = BTreeMap::new();
        for so in sales_orders(&dn) {
            let id = self.order_id(&so).await?;
            orders.insert(so, id);
        }
        // Item codes become shop SKUs; rows of items without one are skipped.
        let mut without_sku = 0;
        let mut items = Vec::with_capacity(dn.items.len());
        for mut row in std::mem::take(&mut dn.items) {
            match self.sku(&row.item_code).await? {
                Some(sku) => {
                    row.item_code = sku;
                    items.push(row);
                }
                None => without_sku += 1,
            }
        }
        dn.items = items;
        // Submitted or cancelled: the time the relay first saw the note shipped, so a cancel
        // does not move the shipment's date (a draft makes no shipment).
        let shipped_at = if dn.docstatus >= 1 {
            self.store.first_shipped_at(&dn.name, now_ms()).await?
        } else {
            now_ms()
        };
        let trackings = self.store.trackings(&dn.name).await?;
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
                delivery_note = dn.name,
                rows = p.skipped_rows,
                "rows without a shop order skipped"
            );
        }
        if without_sku > 0 {
            self.metrics.items_without_sku(without_sku);
        }
        Ok(self.store.queue_shipments(&p.ops).await?)
    }

    /// The shop order id of a Sales Order (its `erpnext.order_id_field`), cached in the store.
    async fn order_id(&self, so: &str) -> Result<Option<String>, ProcessError> {
        self.cached_field(
            FieldCache::OrderId,
            "Sales Order",
            so,
            &self.settings.order_id_field,
        )
        .await
    }

    /// Stores the read-back rows and queues the levels of `items` on every channel.
    async fn apply(
        &self,
        map: &ChannelMap,
        items: &[String],
        rows: Vec<BinRow>,
    ) -> Result<usize, ProcessError> {
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
            .flat_map(|i| map.warehouses.iter().map(move |w| (i, w)))
            .filter(|(i, w)| !present.contains(&(i.as_str(), w.as_str())))
            .map(|(i, w)| (i.clone(), w.clone()))
            .collect();
        self.store.apply_bins(&rows, &absent).await?;
        let mut levels = Vec::with_capacity(items.len() * map.channels.len());
        for item in items {
            let Some(sku) = self.sku(item).await? else {
                self.metrics.items_without_sku(1);
                continue;
            };
            let mut bins: BTreeMap<String, BinRow> = BTreeMap::new();
            for wh in &map.warehouses {
                if let Some(b) = self.store.bin(item, wh).await? {
                    bins.insert(wh.clone(), b);
                }
            }
            for ch in &map.channels {
                levels.push(Level {
                    channel: ch.name.clone(),
                    sku: sku.clone(),
                    available: channel_level(ch, |w| bins.get(w)),
                });
            }
        }
        Ok(self.store.queue_levels(&levels).await?)
    }
}
