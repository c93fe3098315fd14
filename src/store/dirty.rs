//! Dirty work: items and documents to read back from ERPNext, each with the stamp it was last
//! marked with, so that clearing one that was marked again meanwhile leaves it dirty.

use super::StoreFuture;
use crate::model::DocKind;

/// Items and documents waiting to be read back.
pub trait DirtyWork: Send + Sync {
    /// Marks items dirty (reconcile, admin).
    fn mark_dirty<'a>(&'a self, items: &'a [String]) -> StoreFuture<'a, ()>;
    /// Marks documents dirty (a Shipment marks its delivery notes).
    fn mark_docs_dirty<'a>(&'a self, docs: &'a [(DocKind, String)]) -> StoreFuture<'a, ()>;
    /// Up to `limit` dirty items with their stamps.
    fn dirty_batch(&self, limit: usize) -> StoreFuture<'_, Vec<(String, u64)>>;
    /// Clears dirty items, unless one was marked again since it was read.
    fn dirty_clear<'a>(&'a self, items: &'a [(String, u64)]) -> StoreFuture<'a, ()>;
    /// Up to `limit` dirty documents of `kind` with their stamps.
    fn dirty_docs_batch(&self, kind: DocKind, limit: usize) -> StoreFuture<'_, Vec<(String, u64)>>;
    /// Clears a dirty document unless it was marked again since it was read.
    fn dirty_doc_clear<'a>(
        &'a self,
        kind: DocKind,
        name: &'a str,
        stamp: u64,
    ) -> StoreFuture<'a, ()>;
}
