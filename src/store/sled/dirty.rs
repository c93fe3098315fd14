//! Dirty work on sled: `dirty` (item_code -> stamp) and `dirty_docs` (doctype \x1f name ->
//! stamp); a clear is a compare-and-swap on the stamp read.

use std::sync::atomic::AtomicI64;

use super::{key2, prefix, split2, u64_of, Counters, SledStore};
use crate::model::DocKind;
use crate::store::{ready, DirtyWork, StoreError, StoreFuture};

/// Up to `limit` entries under `prefix` of a stamp tree, named by `name_of(key)`.
fn stamped(
    tree: &::sled::Tree,
    prefix: &[u8],
    limit: usize,
    name_of: impl Fn(&[u8]) -> String,
) -> Result<Vec<(String, u64)>, StoreError> {
    tree.scan_prefix(prefix)
        .take(limit)
        .map(|r| {
            let (k, v) = r?;
            Ok((name_of(&k), u64_of(&v)))
        })
        .collect()
}

/// Removes `key` from a stamp tree if it still holds `stamp`.
fn clear_stamped(
    tree: &::sled::Tree,
    counter: &AtomicI64,
    key: &[u8],
    stamp: u64,
) -> Result<(), StoreError> {
    let swapped = tree.compare_and_swap(key, Some(&stamp.to_be_bytes()[..]), None::<&[u8]>)?;
    Counters::add(counter, -i64::from(swapped.is_ok()));
    Ok(())
}

impl DirtyWork for SledStore {
    fn mark_dirty<'a>(&'a self, items: &'a [String]) -> StoreFuture<'a, ()> {
        ready(self.mark_and_take(&[], items, &[]))
    }

    fn mark_docs_dirty<'a>(&'a self, docs: &'a [(DocKind, String)]) -> StoreFuture<'a, ()> {
        ready(self.mark_and_take(&[], &[], docs))
    }

    fn dirty_batch(&self, limit: usize) -> StoreFuture<'_, Vec<(String, u64)>> {
        ready(stamped(&self.dirty, &[], limit, |k| {
            String::from_utf8_lossy(k).into_owned()
        }))
    }

    fn dirty_clear<'a>(&'a self, items: &'a [(String, u64)]) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            for (item, stamp) in items {
                clear_stamped(&self.dirty, &self.counters.dirty, item.as_bytes(), *stamp)?;
            }
            Ok(())
        })())
    }

    fn dirty_docs_batch(&self, kind: DocKind, limit: usize) -> StoreFuture<'_, Vec<(String, u64)>> {
        ready(stamped(
            &self.dirty_docs,
            &prefix(kind.doctype()),
            limit,
            |k| split2(k).map(|(_, n)| n).unwrap_or_default(),
        ))
    }

    fn dirty_doc_clear<'a>(
        &'a self,
        kind: DocKind,
        name: &'a str,
        stamp: u64,
    ) -> StoreFuture<'a, ()> {
        ready(self.writable().and_then(|()| {
            clear_stamped(
                &self.dirty_docs,
                &self.counters.dirty_docs,
                &key2(kind.doctype(), name),
                stamp,
            )
        }))
    }
}
