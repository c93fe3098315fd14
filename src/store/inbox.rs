//! The inbox: verified deliveries, deduplicated by body hash, kept until the processor turned
//! them into dirty work.

use super::{StoreError, StoreFuture};
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
