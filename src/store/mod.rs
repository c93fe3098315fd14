//! The durable store: the only module that touches sled. Dedup, inbox, dirty items, Bin rows,
//! levels, the coalescing outbox, dead letters and metadata, behind a narrow interface.
//!
//! Trees: `inbox` (id -> event record), `dedup0`/`dedup1` (two rotating generations of
//! delivery hashes), `dirty` (item_code -> stamp), `bins` (item \x1f warehouse -> BinRow),
//! `levels` (channel \x1f sku -> last value queued for the shop), `outbox` (channel \x1f sku
//! -> value still to push), `dead` (id -> DeadLetter), `meta` (name -> bytes); for shipments:
//! `dirty_docs` (kind \x1f name -> stamp), `so_orders` (Sales Order -> shop order id),
//! `tracking` (delivery note \x1f shipment -> Tracking), `shipped_at` (delivery note -> ms),
//! `ship_queued` / `ship_outbox` (order \x1f shipment -> ShipmentOp last queued / still to send).

mod commit;

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::model::{BinRow, DocKind, Level, ShipmentOp, Tracking};
use commit::GroupCommit;

const SEP: u8 = 0x1f;

/// Written by [`Store::probe`].
const PROBE_META: &str = "ready-probe";

/// A store operation failed; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the sled database failed")]
    Sled(#[from] sled::Error),
    #[error("a stored record could not be encoded or decoded")]
    Codec(#[from] serde_json::Error),
    #[error("flushing to disk failed: {0}")]
    Flush(String),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(inner) => inner,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// Document fields the relay reads over REST and keeps until the document changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldCache {
    /// An Item's `erpnext.sku_field`.
    ItemSku,
    /// A Sales Order's `erpnext.order_id_field`.
    OrderId,
}

/// What became of a delivery handed to [`Store::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored in the inbox (durable once [`Store::durable`] returns).
    New,
    /// Seen within the dedup window: nothing was stored.
    Duplicate,
}

/// What a refused push was about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadTarget {
    /// `POST /inventory/levels` for one channel.
    Levels {
        channel: String,
        levels: Vec<(String, u64)>,
    },
    /// `PUT` or `DELETE /orders/{order_id}/shipments/{shipment_id}`.
    Shipment { op: ShipmentOp },
}

/// A push the shop refused; kept for the admin with the shop's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    #[serde(flatten)]
    pub target: DeadTarget,
    pub status: Option<u16>,
    pub response: String,
    pub at_ms: u64,
}

/// Queue depths, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Depths {
    pub inbox: usize,
    pub dirty: usize,
    pub outbox: usize,
    pub dead: usize,
    pub dirty_docs: usize,
    pub shipment_outbox: usize,
}

/// The durable store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    inbox: sled::Tree,
    dedup: [sled::Tree; 2],
    dirty: sled::Tree,
    bins: sled::Tree,
    levels: sled::Tree,
    outbox: sled::Tree,
    dead: sled::Tree,
    meta: sled::Tree,
    dirty_docs: sled::Tree,
    so_orders: sled::Tree,
    tracking: sled::Tree,
    shipped_at: sled::Tree,
    ship_queued: sled::Tree,
    ship_outbox: sled::Tree,
    item_skus: sled::Tree,
    commit: GroupCommit,
    dedup_window_secs: u64,
    epoch: AtomicU64,
    rotate: Mutex<()>,
}

fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(SEP);
    k.extend_from_slice(b.as_bytes());
    k
}

fn split2(k: &[u8]) -> Option<(String, String)> {
    let pos = k.iter().position(|&b| b == SEP)?;
    Some((
        String::from_utf8_lossy(&k[..pos]).into_owned(),
        String::from_utf8_lossy(&k[pos + 1..]).into_owned(),
    ))
}

fn prefix(a: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(SEP);
    k
}

fn u64_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_be_bytes(b)
}

fn abort(e: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e.into())
}

