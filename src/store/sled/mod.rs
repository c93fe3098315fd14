//! The sled backend: the only code that touches sled. One tree per record kind; each role
//! trait is implemented in the file of its name here (`inbox.rs`, `dirty.rs`, ...), beside the
//! trait's definition one level up; this file holds the database, the key encoding, the
//! counters behind [`Depths`] and the write-failure seam, `commit.rs` the group commit and
//! `dedup.rs` the rotating dedup generations.
//!
//! Trees: `inbox` (id -> event record), `dedup0`/`dedup1` (two rotating generations of
//! delivery hashes), `dirty` (item_code -> stamp), `dirty_docs` (doctype \x1f name -> stamp),
//! `bins` (item \x1f warehouse -> BinRow), `item_skus` and `so_orders` (cached document
//! fields), `tracking` (delivery note \x1f shipment -> Tracking), `shipped_at` (delivery note ->
//! ms); per outbox kind a "last queued" tree and a "pending" tree (group \x1f key -> value):
//! `levels`/`outbox` for levels (channel \x1f sku -> u64), `ship_queued`/`ship_outbox` for
//! shipments (order \x1f shipment -> ShipmentOp); `outbox_retry` (kind \x1f group \x1f key ->
//! RetryState); `dead` (id -> DeadLetter); `meta` (name -> bytes); `orders` (order_id ->
//! OrderRecord), `order_hooks` (webhook-id -> order id and time), `orders_owed` (arrival
//! sequence -> order_id), `orders_dead` (order_id -> empty), and the queue index of owed orders
//! (`orders_by_customer`, `orders_heads`, `orders_due`; see `order_queue.rs`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

mod commit;
mod dead;
mod dedup;
mod dirty;
mod inbox;
mod meta;
mod order_queue;
mod orders;
mod outbox;
mod readback;

use commit::GroupCommit;

use super::{Depths, Durability, OutboxKind, StoreError, StoreFuture};

const SEP: u8 = 0x1f;

/// Written by [`Durability::probe`].
const PROBE_META: &str = "ready-probe";

