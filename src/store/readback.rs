//! What was read back from ERPNext: Bin rows (the latest read is the truth), document fields
//! cached until the document changes, Shipment tracking per delivery note, and when a delivery
//! note was first seen submitted.

use super::StoreFuture;
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
