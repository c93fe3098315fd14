//! Metadata: small named values (the reconcile watermark, the Warehouse tree, the channel
//! override, the dedup generations).

use super::StoreFuture;

/// Named values.
pub trait Meta: Send + Sync {
    /// A value, if set.
    fn meta<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Sets a value.
    fn set_meta<'a>(&'a self, name: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()>;
    /// Removes a value.
    fn remove_meta<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()>;
}
