//! The processor: inbox events become dirty items and documents; dirty items are read back from
//! ERPNext and their sellable levels computed per channel; Delivery Notes and Shipments are read
//! back and planned into shipments; whatever changed is queued for the shop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::admin::Metrics;
use crate::availability::channel_level;
use crate::config::Channel;
use crate::erpnext::{ErpClient, ErpError};
use crate::inbound::erpnext::{ErpEvent, InboxRecord};
use crate::model::{BinRow, DocKind, Level};
use crate::shipments::{plan, sales_orders, DeliveryNoteDoc, ShipmentDoc};
use crate::store::{FieldCache, Store, StoreError};

/// Why a processing step stopped; the work it did not finish stays in the store.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading from ERPNext failed")]
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

/// What the processor is configured with.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// The channels to start with.
    pub channels: Vec<Channel>,
    /// Items per read-back step.
    pub dirty_batch: usize,
    /// The Sales Order field holding the shop's order id.
    pub order_id_field: String,
    /// The Item field holding the shop SKU; None: the item code is the SKU.
    pub sku_field: Option<String>,
}

/// The channels with group warehouses replaced by their leaf warehouses, and every warehouse
/// that feeds a channel (sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMap {
    pub channels: Vec<Channel>,
    pub warehouses: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct WarehouseRow {
    name: String,
    #[serde(default)]
    is_group: i64,
    #[serde(default)]
    parent_warehouse: Option<String>,
}

/// The Warehouse tree last read from ERPNext.
const WAREHOUSE_TREE_META: &str = "warehouse_tree";

/// Channels set through the admin API; they replace the file's `[[channels]]` until removed.
pub(crate) const CHANNELS_OVERRIDE_META: &str = "channels_override";

impl ChannelMap {
    /// Resolves `configured` against ERPNext's Warehouse tree: a group warehouse stands for
    /// every leaf below it; a name ERPNext does not list is kept as it is.
    fn resolve(configured: &[Channel], tree: &[WarehouseRow]) -> Self {
        let mut children: BTreeMap<&str, Vec<&WarehouseRow>> = BTreeMap::new();
        for w in tree {
            if let Some(p) = w.parent_warehouse.as_deref() {
                children.entry(p).or_default().push(w);
            }
        }
        let is_group: BTreeMap<&str, bool> = tree
            .iter()
            .map(|w| (w.name.as_str(), w.is_group == 1))
            .collect();
        let leaves = |root: &str| -> Vec<String> {
            if is_group.get(root) != Some(&true) {
                return vec![root.to_owned()];
            }
            let mut out = Vec::new();
            let mut stack = vec![root];
            while let Some(w) = stack.pop() {
                for c in children.get(w).map(Vec::as_slice).unwrap_or_default() {
                    if c.is_group == 1 {
                        stack.push(&c.name);
                    } else {
                        out.push(c.name.clone());
                    }
                }
            }
            out.sort();
            out
        };
        let channels: Vec<Channel> = configured
            .iter()
            .map(|c| {
                let mut whs: Vec<String> = c.warehouses.iter().flat_map(|w| leaves(w)).collect();
                whs.sort();
                whs.dedup();
                Channel {
                    warehouses: whs,
                    ..c.clone()
                }
            })
            .collect();
        let warehouses: BTreeSet<String> = channels
            .iter()
            .flat_map(|c| c.warehouses.iter().cloned())
            .collect();
        Self {
            channels,
            warehouses: warehouses.into_iter().collect(),
        }
    }
}

/// Turns signals into levels and shipments. Owned by the processing loop; tests call
/// [`Processor::step`].
pub struct Processor {
    store: Store,
    erp: ErpClient,
    settings: ProcessorSettings,
    channels: RwLock<Vec<Channel>>,
    map: RwLock<Option<Arc<ChannelMap>>>,
    inbox_batch: usize,
    metrics: Arc<Metrics>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Processor {
    pub fn new(
        store: Store,
        erp: ErpClient,
        settings: ProcessorSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            erp,
            channels: RwLock::new(settings.channels.clone()),
            settings: ProcessorSettings {
                dirty_batch: settings.dirty_batch.max(1),
                ..settings
            },
            map: RwLock::new(None),
            inbox_batch: 1000,
            metrics,
        }
    }

