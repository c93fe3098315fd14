//! What the HTTP handlers share: the settings, the store, the metrics, the channel mapping, and
//! the handles that wake the workers or ask for a reconcile pass.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::channels::Channels;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::Store;

/// State shared by the HTTP handlers.
pub struct AppState {
    pub(crate) settings: Arc<Settings>,
    pub(crate) store: Store,
    pub(crate) wake_processor: Arc<Notify>,
    pub(crate) wake_pusher: Arc<Notify>,
    pub(crate) reconcile: Arc<ReconcileTrigger>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) channels: Arc<Channels>,
}

/// Asks the reconcile loop for a pass now (the admin API), optionally a full one.
#[derive(Default)]
pub struct ReconcileTrigger {
    now: Notify,
    full: AtomicBool,
}

impl ReconcileTrigger {
    /// Requests a pass (a full one when `full`).
    pub fn request(&self, full: bool) {
        if full {
            self.full.store(true, Ordering::SeqCst);
        }
        self.now.notify_one();
    }

    /// Waits for a request.
    pub(crate) async fn requested(&self) {
        self.now.notified().await
    }

    /// Whether a full pass was asked for since the last call.
    pub(crate) fn take_full(&self) -> bool {
        self.full.swap(false, Ordering::SeqCst)
    }
}
