//! The sled index the order queue reads, so that a step costs in proportion to the orders it
//! attempts and not to the orders owed: per customer their owed orders in arrival order, and
//! per customer only the oldest of them (the "head", the one [`crate::store::due`] would choose) in
//! a tree ordered by the time it is due.
//!
//! Trees: `orders_by_customer` (customer \u{2192} arrival sequence: due time and order id, for
//! every owed order), `orders_heads` (customer: sequence and due time of its head),
//! `orders_due` (due time, sequence: order id, for each head). A customer key is written as
//! its length and its bytes, so that no customer's entries share a prefix with another's.
//! Every write of an order record updates them in the same transaction, under
//! `SledStore::orders_lock`; a store from before the index gets it built once at open.

use ::sled::transaction::{TransactionalTree, UnabortableTransactionError};
use serde::Deserialize;

use super::{u64_of, SledStore};
use crate::store::{OrderRecord, StoreError};

/// Set in `meta` once the index is built.
const INDEX_META: &str = "orders-queue-index-v1";

/// A customer's key prefix: its length, then its bytes.
fn customer_prefix(customer_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + customer_key.len() + 8);
    k.extend_from_slice(&(customer_key.len() as u32).to_be_bytes());
    k.extend_from_slice(customer_key.as_bytes());
    k
}

fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

fn unpair(v: &[u8]) -> (u64, u64) {
    (
        u64_of(v.get(..8).unwrap_or_default()),
        u64_of(v.get(8..).unwrap_or_default()),
    )
}

/// The oldest owed order of one customer: the one the queue attempts next for them.
#[derive(Debug, Clone)]
struct Head {
    seq: u64,
    due_ms: u64,
    order_id: Vec<u8>,
}

impl Head {
    fn key(&self) -> (u64, u64) {
        (self.seq, self.due_ms)
    }
}

/// How the index changes when one order record is written.
pub(super) struct IndexChange {
    prefix: Vec<u8>,
    entry: Vec<u8>,
    /// The entry's value (due time, order id) while the order is owed; None: not owed.
    owed: Option<Vec<u8>>,
    before: Option<Head>,
    after: Option<Head>,
}

impl IndexChange {
    /// Writes the change inside the transaction that writes the record.
    pub(super) fn apply(
        &self,
        by_customer: &TransactionalTree,
        heads: &TransactionalTree,
        due: &TransactionalTree,
    ) -> Result<(), UnabortableTransactionError> {
        match &self.owed {
            Some(v) => by_customer.insert(self.entry.as_slice(), v.as_slice())?,
            None => by_customer.remove(self.entry.as_slice())?,
        };
        let (before, after) = (
            self.before.as_ref().map(Head::key),
            self.after.as_ref().map(Head::key),
        );
        if before != after {
            if let Some(b) = &self.before {
                due.remove(&pair(b.due_ms, b.seq))?;
            }
            match &self.after {
                Some(a) => {
                    due.insert(&pair(a.due_ms, a.seq), a.order_id.as_slice())?;
                    heads.insert(self.prefix.as_slice(), &pair(a.seq, a.due_ms))?;
                }
                None => {
                    heads.remove(self.prefix.as_slice())?;
                }
            };
        }
        Ok(())
    }
}

/// The fields of a stored record the index needs (the order itself is skipped).
#[derive(Deserialize)]
struct Indexed {
    order_id: String,
    customer_key: String,
    seq: u64,
    next_attempt_ms: u64,
}

