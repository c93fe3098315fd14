//! Counters of what the relay did since it started, and their Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::now_ms;
use crate::store::Depths;

/// Why a webhook delivery was refused, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Signature,
    Malformed,
    TooLarge,
    UnknownEvent,
    Storage,
    Internal,
}

/// Counters of what the relay did since it started. Owned by the application, not global.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected_signature: AtomicU64,
    rejected_malformed: AtomicU64,
    rejected_too_large: AtomicU64,
    rejected_unknown: AtomicU64,
    store_failures: AtomicU64,
    internal_errors: AtomicU64,
    levels_pushed: AtomicU64,
    push_failures: AtomicU64,
    dead_letters: AtomicU64,
    processor_errors: AtomicU64,
    shipments_pushed: AtomicU64,
    returns_skipped: AtomicU64,
    rows_without_order: AtomicU64,
    items_without_sku: AtomicU64,
    documents_failed: AtomicU64,
    last_event_ms: AtomicU64,
    last_push_ms: AtomicU64,
}

impl Metrics {
    /// A webhook stored (new).
    pub(crate) fn webhook_accepted(&self) {
        self.last_event_ms.store(now_ms(), Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }
    /// A repeated delivery answered without effect.
    pub(crate) fn webhook_duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    /// A delivery refused.
    pub(crate) fn webhook_rejected(&self, why: Rejection) {
        let counter = match why {
            Rejection::Signature => &self.rejected_signature,
            Rejection::Malformed => &self.rejected_malformed,
            Rejection::TooLarge => &self.rejected_too_large,
            Rejection::UnknownEvent => &self.rejected_unknown,
            Rejection::Storage => &self.store_failures,
            Rejection::Internal => &self.internal_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn pushed(&self, levels: usize) {
        self.levels_pushed
            .fetch_add(levels as u64, Ordering::Relaxed);
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn shipment_pushed(&self) {
        self.shipments_pushed.fetch_add(1, Ordering::Relaxed);
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn return_skipped(&self) {
        self.returns_skipped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn rows_without_order(&self, n: usize) {
        self.rows_without_order
            .fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn document_failed(&self) {
        self.documents_failed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn items_without_sku(&self, n: usize) {
        self.items_without_sku
            .fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn push_failed(&self) {
        self.push_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn processor_error(&self) {
        self.processor_errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Webhooks accepted (new) since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Levels the shop accepted since start.
    pub fn levels_pushed(&self) -> u64 {
        self.levels_pushed.load(Ordering::Relaxed)
    }

    /// When the last new webhook was stored (ms since the epoch), if one was.
    pub fn last_event_ms(&self) -> Option<u64> {
        Some(self.last_event_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }
    /// When the shop last accepted a push (ms since the epoch), if it did.
    pub fn last_push_ms(&self) -> Option<u64> {
        Some(self.last_push_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    /// The Prometheus text exposition, with the queue depths `d`.
    pub(crate) fn prometheus(&self, d: Depths) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, labels: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}\n"
            ));
        };
        line(
            "shoprelay_webhooks_accepted_total",
            "counter",
            "ERPNext deliveries stored.",
            "",
            g(&self.accepted),
        );
        line(
            "shoprelay_webhooks_duplicate_total",
            "counter",
            "Repeated deliveries answered without effect.",
            "",
            g(&self.duplicates),
        );
        for (reason, c) in [
            ("signature", &self.rejected_signature),
            ("malformed", &self.rejected_malformed),
            ("too_large", &self.rejected_too_large),
            ("unknown_event", &self.rejected_unknown),
            ("storage", &self.store_failures),
            ("internal", &self.internal_errors),
        ] {
            line(
                "shoprelay_webhooks_rejected_total",
                "counter",
                "Deliveries refused, by reason.",
                &format!("{{reason=\"{reason}\"}}"),
                g(c),
            );
        }
        line(
            "shoprelay_levels_pushed_total",
            "counter",
            "Levels the shop accepted.",
            "",
            g(&self.levels_pushed),
        );
        line(
            "shoprelay_shipments_pushed_total",
            "counter",
            "Shipment PUTs and DELETEs the shop accepted.",
            "",
            g(&self.shipments_pushed),
        );
        line(
            "shoprelay_returns_skipped_total",
            "counter",
            "Return delivery notes (not shipments).",
            "",
            g(&self.returns_skipped),
        );
        line(
            "shoprelay_rows_without_order_total",
            "counter",
            "Delivery note rows with no Sales Order or no shop order id.",
            "",
            g(&self.rows_without_order),
        );
        line(
            "shoprelay_documents_failed_total",
            "counter",
            "Delivery Notes or Shipments skipped because ERPNext refused to give what they need (see the log).",
            "",
            g(&self.documents_failed),
        );
        line(
            "shoprelay_items_without_sku_total",
            "counter",
            "Items skipped because their Item has no value in erpnext.sku_field.",
            "",
            g(&self.items_without_sku),
        );
        line(
            "shoprelay_push_failures_total",
            "counter",
            "Push requests that will be retried.",
            "",
            g(&self.push_failures),
        );
        line(
            "shoprelay_dead_letters_total",
            "counter",
            "Push requests dead-lettered.",
            "",
            g(&self.dead_letters),
        );
        line(
            "shoprelay_processor_errors_total",
            "counter",
            "Processing steps that failed (ERPNext read-back).",
            "",
            g(&self.processor_errors),
        );
        for (q, v) in [
            ("inbox", d.inbox),
            ("dirty", d.dirty),
            ("outbox", d.outbox),
            ("dead", d.dead),
            ("dirty_documents", d.dirty_docs),
            ("shipment_outbox", d.shipment_outbox),
        ] {
            line(
                "shoprelay_queue_depth",
                "gauge",
                "Entries waiting, by queue.",
                &format!("{{queue=\"{q}\"}}"),
                v as u64,
            );
        }
        out
    }
}
