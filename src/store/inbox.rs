//! The inbox: verified deliveries, deduplicated by body hash, kept until the processor turned
//! them into dirty work.

use ::sled::transaction::{ConflictableTransactionError, Transactional};

use super::sled_backend::{key2, u64_of, Counters, SledStore};
use super::{ready, StoreError, StoreFuture};
use crate::model::DocKind;

/// What became of a delivery handed to [`Inbox::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored in the inbox (durable once [`super::Durability::durable`] returns).
    New,
    /// Seen within the dedup window: nothing was stored.
    Duplicate,
}

/// Deliveries in, processed records out.
pub trait Inbox: Send + Sync {
    /// Stores one delivery unless its `dedup_key` was seen within the window. Not durable until
    /// [`super::Durability::durable`] returns. At worst an event is stored twice (a crash between
    /// the record and its key, two identical deliveries racing), never acknowledged unstored;
    /// every event is an idempotent signal.
    fn ingest<'a>(
        &'a self,
        dedup_key: &'a [u8],
        record: &'a [u8],
        now_secs: u64,
    ) -> StoreFuture<'a, Ingested>;

    /// A number greater than every id handed out before (inbox records' included): the relay's
    /// own order of events and reads.
    fn sequence(&self) -> Result<u64, StoreError>;

    /// The oldest records, up to `limit`, with their ids.
    fn inbox_batch(&self, limit: usize) -> StoreFuture<'_, Vec<(u64, Vec<u8>)>>;

    /// Removes processed records and marks the items and documents they named dirty, in one
    /// transaction.
    fn inbox_into_dirty<'a>(
        &'a self,
        ids: &'a [u64],
        dirty_items: &'a [String],
        dirty_docs: &'a [(DocKind, String)],
    ) -> StoreFuture<'a, ()>;
}

impl SledStore {
    fn ingest_now(
        &self,
        dedup_key: &[u8],
        record: &[u8],
        now_secs: u64,
    ) -> Result<Ingested, StoreError> {
        self.writable()?;
        // Plain single-key writes, no transaction: on sled 0.34 a transaction followed by a
        // flush costs about 15 times a plain insert (BENCHMARKS.md). The record goes in before
        // its dedup key.
        if self.seen(dedup_key, now_secs)? {
            return Ok(Ingested::Duplicate);
        }
        let id = self.db.generate_id()?;
        self.inbox.insert(id.to_be_bytes(), record)?;
        Counters::add(&self.counters.inbox, 1);
        self.remember(dedup_key, now_secs)?;
        Ok(Ingested::New)
    }

    /// Removes inbox records and marks items and documents dirty, atomically.
    pub(super) fn mark_and_take(
        &self,
        ids: &[u64],
        dirty_items: &[String],
        dirty_docs: &[(DocKind, String)],
    ) -> Result<(), StoreError> {
        self.writable()?;
        let stamp = self.db.generate_id()?.to_be_bytes();
        let (removed, items, docs) =
            (&self.inbox, &self.dirty, &self.dirty_docs).transaction(|(inbox, dirty, docs)| {
                let (mut removed, mut new_items, mut new_docs) = (0i64, 0i64, 0i64);
                for item in dirty_items {
                    new_items += i64::from(dirty.insert(item.as_bytes(), &stamp)?.is_none());
                }
                for (kind, name) in dirty_docs {
                    new_docs +=
                        i64::from(docs.insert(key2(kind.doctype(), name), &stamp)?.is_none());
                }
                for id in ids {
                    removed += i64::from(inbox.remove(&id.to_be_bytes())?.is_some());
                }
                Ok::<_, ConflictableTransactionError<StoreError>>((removed, new_items, new_docs))
            })?;
        Counters::add(&self.counters.inbox, -removed);
        Counters::add(&self.counters.dirty, items);
        Counters::add(&self.counters.dirty_docs, docs);
        Ok(())
    }
}

impl Inbox for SledStore {
    fn sequence(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    fn ingest<'a>(
        &'a self,
        dedup_key: &'a [u8],
        record: &'a [u8],
        now_secs: u64,
    ) -> StoreFuture<'a, Ingested> {
        ready(self.ingest_now(dedup_key, record, now_secs))
    }

    fn inbox_batch(&self, limit: usize) -> StoreFuture<'_, Vec<(u64, Vec<u8>)>> {
        ready(
            self.inbox
                .iter()
                .take(limit)
                .map(|r| {
                    let (k, v) = r?;
                    Ok((u64_of(&k), v.to_vec()))
                })
                .collect(),
        )
    }

    fn inbox_into_dirty<'a>(
        &'a self,
        ids: &'a [u64],
        dirty_items: &'a [String],
        dirty_docs: &'a [(DocKind, String)],
    ) -> StoreFuture<'a, ()> {
        ready(self.mark_and_take(ids, dirty_items, dirty_docs))
    }
}
