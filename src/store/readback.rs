//! What was read back from ERPNext: Bin rows (the latest read is the truth), document fields
//! cached until the document changes, Shipment tracking per delivery note, and when a delivery
//! note was first seen submitted.

use super::sled_backend::{key2, prefix, u64_of, SledStore};
use super::{ready, StoreError, StoreFuture};
use crate::model::{BinRow, Tracking};

/// Document fields the relay reads over REST and keeps until the document changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldCache {
    /// An Item's `erpnext.sku_field`.
    ItemSku,
    /// A Sales Order's `erpnext.order_id_field`.
    OrderId,
}

/// Rows and fields read back from ERPNext.
pub trait ReadBack: Send + Sync {
    /// Stores Bin rows read back from ERPNext. A row read back is the truth when it is read,
    /// whatever its `modified` says (the site's clock can go back), so it replaces what is
    /// stored. `absent` lists (item, warehouse) pairs ERPNext reported no Bin for; their rows
    /// are removed.
    fn apply_bins<'a>(
        &'a self,
        rows: &'a [BinRow],
        absent: &'a [(String, String)],
    ) -> StoreFuture<'a, ()>;
    /// The stored Bin row for (item, warehouse), if any.
    fn bin<'a>(&'a self, item: &'a str, warehouse: &'a str) -> StoreFuture<'a, Option<BinRow>>;
    /// True when a Bin row of `item` was ever read back (it is stocked somewhere mapped).
    fn has_bins<'a>(&'a self, item: &'a str) -> StoreFuture<'a, bool>;
    /// A cached field: None when not cached, Some(None) when the document has none.
    fn cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
    ) -> StoreFuture<'a, Option<Option<String>>>;
    /// Caches a field (None: the document has none).
    fn set_cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
        value: Option<&'a str>,
    ) -> StoreFuture<'a, ()>;
    /// Forgets a cached field (its document changed).
    fn forget_cached_field<'a>(&'a self, cache: FieldCache, name: &'a str) -> StoreFuture<'a, ()>;
    /// Records what a Shipment read back says of a delivery note (the truth when it was read,
    /// whatever its `modified` says).
    fn set_tracking<'a>(&'a self, delivery_note: &'a str, t: &'a Tracking) -> StoreFuture<'a, ()>;
    /// Every Shipment state recorded for a delivery note.
    fn trackings<'a>(&'a self, delivery_note: &'a str) -> StoreFuture<'a, Vec<Tracking>>;
    /// When the relay first saw `delivery_note` submitted: the first call records `now_ms`,
    /// every later one returns what was recorded.
    fn first_shipped_at<'a>(&'a self, delivery_note: &'a str, now_ms: u64) -> StoreFuture<'a, u64>;
}

impl SledStore {
    fn cache_tree(&self, cache: FieldCache) -> &::sled::Tree {
        match cache {
            FieldCache::ItemSku => &self.item_skus,
            FieldCache::OrderId => &self.so_orders,
        }
    }

    fn apply_bins_now(
        &self,
        rows: &[BinRow],
        absent: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.writable()?;
        for row in rows {
            self.bins.insert(
                key2(&row.item_code, &row.warehouse),
                serde_json::to_vec(row)?,
            )?;
        }
        for (item, wh) in absent {
            self.bins.remove(key2(item, wh))?;
        }
        Ok(())
    }

    fn set_tracking_now(&self, delivery_note: &str, t: &Tracking) -> Result<(), StoreError> {
        self.writable()?;
        self.tracking
            .insert(key2(delivery_note, &t.shipment), serde_json::to_vec(t)?)?;
        Ok(())
    }

    fn first_shipped_at_now(&self, delivery_note: &str, now_ms: u64) -> Result<u64, StoreError> {
        self.writable()?;
        let prev = self.shipped_at.compare_and_swap(
            delivery_note,
            None::<&[u8]>,
            Some(&now_ms.to_be_bytes()[..]),
        )?;
        Ok(match prev {
            Ok(()) => now_ms,
            Err(e) => e.current.map(|v| u64_of(&v)).unwrap_or(now_ms),
        })
    }
}

impl ReadBack for SledStore {
    fn apply_bins<'a>(
        &'a self,
        rows: &'a [BinRow],
        absent: &'a [(String, String)],
    ) -> StoreFuture<'a, ()> {
        ready(self.apply_bins_now(rows, absent))
    }

    fn bin<'a>(&'a self, item: &'a str, warehouse: &'a str) -> StoreFuture<'a, Option<BinRow>> {
        ready((|| match self.bins.get(key2(item, warehouse))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        })())
    }

    fn has_bins<'a>(&'a self, item: &'a str) -> StoreFuture<'a, bool> {
        ready((|| {
            Ok(self
                .bins
                .scan_prefix(prefix(item))
                .next()
                .transpose()?
                .is_some())
        })())
    }

    fn cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
    ) -> StoreFuture<'a, Option<Option<String>>> {
        ready((|| {
            Ok(self
                .cache_tree(cache)
                .get(name)?
                .map(|v| Some(String::from_utf8_lossy(&v).into_owned()).filter(|s| !s.is_empty())))
        })())
    }

    fn set_cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
        value: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.cache_tree(cache)
                .insert(name, value.unwrap_or_default().as_bytes())?;
            Ok(())
        })())
    }

    fn forget_cached_field<'a>(&'a self, cache: FieldCache, name: &'a str) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.cache_tree(cache).remove(name)?;
            Ok(())
        })())
    }

    fn set_tracking<'a>(&'a self, delivery_note: &'a str, t: &'a Tracking) -> StoreFuture<'a, ()> {
        ready(self.set_tracking_now(delivery_note, t))
    }

    fn trackings<'a>(&'a self, delivery_note: &'a str) -> StoreFuture<'a, Vec<Tracking>> {
        ready(
            self.tracking
                .scan_prefix(prefix(delivery_note))
                .map(|r| Ok(serde_json::from_slice(&r?.1)?))
                .collect(),
        )
    }

    fn first_shipped_at<'a>(&'a self, delivery_note: &'a str, now_ms: u64) -> StoreFuture<'a, u64> {
        ready(self.first_shipped_at_now(delivery_note, now_ms))
    }
}
