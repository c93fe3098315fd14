//! The push agent: drains the outbox into the shop. Levels go as `POST /inventory/levels`, one
//! request in flight per channel; shipments as `PUT /orders/{id}/shipments/{id}`, one
//! in flight per shipment; so the last request the shop receives for a thing holds its current
//! state. Retries with backoff and Retry-After; refused requests become dead letters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::client::{ShopAnswer, ShopClient, ShopError};
use super::retry::{classify, next_delay, retry_after, Disposition};
use crate::config::ShopSettings;
use crate::metrics::Metrics;
use crate::model::{now_ms, ShipmentOp};
use crate::store::{DeadTarget, Store, StoreError};

/// Why a cancellation queued under shop contract 1 is not sent.
const LEGACY_CANCEL: &str = "a cancellation queued under shop contract 1 (a bodyless DELETE) \
cannot be sent as a contract 2 PUT: its shipment body is unknown; make sure the shop shows this \
delivery note cancelled, then discard this letter";

#[derive(Debug, Clone, Copy)]
struct Backoff {
    attempt: u32,
    until: Instant,
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushReport {
    /// Requests the shop accepted.
    pub accepted: usize,
    /// Levels in those requests.
    pub levels: usize,
    /// Requests that failed and will be retried.
    pub retrying: usize,
    /// Requests dead-lettered.
    pub dead: usize,
    /// The earliest time a target in backoff may be tried again.
    pub next_retry: Option<Instant>,
}

impl PushReport {
    /// True when nothing was sent.
    pub fn is_idle(&self) -> bool {
        self.accepted == 0 && self.retrying == 0 && self.dead == 0
    }
}

/// One request owed to the shop.
enum Job {
    Levels {
        channel: String,
        levels: Vec<(String, u64)>,
    },
    Shipment(ShipmentOp),
}

impl Job {
    /// What backoff is kept per: a channel, or a shipment.
    fn key(&self) -> String {
        match self {
            Job::Levels { channel, .. } => format!("levels/{channel}"),
            Job::Shipment(op) => format!("shipment/{}/{}", op.order_id, op.shipment_id),
        }
    }

    async fn send(&self, client: &ShopClient) -> Result<ShopAnswer, ShopError> {
        match self {
            Job::Levels { channel, levels } => client.post_levels(channel, levels).await,
            Job::Shipment(op) => client.send_shipment(op).await,
        }
    }

    /// As the shop contract says, plus: cancelling a shipment the shop does not know (404) is
    /// done.
    fn disposition(&self, answer: &Result<ShopAnswer, ShopError>) -> Disposition {
        match (self, answer) {
            (_, Err(_)) => Disposition::Retry,
            (Job::Shipment(op), Ok(a)) if a.status == 404 && op.is_cancelled() => Disposition::Done,
            (_, Ok(a)) => classify(a.status),
        }
    }

    fn acked(&self, store: &Store, metrics: &Metrics) -> Result<usize, StoreError> {
        match self {
            Job::Levels { channel, levels } => {
                store.outbox_acked(channel, levels)?;
                metrics.pushed(levels.len());
                Ok(levels.len())
            }
            Job::Shipment(op) => {
                store.shipment_acked(op)?;
                metrics.shipment_pushed();
                Ok(0)
            }
        }
    }

    fn into_dead(self) -> DeadTarget {
        match self {
            Job::Levels { channel, levels } => DeadTarget::Levels { channel, levels },
            Job::Shipment(op) => DeadTarget::Shipment { op },
        }
    }
}

/// Pushes levels and shipments. Tests call [`PushAgent::step`]; the running relay loops over it.
pub struct PushAgent {
    store: Store,
    client: ShopClient,
    max_batch: usize,
    base: Duration,
    max: Duration,
    backoff: Mutex<HashMap<String, Backoff>>,
    metrics: Arc<Metrics>,
}

fn describe(answer: &Result<ShopAnswer, ShopError>) -> String {
    match answer {
        Ok(a) => format!(
            "{} {}",
            a.status,
            a.body.chars().take(200).collect::<String>()
        ),
        Err(e) => crate::telemetry::error_chain(e),
    }
}

impl PushAgent {
    pub fn new(
        store: Store,
        client: ShopClient,
        settings: &ShopSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            client,
            max_batch: settings.max_batch,
            base: Duration::from_millis(settings.retry_base_ms),
            max: Duration::from_millis(settings.retry_max_ms),
            backoff: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn backoffs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Backoff>> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is owed now: one levels batch per channel, then waiting shipment operations.
    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        for channel in self.store.outbox_channels()? {
            let levels = self.store.outbox_batch(&channel, self.max_batch)?;
            if !levels.is_empty() {
                jobs.push(Job::Levels { channel, levels });
            }
        }
        jobs.extend(
            self.store
                .shipment_batch(self.max_batch)?
                .into_iter()
                .map(Job::Shipment),
        );
        Ok(jobs)
    }

    /// Sends each owed request whose target is not backing off, once.
    pub async fn step(&self) -> Result<PushReport, StoreError> {
        let mut report = PushReport::default();
        for job in self.jobs()? {
            let key = job.key();
            let backoff = self.backoffs().get(&key).copied();
            if let Some(b) = backoff.filter(|b| b.until > Instant::now()) {
                report.next_retry = Some(report.next_retry.map_or(b.until, |t| t.min(b.until)));
                continue;
            }
            if let Job::Shipment(op) = &job {
                if op.body.is_null() {
                    let id =
                        self.store
                            .dead_letter(job.into_dead(), None, LEGACY_CANCEL, now_ms())?;
                    self.metrics.dead_lettered();
                    report.dead += 1;
                    tracing::error!(target_key = %key.replace('\u{1f}', "/"), dead_letter = id, "{LEGACY_CANCEL}");
                    continue;
                }
            }
            let answer = job.send(&self.client).await;
            match job.disposition(&answer) {
                Disposition::Done => {
                    report.levels += job.acked(&self.store, &self.metrics)?;
                    self.backoffs().remove(&key);
                    report.accepted += 1;
                }
                Disposition::Retry => {
                    let attempt = backoff.map_or(1, |b| b.attempt + 1);
                    let ra = answer
                        .as_ref()
                        .ok()
                        .and_then(|a| a.retry_after.as_deref())
                        .and_then(|v| retry_after(v, SystemTime::now()));
                    let delay = next_delay(attempt, self.base, self.max, fastrand::f64(), ra);
                    let until = Instant::now() + delay;
                    self.backoffs()
                        .insert(key.clone(), Backoff { attempt, until });
                    self.metrics.push_failed();
                    report.retrying += 1;
                    report.next_retry = Some(report.next_retry.map_or(until, |t| t.min(until)));
                    tracing::warn!(target_key = %key, attempt, delay_ms = delay.as_millis() as u64, answer = %describe(&answer), "push failed; will retry");
                }
                Disposition::DeadLetter => {
                    let (status, body) = match &answer {
                        Ok(a) => (Some(a.status), a.body.as_str()),
                        Err(_) => (None, ""),
                    };
                    let id = self
                        .store
                        .dead_letter(job.into_dead(), status, body, now_ms())?;
                    self.backoffs().remove(&key);
                    self.metrics.dead_lettered();
                    report.dead += 1;
                    tracing::error!(target_key = %key, dead_letter = id, answer = %describe(&answer), "shop refused a push; kept as a dead letter");
                }
            }
        }
        Ok(report)
    }
}
