//! The inbox on sled: records under ids from sled's id generator, dedup keys in the rotating
//! generations, and the move of processed records into dirty work in one transaction.

use ::sled::transaction::{ConflictableTransactionError, Transactional};

use super::{key2, u64_of, Counters, SledStore};
use crate::model::DocKind;
use crate::store::{ready, Inbox, Ingested, StoreError, StoreFuture};

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