    /// Reads the Warehouse tree and resolves the channels against it (at start, on each
    /// reconcile pass, when the mapping changes). The tree is kept in the store: when ERPNext
    /// cannot be read, the last tree read is used; with none stored, the error is returned and
    /// nothing is computed. A 403 (the API user may not read Warehouse) resolves against an
    /// empty tree: the names are used as configured.
    pub async fn refresh_channel_map(&self) -> Result<Arc<ChannelMap>, ProcessError> {
        let fields = ["name", "is_group", "parent_warehouse"];
        let tree = match self
            .erp
            .list_all::<WarehouseRow>("Warehouse", &fields, &serde_json::json!([]))
            .await
        {
            Ok(tree) => {
                self.store.set_meta(
                    WAREHOUSE_TREE_META,
                    &serde_json::to_vec(&tree).map_err(StoreError::from)?,
                )?;
                tree
            }
            // Waiting will not change a refusal: use the names as configured, and say so.
            Err(ErpError::Status { status: 403, .. }) => {
                tracing::warn!("the API user may not read Warehouse: group warehouses in channels are not expanded");
                Vec::new()
            }
            Err(e) => match self.store.meta(WAREHOUSE_TREE_META)? {
                Some(bytes) => {
                    tracing::warn!(error = %e, "cannot read the Warehouse tree; using the last one read");
                    serde_json::from_slice(&bytes).map_err(StoreError::from)?
                }
                None => {
                    *self.map.write().unwrap_or_else(|p| p.into_inner()) = None;
                    return Err(e.into());
                }
            },
        };
        let configured = self.channels();
        let resolved = Arc::new(ChannelMap::resolve(&configured, &tree));
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = Some(resolved.clone());
        Ok(resolved)
    }

