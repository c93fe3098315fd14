//! The durable store, split by role. Each role is a trait the rest of the crate uses through the
//! cheap-to-clone [`Store`] handle, never a concrete database type: [`Inbox`] (deliveries and
//! their dedup), [`DirtyWork`] (items and documents to read back), [`ReadBack`] (rows and
//! fields read back from ERPNext), [`Outbox`] (one generic coalescing outbox with its retry
//! state, for levels and shipments), [`DeadLetters`], [`Meta`], [`OrderBook`] (shop orders and
//! their fate) and [`Durability`] (flushes,
//! queue depths, the health probe). The methods return futures, so a backend on a database
//! server can implement them. Each role's trait and types live in `<role>.rs`; a backend
//! implements them in a folder of its own: `sled/` (the embedded default, and the only code
//! that touches sled). `tests/it/store_contract.rs` is the suite every backend must pass.

mod dead;
mod dirty;
mod inbox;
mod meta;
mod orders;
mod outbox;
mod readback;
mod sled;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use dead::{DeadLetter, DeadLetters, DeadTarget};
pub use dirty::DirtyWork;
pub use inbox::{Inbox, Ingested};
pub use meta::Meta;
pub use orders::{
    due, BookedPayment, OrderBook, OrderBooks, OrderReceipt, OrderRecord, OrderStatus,
};
pub use outbox::{Entry, Outbox, OutboxKind, Pending, Queued, RetryState, Target};
pub use readback::{FieldCache, ReadBack};

/// A store operation failed; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not read or write (a full disk, an I/O error): try again later.
    #[error("the database failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be encoded or decoded: a bug or damaged data, not transient.
    #[error("a stored record could not be encoded or decoded")]
    Codec(#[from] serde_json::Error),
    /// Flushing to disk failed: what was written since the last flush is not durable.
    #[error("flushing to disk failed: {0}")]
    Flush(String),
    /// Writes were made to fail on purpose (the test seam [`Durability::inject_write_failure`]).
    #[error("writes fail on purpose (injected failure)")]
    Injected,
}

impl StoreError {
    /// True when waiting may help (the store could not write or flush); false for a bug.
    pub fn is_transient(&self) -> bool {
        !matches!(self, StoreError::Codec(_))
    }
}

/// What a store method returns: a future, so that a backend may talk to a server.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A result that is ready at once, as a [`StoreFuture`] (for backends that work in memory).
pub(crate) fn ready<'a, T: Send + 'a>(r: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

/// Queue depths, for status and metrics. Kept as counters, never counted by scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Depths {
    pub inbox: usize,
    pub dirty: usize,
    pub outbox: usize,
    pub dead: usize,
    pub dirty_docs: usize,
    pub shipment_outbox: usize,
}

/// Flushes, depths and health: what every backend has besides its roles.
pub trait Durability: Send + Sync {
    /// Waits until every write made before this call is durable (shared flush).
    fn durable(&self) -> StoreFuture<'_, ()>;
    /// Flushes at once (shutdown, command-line tools).
    fn flush_now(&self) -> Result<(), StoreError>;
    /// Queue depths from counters (cheap: every `/metrics` scrape asks).
    fn depths(&self) -> Depths;
    /// Writes a probe record and makes it durable: an error means the store cannot take writes.
    fn probe(&self) -> StoreFuture<'_, ()>;
    /// Test seam: while `on`, every write and flush fails with [`StoreError::Injected`].
    fn inject_write_failure(&self, on: bool);
}

/// Every role: what a backend implements.
pub trait Backend:
    Inbox + DirtyWork + ReadBack + Outbox + DeadLetters + Meta + OrderBook + Durability
{
}

impl<T: Inbox + DirtyWork + ReadBack + Outbox + DeadLetters + Meta + OrderBook + Durability> Backend
    for T
{
}

/// The durable store. Cheap to clone; every role through one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl Store {
    /// Opens (or creates) the sled database in `path`. Must be called inside a tokio runtime:
    /// it starts the group-commit task.
    pub fn open(path: &std::path::Path, dedup_window_secs: u64) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(self::sled::SledStore::open(
            path,
            dedup_window_secs,
        )?)))
    }

    /// A store over any backend.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Queue depths (see [`Durability::depths`]).
    pub fn depths(&self) -> Depths {
        self.backend.depths()
    }
}
