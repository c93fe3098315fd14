//! What the HTTP handlers share: the settings, the store, the metrics, the channel mapping, the
//! monitor and the ERPNext client the admin reads with, and the handles that wake the workers or
//! ask for a reconcile pass.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::channels::Channels;
use crate::config::Settings;
use crate::erpnext::ErpClient;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
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
    /// Since when queues wait, the reconcile passes (for the admin).
    pub(crate) monitor: Arc<Monitor>,
    /// ERPNext, for the admin's probes and look-ups.
    pub(crate) erp: ErpClient,
    /// Wakes the order loop (a new order, an admin retry).
    pub(crate) wake_orders: Arc<Notify>,
    /// What unauthenticated callers may cost: wrong tokens, bodies, health probes.
    pub(crate) limits: Arc<crate::limits::Limits>,
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