impl SledStore {
    /// Plans the index change for writing `record` (`owed`: whether it stays owed). Call it
    /// with `orders_lock` held and apply it in the transaction that writes the record. Reads
    /// at most two index entries of the customer.
    pub(super) fn index_change(
        &self,
        record: &OrderRecord,
        owed: bool,
    ) -> Result<IndexChange, StoreError> {
        let prefix = customer_prefix(&record.customer_key);
        let mut entry = prefix.clone();
        entry.extend_from_slice(&record.seq.to_be_bytes());
        let before = match self.orders_heads.get(&prefix)? {
            Some(v) => {
                let (seq, due_ms) = unpair(&v);
                Some(Head {
                    seq,
                    due_ms,
                    order_id: Vec::new(),
                })
            }
            None => None,
        };
        // The customer's oldest owed order other than this one.
        let mut other = None;
        for item in self.orders_by_customer.scan_prefix(&prefix).take(2) {
            let (k, v) = item?;
            let seq = u64_of(k.get(prefix.len()..).unwrap_or_default());
            if seq != record.seq {
                other = Some(Head {
                    seq,
                    due_ms: u64_of(v.get(..8).unwrap_or_default()),
                    order_id: v.get(8..).unwrap_or_default().to_vec(),
                });
                break;
            }
        }
        let this = owed.then(|| Head {
            seq: record.seq,
            due_ms: record.next_attempt_ms,
            order_id: record.order_id.as_bytes().to_vec(),
        });
        let after = match (this, other) {
            (Some(t), Some(o)) => Some(if o.seq < t.seq { o } else { t }),
            (t, o) => t.or(o),
        };
        let owed = owed.then(|| {
            let mut v = record.next_attempt_ms.to_be_bytes().to_vec();
            v.extend_from_slice(record.order_id.as_bytes());
            v
        });
        Ok(IndexChange {
            prefix,
            entry,
            owed,
            before,
            after,
        })
    }

    /// The due heads (at most `limit`, earliest first) and when the first one left out is due.
    /// Reads `limit` + 1 index entries and `limit` records, however many orders are owed.
    pub(super) fn due_orders_now(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<(Vec<OrderRecord>, Option<u64>), StoreError> {
        let mut batch = Vec::new();
        for item in self.orders_due.iter() {
            let (k, id) = item?;
            let (due_ms, _) = unpair(&k);
            if due_ms > now_ms {
                return Ok((batch, Some(due_ms)));
            }
            if batch.len() >= limit {
                return Ok((batch, Some(now_ms)));
            }
            if let Some(record) = self.read_record(&id)? {
                batch.push(record);
            }
        }
        Ok((batch, None))
    }

    /// The record stored under `id`, counted as read.
    pub(super) fn read_record(&self, id: &[u8]) -> Result<Option<OrderRecord>, StoreError> {
        match self.orders.get(id)? {
            Some(bytes) => {
                self.order_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(serde_json::from_slice(&bytes)?))
            }
            None => Ok(None),
        }
    }