    /// The channels as configured (the file's, or those set through the admin API).
    pub fn channels(&self) -> Vec<Channel> {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The channel map in use, if resolved.
    pub fn current_map(&self) -> Option<Arc<ChannelMap>> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the channels and resolves them. On an error the new channels are kept and
    /// resolved on the next step.
    pub async fn set_channels(
        &self,
        channels: Vec<Channel>,
    ) -> Result<Arc<ChannelMap>, ProcessError> {
        *self.channels.write().unwrap_or_else(|p| p.into_inner()) = channels;
        self.refresh_channel_map().await
    }

    /// The resolved channel map, resolving it on first use.
    pub async fn channel_map(&self) -> Result<Arc<ChannelMap>, ProcessError> {
        let current = self.map.read().unwrap_or_else(|p| p.into_inner()).clone();
        match current {
            Some(m) => Ok(m),
            None => self.refresh_channel_map().await,
        }
    }

    /// One step: drain a batch of inbox events, read back dirty documents, then read back and
    /// price a batch of dirty items.
    pub async fn step(&self) -> Result<StepReport, ProcessError> {
        let map = self.channel_map().await?;
        let mut report = StepReport {
            events: self.drain_inbox(&map)?,
            ..StepReport::default()
        };
        let (documents, shipments_queued) = self.refresh_documents().await?;
        report.documents = documents;
        report.shipments_queued = shipments_queued;
        let dirty = self.store.dirty_batch(self.settings.dirty_batch)?;
        if dirty.is_empty() {
            return Ok(report);
        }
        let items: Vec<String> = dirty.iter().map(|(i, _)| i.clone()).collect();
        let rows = self.erp.bins(&items, &map.warehouses).await?;
        let (queued, stale) = self.apply(&map, &items, rows).await?;
        self.store.dirty_clear(&dirty)?;
        report.items = items.len();
        report.queued = queued;
        report.stale_rows = stale;
        Ok(report)
    }

    fn drain_inbox(&self, map: &ChannelMap) -> Result<usize, ProcessError> {
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
                    event:
                        ErpEvent::Document {
                            doc: DocKind::Item,
                            name,
                            ..
                        },
                    ..
                }) => {
                    // Its SKU may have changed; re-price it if it is stocked where we look.
                    self.store.forget_cached_field(FieldCache::ItemSku, &name)?;
                    if self.store.has_bins(&name)? {
                        items.insert(name);
                    }
                }
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
                        self.store.forget_cached_field(FieldCache::OrderId, so)?;
                    }
                    for (item, wh) in signal.keys {
                        if map.warehouses.binary_search(&wh).is_ok() {
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
        if let Some(cached) = self.store.cached_field(cache, name)? {
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
        self.store.set_cached_field(cache, name, value.as_deref())?;
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
                .dirty_docs_batch(kind, self.settings.dirty_batch)?
            {
                match self.refresh_document(kind, &name).await {
                    Ok(n) => queued += n,
                    Err(ProcessError::Erp(e)) if e.is_permanent() => {
                        // Waiting will not change a refusal: drop it, loudly, and go on.
                        self.metrics.document_failed();
                        tracing::error!(doctype = kind.doctype(), name, error = %e, "document skipped: ERPNext refuses to give what it needs");
                    }
                    Err(ProcessError::Erp(e)) => {
                        // Left dirty for the next step; stock goes on meanwhile.
                        tracing::warn!(doctype = kind.doctype(), name, error = %e, "document read-back failed; will retry");
                        return Ok((documents, queued));
                    }
                    Err(e) => return Err(e),
                }
                self.store.dirty_doc_clear(kind, &name, stamp)?;
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
                        self.store.set_tracking(&dn, &tracking)?;
                        notes.push((DocKind::DeliveryNote, dn));
                    }
                    self.store.mark_docs_dirty(&notes)?;
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
        let shipped_at = if dn.docstatus == 1 {
            self.store.shipped_at(&dn.name, now_ms())?
        } else {
            now_ms()
        };
        let trackings = self.store.trackings(&dn.name)?;
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
        Ok(self.store.queue_shipments(&p.ops)?)
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
    ) -> Result<(usize, usize), ProcessError> {
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
        let stale = self.store.apply_bins(&rows, &absent)?;
        let mut levels = Vec::with_capacity(items.len() * map.channels.len());
        for item in items {
            let Some(sku) = self.sku(item).await? else {
                self.metrics.items_without_sku(1);
                continue;
            };
            let mut bins: BTreeMap<String, BinRow> = BTreeMap::new();
            for wh in &map.warehouses {
                if let Some(b) = self.store.bin(item, wh)? {
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
        Ok((self.store.queue_levels(&levels)?, stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;

    #[test]
    fn group_warehouses_stand_for_their_leaves() {
        let row = |name: &str, parent: Option<&str>, group: bool| WarehouseRow {
            name: name.into(),
            is_group: i64::from(group),
            parent_warehouse: parent.map(str::to_owned),
        };
        let tree = [
            row("All - ACME", None, true),
            row("Berlin - ACME", Some("All - ACME"), true),
            row("Berlin A - ACME", Some("Berlin - ACME"), false),
            row("Berlin B - ACME", Some("Berlin - ACME"), false),
            row("Munich - ACME", Some("All - ACME"), false),
            row("Empty - ACME", Some("All - ACME"), true),
        ];
        let ch = |name: &str, whs: &[&str]| Channel {
            name: name.into(),
            warehouses: whs.iter().map(|s| s.to_string()).collect(),
            policy: Policy::Actual,
            buffer: 0.0,
        };
        let map = ChannelMap::resolve(
            &[
                ch("web", &["Berlin - ACME", "Munich - ACME"]),
                ch("all", &["All - ACME", "Unknown"]),
            ],
            &tree,
        );
        assert_eq!(
            map.channels[0].warehouses,
            ["Berlin A - ACME", "Berlin B - ACME", "Munich - ACME"]
        );
        assert_eq!(
            map.channels[1].warehouses,
            [
                "Berlin A - ACME",
                "Berlin B - ACME",
                "Munich - ACME",
                "Unknown"
            ]
        );
        assert_eq!(map.warehouses.len(), 4);
    }
}