impl Store {
    /// Opens (or creates) the database in `path`. Must be called inside a tokio runtime: it
    /// starts the group-commit task.
    pub fn open(path: &std::path::Path, dedup_window_secs: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(1000))
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        let t = |name: &str| db.open_tree(name);
        let inner = Inner {
            inbox: t("inbox")?,
            dedup: [t("dedup0")?, t("dedup1")?],
            dirty: t("dirty")?,
            bins: t("bins")?,
            levels: t("levels")?,
            outbox: t("outbox")?,
            dead: t("dead")?,
            meta: t("meta")?,
            dirty_docs: t("dirty_docs")?,
            so_orders: t("so_orders")?,
            tracking: t("tracking")?,
            shipped_at: t("shipped_at")?,
            ship_queued: t("ship_queued")?,
            ship_outbox: t("ship_outbox")?,
            item_skus: t("item_skus")?,
            commit: GroupCommit::spawn(db.clone()),
            db,
            dedup_window_secs: dedup_window_secs.max(1),
            epoch: AtomicU64::new(u64::MAX),
            rotate: Mutex::new(()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Waits until every write made before this call is on disk (shared flush).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.inner.commit.wait().await.map_err(StoreError::Flush)
    }

    /// Flushes synchronously (shutdown, command-line tools).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Makes sure the dedup generation for `epoch` is current, clearing the one that expired.
    fn rotate_dedup(&self, epoch: u64) -> Result<(), StoreError> {
        if self.inner.epoch.load(AtomicOrdering::Acquire) == epoch {
            return Ok(());
        }
        let _guard = self.inner.rotate.lock().unwrap_or_else(|p| p.into_inner());
        if self.inner.epoch.load(AtomicOrdering::Acquire) == epoch {
            return Ok(());
        }
        for (gen, wanted) in [
            (epoch % 2, epoch),
            ((epoch + 1) % 2, epoch.saturating_sub(1)),
        ] {
            let meta_key = format!("dedup_epoch/{gen}");
            let held = self.inner.meta.get(&meta_key)?.map(|v| u64_of(&v));
            if held != Some(wanted) {
                self.inner.dedup[gen as usize].clear()?;
                self.inner.meta.insert(meta_key, &wanted.to_be_bytes())?;
            }
        }
        self.inner.epoch.store(epoch, AtomicOrdering::Release);
        Ok(())
    }

    /// Stores one delivery in the inbox unless its `dedup_key` was seen within the window.
    /// Not durable until [`Store::durable`] returns.
    ///
    /// Plain single-key writes, no transaction: on sled 0.34 a transaction or batch followed by
    /// a flush costs about 15 times a plain insert (BENCHMARKS.md). The inbox entry is written
    /// before the dedup key, so a crash between the two, or two identical deliveries racing, can
    /// at worst store an event twice, never acknowledge one that is not stored; every event is an
    /// idempotent signal, so a second copy has no second effect.
    pub fn ingest(
        &self,
        dedup_key: &[u8],
        record: &[u8],
        now_secs: u64,
    ) -> Result<Ingested, StoreError> {
        let epoch = now_secs / self.inner.dedup_window_secs;
        self.rotate_dedup(epoch)?;
        let cur = &self.inner.dedup[(epoch % 2) as usize];
        let prev = &self.inner.dedup[((epoch + 1) % 2) as usize];
        if cur.contains_key(dedup_key)? || prev.contains_key(dedup_key)? {
            return Ok(Ingested::Duplicate);
        }
        let id = self.inner.db.generate_id()?;
        self.inner.inbox.insert(id.to_be_bytes(), record)?;
        cur.insert(dedup_key, &now_secs.to_be_bytes())?;
        Ok(Ingested::New)
    }

    /// The oldest inbox records, up to `limit`.
    pub fn inbox_batch(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner
            .inbox
            .iter()
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((u64_of(&k), v.to_vec()))
            })
            .collect()
    }

    /// Removes processed inbox records and marks the items and documents they named dirty, in
    /// one transaction.
    pub fn inbox_into_dirty(
        &self,
        ids: &[u64],
        dirty_items: &[String],
        dirty_docs: &[(DocKind, String)],
    ) -> Result<(), StoreError> {
        let stamp = self.inner.db.generate_id()?.to_be_bytes();
        (&self.inner.inbox, &self.inner.dirty, &self.inner.dirty_docs).transaction(
            |(inbox, dirty, docs)| {
                for item in dirty_items {
                    dirty.insert(item.as_bytes(), &stamp)?;
                }
                for (kind, name) in dirty_docs {
                    docs.insert(key2(kind.doctype(), name), &stamp)?;
                }
                for id in ids {
                    inbox.remove(&id.to_be_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    /// Marks items dirty (reconcile, admin).
    pub fn mark_dirty(&self, items: &[String]) -> Result<(), StoreError> {
        self.inbox_into_dirty(&[], items, &[])
    }

    /// Marks documents dirty (a Shipment marks its delivery notes).
    pub fn mark_docs_dirty(&self, docs: &[(DocKind, String)]) -> Result<(), StoreError> {
        self.inbox_into_dirty(&[], &[], docs)
    }

    /// Up to `limit` dirty documents of `kind` with their stamps.
    pub fn dirty_docs_batch(
        &self,
        kind: DocKind,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner
            .dirty_docs
            .scan_prefix(prefix(kind.doctype()))
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((split2(&k).map(|(_, n)| n).unwrap_or_default(), u64_of(&v)))
            })
            .collect()
    }

    /// Clears a dirty document unless it was marked again since it was read.
    pub fn dirty_doc_clear(&self, kind: DocKind, name: &str, stamp: u64) -> Result<(), StoreError> {
        let _ = self.inner.dirty_docs.compare_and_swap(
            key2(kind.doctype(), name),
            Some(&stamp.to_be_bytes()[..]),
            None::<&[u8]>,
        )?;
        Ok(())
    }

    /// True when a Bin row of `item` was ever read back (the item is stocked somewhere mapped).
    pub fn has_bins(&self, item: &str) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .bins
            .scan_prefix(prefix(item))
            .next()
            .transpose()?
            .is_some())
    }

    fn cache_tree(&self, cache: FieldCache) -> &sled::Tree {
        match cache {
            FieldCache::ItemSku => &self.inner.item_skus,
            FieldCache::OrderId => &self.inner.so_orders,
        }
    }

    /// A cached document field: None when not cached, Some(None) when the document has none.
    pub fn cached_field(
        &self,
        cache: FieldCache,
        name: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .cache_tree(cache)
            .get(name)?
            .map(|v| Some(String::from_utf8_lossy(&v).into_owned()).filter(|s| !s.is_empty())))
    }

    /// Caches a document field (None: the document has none).
    pub fn set_cached_field(
        &self,
        cache: FieldCache,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        self.cache_tree(cache)
            .insert(name, value.unwrap_or_default().as_bytes())?;
        Ok(())
    }

    /// Forgets a cached field (its document changed).
    pub fn forget_cached_field(&self, cache: FieldCache, name: &str) -> Result<(), StoreError> {
        self.cache_tree(cache).remove(name)?;
        Ok(())
    }

    /// Records what a Shipment says of a delivery note, unless a newer state is stored.
    pub fn set_tracking(&self, delivery_note: &str, t: &Tracking) -> Result<(), StoreError> {
        let key = key2(delivery_note, &t.shipment);
        if let Some(old) = self.inner.tracking.get(&key)? {
            let old: Tracking = serde_json::from_slice(&old)?;
            if old.modified > t.modified {
                return Ok(());
            }
        }
        self.inner.tracking.insert(key, serde_json::to_vec(t)?)?;
        Ok(())
    }

    /// Every Shipment state recorded for a delivery note.
    pub fn trackings(&self, delivery_note: &str) -> Result<Vec<Tracking>, StoreError> {
        self.inner
            .tracking
            .scan_prefix(prefix(delivery_note))
            .map(|r| Ok(serde_json::from_slice(&r?.1)?))
            .collect()
    }

    /// When the relay first saw `delivery_note` submitted: the first call records `now_ms`,
    /// every later one returns what was recorded.
    pub fn first_shipped_at(&self, delivery_note: &str, now_ms: u64) -> Result<u64, StoreError> {
        let prev = self.inner.shipped_at.compare_and_swap(
            delivery_note,
            None::<&[u8]>,
            Some(&now_ms.to_be_bytes()[..]),
        )?;
        Ok(match prev {
            Ok(()) => now_ms,
            Err(e) => e.current.map(|v| u64_of(&v)).unwrap_or(now_ms),
        })
    }

    /// Queues shipment operations that differ from the last one queued for their shipment
    /// (a newer one replaces one still waiting). Returns how many were queued.
    pub fn queue_shipments(&self, ops: &[ShipmentOp]) -> Result<usize, StoreError> {
        let queued =
            (&self.inner.ship_queued, &self.inner.ship_outbox).transaction(|(q, out)| {
                let mut n = 0;
                for op in ops {
                    let key = key2(&op.order_id, &op.shipment_id);
                    let bytes = serde_json::to_vec(op).map_err(abort)?;
                    if q.get(&key)?.as_deref() == Some(&bytes[..]) {
                        continue;
                    }
                    q.insert(key.clone(), bytes.clone())?;
                    out.insert(key, bytes)?;
                    n += 1;
                }
                Ok(n)
            })?;
        Ok(queued)
    }

    /// Up to `limit` shipment operations waiting to be sent.
    pub fn shipment_batch(&self, limit: usize) -> Result<Vec<ShipmentOp>, StoreError> {
        self.inner
            .ship_outbox
            .iter()
            .take(limit)
            .map(|r| Ok(serde_json::from_slice(&r?.1)?))
            .collect()
    }

    /// The shop has `op`: take it out unless a newer operation replaced it meanwhile.
    pub fn shipment_acked(&self, op: &ShipmentOp) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(op)?;
        let _ = self.inner.ship_outbox.compare_and_swap(
            key2(&op.order_id, &op.shipment_id),
            Some(bytes),
            None::<&[u8]>,
        )?;
        Ok(())
    }

    /// Up to `limit` dirty items with the stamp they were marked with.
    pub fn dirty_batch(&self, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner
            .dirty
            .iter()
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((String::from_utf8_lossy(&k).into_owned(), u64_of(&v)))
            })
            .collect()
    }

    /// Clears dirty items, unless one was marked again since it was read (then it stays dirty).
    pub fn dirty_clear(&self, items: &[(String, u64)]) -> Result<(), StoreError> {
        for (item, stamp) in items {
            let _ = self.inner.dirty.compare_and_swap(
                item.as_bytes(),
                Some(&stamp.to_be_bytes()[..]),
                None::<&[u8]>,
            )?;
        }
        Ok(())
    }

    /// The stored Bin row for (item, warehouse), if any.
    pub fn bin(&self, item: &str, warehouse: &str) -> Result<Option<BinRow>, StoreError> {
        match self.inner.bins.get(key2(item, warehouse))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Stores Bin rows read back from ERPNext; a row never replaces one with a newer `modified`.
    /// `absent` lists (item, warehouse) pairs ERPNext reported no Bin for; their rows are removed.
    /// Returns how many rows were older than what was stored (and so ignored).
    pub fn apply_bins(
        &self,
        rows: &[BinRow],
        absent: &[(String, String)],
    ) -> Result<usize, StoreError> {
        let mut stale = 0;
        for row in rows {
            let key = key2(&row.item_code, &row.warehouse);
            if let Some(old) = self.inner.bins.get(&key)? {
                let old: BinRow = serde_json::from_slice(&old)?;
                if old.modified > row.modified {
                    stale += 1;
                    continue;
                }
            }
            self.inner.bins.insert(key, serde_json::to_vec(row)?)?;
        }
        for (item, wh) in absent {
            self.inner.bins.remove(key2(item, wh))?;
        }
        Ok(stale)
    }

    /// Records computed levels; those that differ from the last value queued for the shop (or
    /// were never queued) go into the outbox, replacing any value still waiting there.
    /// Returns how many were queued.
    pub fn queue_levels(&self, levels: &[Level]) -> Result<usize, StoreError> {
        let queued = (&self.inner.levels, &self.inner.outbox).transaction(|(lv, out)| {
            let mut n = 0;
            for l in levels {
                let key = key2(&l.channel, &l.sku);
                let value = l.available.to_be_bytes();
                if lv.get(&key)?.as_deref() == Some(&value[..]) {
                    continue;
                }
                lv.insert(key.clone(), &value)?;
                out.insert(key, &value)?;
                n += 1;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(n)
        })?;
        Ok(queued)
    }

    /// Channels that have levels waiting in the outbox.
    pub fn outbox_channels(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        loop {
            let next = self.inner.outbox.range(from.clone()..).next().transpose()?;
            let Some((k, _)) = next else { break };
            let Some((channel, _)) = split2(&k) else {
                break;
            };
            from = prefix(&channel);
            from.push(0xff);
            out.push(channel);
        }
        Ok(out)
    }

    /// Up to `limit` levels waiting for `channel`.
    pub fn outbox_batch(
        &self,
        channel: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner
            .outbox
            .scan_prefix(prefix(channel))
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                let sku = split2(&k).map(|(_, s)| s).unwrap_or_default();
                Ok((sku, u64_of(&v)))
            })
            .collect()
    }

    /// The shop accepted these levels: remove them from the outbox unless a newer value was
    /// queued meanwhile (that one stays and is pushed next).
    pub fn outbox_acked(&self, channel: &str, sent: &[(String, u64)]) -> Result<(), StoreError> {
        for (sku, value) in sent {
            let _ = self.inner.outbox.compare_and_swap(
                key2(channel, sku),
                Some(&value.to_be_bytes()[..]),
                None::<&[u8]>,
            )?;
        }
        Ok(())
    }

    /// The shop refused a push for good: keep it as a dead letter and take it out of the
    /// outbox (unless something newer replaced it). What was queued stays recorded, so the same
    /// value is not sent again until it changes or an admin retries the letter.
    pub fn dead_letter(
        &self,
        target: DeadTarget,
        status: Option<u16>,
        response: &str,
        at_ms: u64,
    ) -> Result<u64, StoreError> {
        let id = self.inner.db.generate_id()?;
        let sent: Vec<(Vec<u8>, Vec<u8>)> = match &target {
            DeadTarget::Levels { channel, levels } => levels
                .iter()
                .map(|(sku, v)| (key2(channel, sku), v.to_be_bytes().to_vec()))
                .collect(),
            DeadTarget::Shipment { op } => {
                vec![(key2(&op.order_id, &op.shipment_id), serde_json::to_vec(op)?)]
            }
        };
        let outbox = match &target {
            DeadTarget::Levels { .. } => &self.inner.outbox,
            DeadTarget::Shipment { .. } => &self.inner.ship_outbox,
        };
        let letter = DeadLetter {
            id,
            target,
            status,
            response: response.chars().take(4096).collect(),
            at_ms,
        };
        let bytes = serde_json::to_vec(&letter)?;
        (outbox, &self.inner.dead).transaction(|(out, dead)| {
            for (key, value) in &sent {
                if out.get(key)?.as_deref() == Some(&value[..]) {
                    out.remove(key.clone())?;
                }
            }
            dead.insert(&id.to_be_bytes(), bytes.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(id)
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner
            .dead
            .iter()
            .map(|r| {
                let (_, v) = r?;
                Ok(serde_json::from_slice(&v)?)
            })
            .collect()
    }

    /// Takes a dead letter out; with `requeue`, what it was about goes back into the outbox
    /// with its current value (never the letter's possibly outdated one). Returns false when
    /// there is no such id.
    pub fn resolve_dead(&self, id: u64, requeue: bool) -> Result<bool, StoreError> {
        let key = id.to_be_bytes();
        let Some(bytes) = self.inner.dead.get(key)? else {
            return Ok(false);
        };
        let letter: DeadLetter = serde_json::from_slice(&bytes)?;
        let (keys, queued, outbox): (Vec<Vec<u8>>, _, _) = match &letter.target {
            DeadTarget::Levels { channel, levels } => (
                levels.iter().map(|(sku, _)| key2(channel, sku)).collect(),
                &self.inner.levels,
                &self.inner.outbox,
            ),
            DeadTarget::Shipment { op } => (
                vec![key2(&op.order_id, &op.shipment_id)],
                &self.inner.ship_queued,
                &self.inner.ship_outbox,
            ),
        };
        let done = (&self.inner.dead, queued, outbox).transaction(|(dead, queued, out)| {
            if dead.remove(&key)?.is_none() {
                return Ok(false);
            }
            if requeue {
                for k in &keys {
                    if let (None, Some(current)) = (out.get(k)?, queued.get(k)?) {
                        out.insert(k.clone(), current)?;
                    }
                }
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(true)
        })?;
        Ok(done)
    }

    /// Queue depths.
    pub fn depths(&self) -> Depths {
        Depths {
            inbox: self.inner.inbox.len(),
            dirty: self.inner.dirty.len(),
            outbox: self.inner.outbox.len(),
            dead: self.inner.dead.len(),
            dirty_docs: self.inner.dirty_docs.len(),
            shipment_outbox: self.inner.ship_outbox.len(),
        }
    }

    /// Writes and reads back a probe record: an error means the store cannot take writes.
    pub fn probe(&self) -> Result<(), StoreError> {
        let now = crate::model::now_ms().to_be_bytes();
        self.inner.meta.insert(PROBE_META, &now)?;
        self.inner.meta.get(PROBE_META)?;
        Ok(())
    }

    /// A metadata value (watermarks, counters).
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Removes a metadata value.
    pub fn remove_meta(&self, name: &str) -> Result<(), StoreError> {
        self.inner.meta.remove(name)?;
        Ok(())
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.meta.insert(name, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(channel: &str, sku: &str, available: u64) -> Level {
        Level {
            channel: channel.into(),
            sku: sku.into(),
            available,
        }
    }

    #[tokio::test]
    async fn duplicates_are_stored_once_and_windows_rotate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10).expect("open");
        assert_eq!(
            store.ingest(b"k1", b"a", 100).expect("ingest"),
            Ingested::New
        );
        assert_eq!(
            store.ingest(b"k1", b"a", 105).expect("ingest"),
            Ingested::Duplicate
        );
        // Next window: still remembered (previous generation).
        assert_eq!(
            store.ingest(b"k1", b"a", 112).expect("ingest"),
            Ingested::Duplicate
        );
        // Two windows later: forgotten.
        assert_eq!(
            store.ingest(b"k1", b"a", 131).expect("ingest"),
            Ingested::New
        );
        store.durable().await.expect("flush");
        assert_eq!(store.inbox_batch(10).expect("batch").len(), 2);
    }

    #[tokio::test]
    async fn outbox_coalesces_and_keeps_newer_values_on_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60).expect("open");
        assert_eq!(
            store
                .queue_levels(&[level("web", "A", 3), level("web", "B", 0)])
                .expect("q"),
            2
        );
        assert_eq!(
            store.queue_levels(&[level("web", "A", 3)]).expect("q"),
            0,
            "unchanged"
        );
        assert_eq!(store.queue_levels(&[level("web", "A", 5)]).expect("q"), 1);
        let batch = store.outbox_batch("web", 10).expect("batch");
        assert_eq!(batch, vec![("A".to_owned(), 5), ("B".to_owned(), 0)]);
        store.queue_levels(&[level("web", "A", 7)]).expect("q");
        store.outbox_acked("web", &batch).expect("ack");
        assert_eq!(
            store.outbox_batch("web", 10).expect("batch"),
            vec![("A".to_owned(), 7)]
        );
        assert_eq!(
            store.outbox_channels().expect("channels"),
            vec!["web".to_owned()]
        );
    }

    #[tokio::test]
    async fn dead_letters_can_be_requeued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60).expect("open");
        store.queue_levels(&[level("web", "A", 4)]).expect("q");
        let sent = store.outbox_batch("web", 10).expect("batch");
        let id = store
            .dead_letter(
                DeadTarget::Levels {
                    channel: "web".into(),
                    levels: sent.clone(),
                },
                Some(400),
                "bad sku",
                1,
            )
            .expect("dead");
        assert_eq!(store.depths().outbox, 0);
        // The refused value is not queued again by an unchanged computation...
        assert_eq!(store.queue_levels(&[level("web", "A", 4)]).expect("q"), 0);
        // ...and a retry sends the current value, not the letter's.
        store.queue_levels(&[level("web", "A", 9)]).expect("q");
        store
            .outbox_acked("web", &[("A".to_owned(), 9)])
            .expect("ack");
        assert!(store.resolve_dead(id, true).expect("retry"));
        assert_eq!(
            store.outbox_batch("web", 10).expect("batch"),
            vec![("A".to_owned(), 9)]
        );
        assert!(!store.resolve_dead(id, true).expect("gone"));
    }

    #[tokio::test]
    async fn an_older_bin_row_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60).expect("open");
        let row = |qty: f64, modified: &str| BinRow {
            item_code: "A".into(),
            warehouse: "W".into(),
            actual_qty: qty,
            modified: crate::model::Modified(modified.into()),
            ..BinRow::default()
        };
        store
            .apply_bins(&[row(5.0, "2026-01-01 10:00:01")], &[])
            .expect("apply");
        assert_eq!(
            store
                .apply_bins(&[row(9.0, "2026-01-01 10:00:00.5")], &[])
                .expect("apply"),
            1
        );
        assert_eq!(
            store.bin("A", "W").expect("bin").map(|b| b.actual_qty),
            Some(5.0)
        );
        store
            .apply_bins(&[row(6.0, "2026-01-01 10:00:01")], &[])
            .expect("apply");
        assert_eq!(
            store.bin("A", "W").expect("bin").map(|b| b.actual_qty),
            Some(6.0)
        );
    }
}