    /// Builds the index from the owed orders once (a store written before it existed); a
    /// crash halfway builds it again at the next open.
    pub(super) fn index_owed_orders(&self) -> Result<(), StoreError> {
        if self.meta.get(INDEX_META)?.is_some() {
            return Ok(());
        }
        let _guard = self.orders_lock.lock().unwrap_or_else(|e| e.into_inner());
        for tree in [
            &self.orders_by_customer,
            &self.orders_heads,
            &self.orders_due,
        ] {
            tree.clear()?;
        }
        // Owed orders in arrival order: each customer's first is its head.
        for item in self.orders_owed.iter() {
            let (_, id) = item?;
            let Some(bytes) = self.orders.get(&id)? else {
                continue;
            };
            let r: Indexed = serde_json::from_slice(&bytes)?;
            let prefix = customer_prefix(&r.customer_key);
            let mut entry = prefix.clone();
            entry.extend_from_slice(&r.seq.to_be_bytes());
            let mut value = r.next_attempt_ms.to_be_bytes().to_vec();
            value.extend_from_slice(r.order_id.as_bytes());
            self.orders_by_customer.insert(entry, value)?;
            if self.orders_heads.get(&prefix)?.is_none() {
                self.orders_heads
                    .insert(&prefix, &pair(r.seq, r.next_attempt_ms))?;
                self.orders_due
                    .insert(pair(r.next_attempt_ms, r.seq), r.order_id.as_bytes())?;
            }
        }
        self.meta.insert(INDEX_META, b"1".as_slice())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{due, OrderBook, OrderStatus};

    fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), 60).expect("open");
        (dir, store)
    }

    async fn receive(store: &SledStore, id: &str, customer: &str, at: u64) {
        let order = serde_json::json!({"order_id": id});
        store
            .receive_order(&format!("msg_{id}"), id, customer, &order, at)
            .await
            .expect("receive");
    }

    async fn set(store: &SledStore, id: &str, status: OrderStatus, next: u64) {
        let mut r = store.order(id).await.expect("read").expect("known");
        r.status = status;
        r.next_attempt_ms = next;
        store.save_order(&r).await.expect("save");
    }

    fn ids(batch: &[OrderRecord]) -> Vec<&str> {
        batch.iter().map(|r| r.order_id.as_str()).collect()
    }

    /// The index chooses what the rule over every owed order chooses.
    async fn agrees(store: &SledStore, now: u64) {
        let (mut want, want_next) = due(store.owed_orders().await.expect("owed"), now, 100);
        let (mut got, got_next) = store.due_orders(now, 100).await.expect("due");
        want.sort_by_key(|r| r.seq);
        got.sort_by_key(|r| r.seq);
        assert_eq!(ids(&got), ids(&want), "at {now}");
        assert_eq!(got_next, want_next, "at {now}");
    }

    #[tokio::test]
    async fn the_index_follows_every_write_one_customer_at_a_time() {
        let (_dir, store) = open();
        receive(&store, "A1", "ada", 10).await;
        receive(&store, "A2", "ada", 11).await;
        receive(&store, "B1", "bob", 12).await;
        receive(&store, "C1", "cy", 13).await;
        agrees(&store, 12).await;
        let (batch, next) = store.due_orders(12, 10).await.expect("due");
        assert_eq!((ids(&batch), next), (vec!["A1", "B1"], Some(13)));
        // Ada's first is retried later: her second waits behind it.
        set(&store, "A1", OrderStatus::Placing, 10).await;
        set(&store, "A1", OrderStatus::Received, 500).await;
        agrees(&store, 100).await;
        let (batch, next) = store.due_orders(100, 10).await.expect("due");
        assert_eq!((ids(&batch), next), (vec!["B1", "C1"], Some(500)));
        // Placed: her second becomes her head, due since it arrived.
        set(&store, "A1", OrderStatus::Created, 500).await;
        set(&store, "B1", OrderStatus::Dead, 12).await;
        agrees(&store, 100).await;
        let (batch, _) = store.due_orders(100, 10).await.expect("due");
        assert_eq!(ids(&batch), ["A2", "C1"]);
        // A dead order retried is owed again; a limit of one leaves the rest for now.
        store.retry_order("B1", 200).await.expect("retry");
        agrees(&store, 300).await;
        let (batch, next) = store.due_orders(300, 1).await.expect("due");
        assert_eq!((batch.len(), next), (1, Some(300)));
        for id in ["A2", "B1", "C1"] {
            set(&store, id, OrderStatus::Created, 0).await;
        }
        assert_eq!(
            store.due_orders(300, 10).await.expect("due"),
            (vec![], None)
        );
        for tree in [
            &store.orders_by_customer,
            &store.orders_heads,
            &store.orders_due,
        ] {
            assert!(tree.is_empty(), "nothing owed, nothing indexed");
        }
    }

    #[tokio::test]
    async fn a_step_reads_what_it_attempts_however_many_are_owed() {
        let (_dir, store) = open();
        for i in 0..2_000 {
            receive(&store, &format!("O{i}"), &format!("c{}", i % 700), i).await;
        }
        let before = store.order_records_read();
        let (batch, next) = store.due_orders(5_000, 4).await.expect("due");
        assert_eq!((batch.len(), next), (4, Some(5_000)));
        assert_eq!(store.order_records_read() - before, 4);
        let before = store.order_records_read();
        let (batch, next) = store.due_orders(0, 4).await.expect("due");
        assert_eq!((ids(&batch), next), (vec!["O0"], Some(1)));
        assert_eq!(store.order_records_read() - before, 1);
    }

    #[tokio::test]
    async fn a_store_from_before_the_index_gets_it_at_open() {
        let (_dir, store) = open();
        receive(&store, "A1", "ada", 10).await;
        receive(&store, "A2", "ada", 11).await;
        receive(&store, "B1", "bob", 12).await;
        set(&store, "B1", OrderStatus::Received, 40).await;
        // As an older relay left it: records and the owed list, no queue index.
        for tree in [
            &store.orders_by_customer,
            &store.orders_heads,
            &store.orders_due,
        ] {
            tree.clear().expect("clear");
        }
        store.meta.remove(INDEX_META).expect("meta");
        assert_eq!(store.due_orders(20, 10).await.expect("due"), (vec![], None));
        // What open does.
        store.index_owed_orders().expect("index");
        agrees(&store, 20).await;
        agrees(&store, 50).await;
        let (batch, next) = store.due_orders(20, 10).await.expect("due");
        assert_eq!((ids(&batch), next), (vec!["A1"], Some(40)));
        // Built once: a later open leaves it as it is.
        store.orders_due.clear().expect("clear");
        store.index_owed_orders().expect("index");
        assert!(store.orders_due.is_empty());
    }
}
