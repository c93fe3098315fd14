//! What the relay did since it started, as Prometheus metrics: counters, the queue depths, and
//! histograms of webhook ingest, read-back and push time, written by the `prometheus` crate in
//! the text format Prometheus and `promtool check metrics` read.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};

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

/// How an attempt to place a shop order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderOutcome {
    /// A Sales Order was created.
    Created,
    /// The Sales Order already existed (found by the shop order id): nothing was created.
    Existing,
    /// ERPNext was unavailable: the order stays owed.
    Retry,
    /// Refused: the order is dead until retried.
    Dead,
}

impl OrderOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Existing => "existing",
            Self::Retry => "retry",
            Self::Dead => "dead",
        }
    }
}

/// What became of a shop order delivery, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderDelivery {
    Accepted,
    Duplicate,
    RefusedSignature,
    RefusedInvalid,
    RefusedOther,
}

/// What the relay did since it started, as Prometheus metrics (the `prometheus` crate, in a
/// registry owned by the application, not the crate's global one), plus the times of the last
/// webhook and the last push for the status page.
pub struct Metrics {
    registry: prometheus::Registry,
    accepted: IntCounter,
    duplicates: IntCounter,
    rejected: IntCounterVec,
    levels_pushed: IntCounter,
    shipments_pushed: IntCounter,
    returns_skipped: IntCounter,
    rows_without_order: IntCounter,
    documents_failed: IntCounter,
    items_without_sku: IntCounter,
    push_failures: IntCounter,
    dead_letters: IntCounter,
    processor_errors: IntCounter,
    queue_depth: IntGaugeVec,
    webhook_seconds: Histogram,
    readback_seconds: Histogram,
    push_seconds: HistogramVec,
    last_event_ms: AtomicU64,
    last_push_ms: AtomicU64,
    orders_received: IntCounter,
    orders_duplicate: IntCounter,
    orders_refused: IntCounterVec,
    orders_total: IntCounterVec,
    store_probes: IntCounter,
    body_bytes_in_flight: prometheus::IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("accepted", &self.accepted.get())
            .field("levels_pushed", &self.levels_pushed.get())
            .finish_non_exhaustive()
    }
}

/// Bucket bounds (seconds) for answering a webhook: a signature check, a parse, a flush.
const WEBHOOK_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Bucket bounds (seconds) for a request to ERPNext or the shop.
const REMOTE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// The reasons a webhook is refused, always exported (0 until it happens).
const REJECT_REASONS: [&str; 6] = [
    "signature",
    "malformed",
    "too_large",
    "unknown_event",
    "storage",
    "internal",
];
/// The queues whose depth is exported.
const QUEUES: [&str; 6] = [
    "inbox",
    "dirty",
    "outbox",
    "dead",
    "dirty_documents",
    "shipment_outbox",
];