impl From<::sled::Error> for StoreError {
    fn from(e: ::sled::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl From<::sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: ::sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            ::sled::transaction::TransactionError::Abort(inner) => inner,
            ::sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
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

/// Entries per queue, kept as writes happen (counted once, at open).
#[derive(Default)]
struct Counters {
    inbox: AtomicI64,
    dirty: AtomicI64,
    dirty_docs: AtomicI64,
    outbox: [AtomicI64; 2],
    dead: AtomicI64,
}

impl Counters {
    fn add(counter: &AtomicI64, delta: i64) {
        if delta != 0 {
            counter.fetch_add(delta, Ordering::Relaxed);
        }
    }
}

fn depth(c: &AtomicI64) -> usize {
    c.load(Ordering::Relaxed).max(0) as usize
}

/// The two trees of one outbox kind.
struct OutboxTrees {
    /// The last value queued per (group, key): an unchanged value is not queued again.
    queued: ::sled::Tree,
    /// What is still to be sent per (group, key).
    pending: ::sled::Tree,
}

/// The sled database and its trees.
pub struct SledStore {
    db: ::sled::Db,
    inbox: ::sled::Tree,
    dedup: [::sled::Tree; 2],
    dirty: ::sled::Tree,
    dirty_docs: ::sled::Tree,
    bins: ::sled::Tree,
    so_orders: ::sled::Tree,
    item_skus: ::sled::Tree,
    tracking: ::sled::Tree,
    shipped_at: ::sled::Tree,
    outboxes: [OutboxTrees; 2],
    retry: ::sled::Tree,
    dead: ::sled::Tree,
    meta: ::sled::Tree,
    /// Shop orders (see `orders.rs`): records, webhook ids, owed and dead indexes.
    orders: ::sled::Tree,
    order_hooks: ::sled::Tree,
    orders_owed: ::sled::Tree,
    orders_dead: ::sled::Tree,
    /// The queue index of owed orders (see `order_queue.rs`).
    orders_by_customer: ::sled::Tree,
    orders_heads: ::sled::Tree,
    orders_due: ::sled::Tree,
    /// Held by every write of an order record, so the queue index is planned and written
    /// without a race.
    orders_lock: Mutex<()>,
    /// Order records read (the test seam [`crate::store::OrderBook::order_records_read`]).
    order_reads: AtomicU64,
    counters: Counters,
    dedup_window_secs: u64,
    epoch: AtomicU64,
    rotate: Mutex<()>,
    commit: GroupCommit,
    fail_writes: AtomicBool,
}

impl SledStore {
    /// Opens (or creates) the database in `path` and counts its queues once. Must be called
    /// inside a tokio runtime: it starts the group-commit task.
    pub fn open(path: &std::path::Path, dedup_window_secs: u64) -> Result<Self, StoreError> {
        let db = ::sled::Config::new()
            .path(path)
            .mode(::sled::Mode::HighThroughput)
            .flush_every_ms(Some(1000))
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        let t = |name: &str| db.open_tree(name);
        let store = SledStore {
            inbox: t("inbox")?,
            dedup: [t("dedup0")?, t("dedup1")?],
            dirty: t("dirty")?,
            dirty_docs: t("dirty_docs")?,
            bins: t("bins")?,
            so_orders: t("so_orders")?,
            item_skus: t("item_skus")?,
            tracking: t("tracking")?,
            shipped_at: t("shipped_at")?,
            outboxes: [
                OutboxTrees {
                    queued: t("levels")?,
                    pending: t("outbox")?,
                },
                OutboxTrees {
                    queued: t("ship_queued")?,
                    pending: t("ship_outbox")?,
                },
            ],
            retry: t("outbox_retry")?,
            dead: t("dead")?,
            meta: t("meta")?,
            orders: t("orders")?,
            order_hooks: t("order_hooks")?,
            orders_owed: t("orders_owed")?,
            orders_dead: t("orders_dead")?,
            orders_by_customer: t("orders_by_customer")?,
            orders_heads: t("orders_heads")?,
            orders_due: t("orders_due")?,
            orders_lock: Mutex::new(()),
            order_reads: AtomicU64::new(0),
            counters: Counters::default(),
            dedup_window_secs: dedup_window_secs.max(1),
            epoch: AtomicU64::new(u64::MAX),
            rotate: Mutex::new(()),
            commit: GroupCommit::spawn(db.clone()),
            db,
            fail_writes: AtomicBool::new(false),
        };
        let c = &store.counters;
        for (counter, tree) in [
            (&c.inbox, &store.inbox),
            (&c.dirty, &store.dirty),
            (&c.dirty_docs, &store.dirty_docs),
            (&c.outbox[0], &store.outboxes[0].pending),
            (&c.outbox[1], &store.outboxes[1].pending),
            (&c.dead, &store.dead),
        ] {
            counter.store(tree.len() as i64, Ordering::Relaxed);
        }
        store.index_owed_orders()?;
        Ok(store)
    }

    /// Fails when writes are made to fail on purpose (the test seam); called before each write.
    fn writable(&self) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::Relaxed) {
            Err(StoreError::Injected)
        } else {
            Ok(())
        }
    }

    fn outbox(&self, kind: OutboxKind) -> &OutboxTrees {
        &self.outboxes[kind.index()]
    }

    fn outbox_counter(&self, kind: OutboxKind) -> &AtomicI64 {
        &self.counters.outbox[kind.index()]
    }
}

impl Durability for SledStore {
    fn durable(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.writable()?;
            self.commit.wait().await.map_err(StoreError::Flush)
        })
    }

    fn flush_now(&self) -> Result<(), StoreError> {
        self.writable()?;
        self.db.flush()?;
        Ok(())
    }

    fn depths(&self) -> Depths {
        let c = &self.counters;
        Depths {
            inbox: depth(&c.inbox),
            dirty: depth(&c.dirty),
            outbox: depth(&c.outbox[OutboxKind::Levels.index()]),
            dead: depth(&c.dead),
            dirty_docs: depth(&c.dirty_docs),
            shipment_outbox: depth(&c.outbox[OutboxKind::Shipments.index()]),
        }
    }

    fn probe(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.writable()?;
            let now = crate::model::now_ms().to_be_bytes();
            self.meta.insert(PROBE_META, &now)?;
            self.durable().await
        })
    }

    fn inject_write_failure(&self, on: bool) {
        self.fail_writes.store(on, Ordering::Relaxed);
    }
}