fn counter(
    r: &prometheus::Registry,
    name: &str,
    help: &str,
) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    r: &prometheus::Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, prometheus::Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// Builds the registry and every metric in it.
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = prometheus::Registry::new();
        let rejected = IntCounterVec::new(
            Opts::new(
                "shoprelay_webhooks_rejected_total",
                "Deliveries refused, by reason.",
            ),
            &["reason"],
        )?;
        r.register(Box::new(rejected.clone()))?;
        for reason in REJECT_REASONS {
            rejected.with_label_values(&[reason]);
        }
        let queue_depth = IntGaugeVec::new(
            Opts::new("shoprelay_queue_depth", "Entries waiting, by queue."),
            &["queue"],
        )?;
        r.register(Box::new(queue_depth.clone()))?;
        let push_seconds = HistogramVec::new(
            HistogramOpts::new(
                "shoprelay_push_seconds",
                "Time for one request to the shop (levels or a shipment), answered or not.",
            )
            .buckets(REMOTE_BUCKETS.to_vec()),
            &["kind"],
        )?;
        r.register(Box::new(push_seconds.clone()))?;
        for kind in ["levels", "shipment"] {
            push_seconds.with_label_values(&[kind]);
        }
        let orders_refused = IntCounterVec::new(
            Opts::new(
                "shoprelay_orders_refused_total",
                "Shop order deliveries refused, by reason (nothing stored).",
            ),
            &["reason"],
        )?;
        r.register(Box::new(orders_refused.clone()))?;
        for reason in ["signature", "invalid", "other"] {
            orders_refused.with_label_values(&[reason]);
        }
        let orders_total = IntCounterVec::new(
            Opts::new(
                "shoprelay_orders_total",
                "Attempts to place a shop order in ERPNext, by outcome (created; existing: found by the order id; retry: ERPNext unavailable; dead: refused).",
            ),
            &["outcome"],
        )?;
        r.register(Box::new(orders_total.clone()))?;
        for o in [
            OrderOutcome::Created,
            OrderOutcome::Existing,
            OrderOutcome::Retry,
            OrderOutcome::Dead,
        ] {
            orders_total.with_label_values(&[o.label()]);
        }
        let body_bytes_in_flight = prometheus::IntGauge::new(
            "shoprelay_request_body_bytes_in_flight",
            "Bytes of request bodies being read or handled now (bounded by server.max_body_bytes_in_flight).",
        )?;
        r.register(Box::new(body_bytes_in_flight.clone()))?;
        Ok(Self {
            store_probes: counter(&r, "shoprelay_store_probes_total", "Store write-and-flush probes run for /healthz and /readyz (one answers the probes of the next second).")?,
            body_bytes_in_flight,
            orders_received: counter(&r, "shoprelay_orders_received_total", "Shop orders stored (new).")?,
            orders_duplicate: counter(&r, "shoprelay_orders_duplicate_total", "Shop order deliveries answered as duplicates (same webhook-id or order_id).")?,
            orders_refused,
            orders_total,
            accepted: counter(&r, "shoprelay_webhooks_accepted_total", "ERPNext deliveries stored.")?,
            duplicates: counter(&r, "shoprelay_webhooks_duplicate_total", "Repeated deliveries answered without effect.")?,
            rejected,
            levels_pushed: counter(&r, "shoprelay_levels_pushed_total", "Levels the shop accepted.")?,
            shipments_pushed: counter(&r, "shoprelay_shipments_pushed_total", "Shipment PUTs and DELETEs the shop accepted.")?,
            returns_skipped: counter(&r, "shoprelay_returns_skipped_total", "Return delivery notes (not shipments).")?,
            rows_without_order: counter(&r, "shoprelay_rows_without_order_total", "Delivery note rows with no Sales Order or no shop order id.")?,
            documents_failed: counter(&r, "shoprelay_documents_failed_total", "Delivery Notes or Shipments skipped because ERPNext refused to give what they need (see the log).")?,
            items_without_sku: counter(&r, "shoprelay_items_without_sku_total", "Items skipped because their Item has no value in erpnext.sku_field.")?,
            push_failures: counter(&r, "shoprelay_push_failures_total", "Push requests that will be retried.")?,
            dead_letters: counter(&r, "shoprelay_dead_letters_total", "Push requests dead-lettered.")?,
            processor_errors: counter(&r, "shoprelay_processor_errors_total", "Processing steps that failed (ERPNext read-back).")?,
            queue_depth,
            webhook_seconds: histogram(&r, "shoprelay_webhook_ingest_seconds", "Time from a webhook's arrival to its answer (verified, stored and flushed, or refused).", &WEBHOOK_BUCKETS)?,
            readback_seconds: histogram(&r, "shoprelay_readback_seconds", "Time to read a batch of Bin rows back from ERPNext.", &REMOTE_BUCKETS)?,
            push_seconds,
            registry: r,
            last_event_ms: AtomicU64::new(0),
            last_push_ms: AtomicU64::new(0),
        })
    }

    /// `/healthz` or `/readyz` ran a store probe.
    pub(crate) fn store_probed(&self) {
        self.store_probes.inc();
    }
    /// Bytes of request bodies held now.
    pub(crate) fn body_bytes_in_flight(&self, n: usize) {
        self.body_bytes_in_flight
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    /// A shop order delivery answered.
    pub(crate) fn order_delivery(&self, d: OrderDelivery) {
        match d {
            OrderDelivery::Accepted => self.orders_received.inc(),
            OrderDelivery::Duplicate => self.orders_duplicate.inc(),
            OrderDelivery::RefusedSignature => {
                self.orders_refused.with_label_values(&["signature"]).inc()
            }
            OrderDelivery::RefusedInvalid => {
                self.orders_refused.with_label_values(&["invalid"]).inc()
            }
            OrderDelivery::RefusedOther => self.orders_refused.with_label_values(&["other"]).inc(),
        }
    }
    /// An attempt to place a shop order ended.
    pub(crate) fn order_outcome(&self, outcome: OrderOutcome) {
        self.orders_total
            .with_label_values(&[outcome.label()])
            .inc();
    }
    /// Shop orders owed to ERPNext and dead, as queue depths.
    pub(crate) fn order_depths(&self, (owed, dead): (usize, usize)) {
        for (q, v) in [("orders_owed", owed), ("orders_dead", dead)] {
            self.queue_depth
                .with_label_values(&[q])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    /// A webhook stored (new).
    pub(crate) fn webhook_accepted(&self) {
        self.last_event_ms.store(now_ms(), Ordering::Relaxed);
        self.accepted.inc();
    }
    /// A repeated delivery answered without effect.
    pub(crate) fn webhook_duplicate(&self) {
        self.duplicates.inc();
    }
    /// A delivery refused.
    pub(crate) fn webhook_rejected(&self, why: Rejection) {
        let reason = match why {
            Rejection::Signature => "signature",
            Rejection::Malformed => "malformed",
            Rejection::TooLarge => "too_large",
            Rejection::UnknownEvent => "unknown_event",
            Rejection::Storage => "storage",
            Rejection::Internal => "internal",
        };
        self.rejected.with_label_values(&[reason]).inc();
    }
    /// A webhook was answered after `secs`.
    pub(crate) fn observe_webhook(&self, secs: f64) {
        self.webhook_seconds.observe(secs);
    }
    /// A Bin read-back took `secs`.
    pub(crate) fn observe_readback(&self, secs: f64) {
        self.readback_seconds.observe(secs);
    }
    /// A request to the shop (`kind` levels or shipment) took `secs`.
    pub(crate) fn observe_push(&self, kind: &str, secs: f64) {
        self.push_seconds.with_label_values(&[kind]).observe(secs);
    }
    pub(crate) fn pushed(&self, levels: usize) {
        self.levels_pushed.inc_by(levels as u64);
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn shipment_pushed(&self) {
        self.shipments_pushed.inc();
        self.last_push_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub(crate) fn return_skipped(&self) {
        self.returns_skipped.inc();
    }
    pub(crate) fn rows_without_order(&self, n: usize) {
        self.rows_without_order.inc_by(n as u64);
    }
    pub(crate) fn document_failed(&self) {
        self.documents_failed.inc();
    }
    pub(crate) fn items_without_sku(&self, n: usize) {
        self.items_without_sku.inc_by(n as u64);
    }
    pub(crate) fn push_failed(&self) {
        self.push_failures.inc();
    }
    pub(crate) fn dead_lettered(&self) {
        self.dead_letters.inc();
    }
    pub(crate) fn processor_error(&self) {
        self.processor_errors.inc();
    }
    /// Webhooks accepted (new) since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }
    /// Levels the shop accepted since start.
    pub fn levels_pushed(&self) -> u64 {
        self.levels_pushed.get()
    }
    /// When the last new webhook was stored (ms since the epoch), if one was.
    pub fn last_event_ms(&self) -> Option<u64> {
        Some(self.last_event_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }
    /// When the shop last accepted a push (ms since the epoch), if it did.
    pub fn last_push_ms(&self) -> Option<u64> {
        Some(self.last_push_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    /// The Prometheus text exposition (format 0.0.4), with the queue depths as they are now.
    pub(crate) fn prometheus(&self, depths: &Depths) -> Result<String, prometheus::Error> {
        for (q, v) in QUEUES.into_iter().zip([
            depths.inbox,
            depths.dirty,
            depths.outbox,
            depths.dead,
            depths.dirty_docs,
            depths.shipment_outbox,
        ]) {
            self.queue_depth
                .with_label_values(&[q])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}
