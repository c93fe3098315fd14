//! The push agent: drains the outbox into the shop. Levels go as `POST /inventory/levels`, one
//! request in flight per channel; shipments as `PUT /orders/{id}/shipments/{id}`, one
//! in flight per shipment; so the last request the shop receives for a thing holds its current
//! state. A failed request is retried on the retry schedule (`shop.retry_schedule_secs`, its
//! state persisted with the outbox entry, Retry-After honoured); when the schedule is exhausted,
//! or the shop refuses the request for good, it becomes a dead letter.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::client::{ShopAnswer, ShopClient, ShopError};
use super::retry::{classify, retry_after, Disposition, RetrySchedule};
use crate::config::ShopSettings;
use crate::metrics::Metrics;
use crate::model::{now_ms, ShipmentOp};
use crate::store::{DeadTarget, OutboxKind, RetryState, Store, StoreError, Target};

/// Why a cancellation queued under shop contract 1 is not sent.
const LEGACY_CANCEL: &str = "a cancellation queued under shop contract 1 (a bodyless DELETE) \
cannot be sent as a contract 2 PUT: its shipment body is unknown; make sure the shop shows this \
delivery note cancelled, then discard this letter";

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushReport {
    /// Requests the shop accepted.
    pub accepted: usize,
    /// Levels in those requests.
    pub levels: usize,
    /// Requests that failed and will be retried.
    pub retrying: usize,
    /// Requests dead-lettered (refused, or out of retries).
    pub dead: usize,
    /// The earliest time a target in backoff may be tried again.
    pub next_retry: Option<Instant>,
}

impl PushReport {
    /// True when nothing was sent.
    pub fn is_idle(&self) -> bool {
        self.accepted == 0 && self.retrying == 0 && self.dead == 0
    }

    fn retry_at(&mut self, at: Instant) {
        self.next_retry = Some(self.next_retry.map_or(at, |t| t.min(at)));
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
    /// What retry state is kept per: a channel, or a shipment.
    fn target(&self) -> Target {
        match self {
            Job::Levels { channel, .. } => Target {
                kind: OutboxKind::Levels,
                group: channel.clone(),
                key: None,
            },
            Job::Shipment(op) => Target {
                kind: OutboxKind::Shipments,
                group: op.order_id.clone(),
                key: Some(op.shipment_id.clone()),
            },
        }
    }

    /// `levels` or `shipment`, for the push-time histogram.
    fn kind(&self) -> &'static str {
        match self {
            Job::Levels { .. } => "levels",
            Job::Shipment(_) => "shipment",
        }
    }

    fn describe(&self) -> String {
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

    /// As the shop contract says (shop_adapter_spec/), plus: cancelling a shipment the shop
    /// does not know (404) is done.
    fn disposition(&self, answer: &Result<ShopAnswer, ShopError>) -> Disposition {
        match (self, answer) {
            (_, Err(ShopError::DotSegment(_))) => Disposition::DeadLetter,
            (_, Err(_)) => Disposition::Retry,
            (Job::Shipment(op), Ok(a)) if a.status == 404 && op.is_cancelled() => Disposition::Done,
            (_, Ok(a)) => classify(a.status),
        }
    }

    async fn acked(&self, store: &Store, metrics: &Metrics) -> Result<usize, StoreError> {
        match self {
            Job::Levels { channel, levels } => {
                store.outbox_acked(channel, levels).await?;
                metrics.pushed(levels.len());
                Ok(levels.len())
            }
            Job::Shipment(op) => {
                store.shipment_acked(op).await?;
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
    schedule: RetrySchedule,
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
            schedule: RetrySchedule::new(settings.retry_schedule.clone()),
            metrics,
        }
    }

    /// What is owed now: one levels batch per channel, then waiting shipment operations.
    async fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        for channel in self.store.outbox_channels().await? {
            let levels = self.store.outbox_batch(&channel, self.max_batch).await?;
            if !levels.is_empty() {
                jobs.push(Job::Levels { channel, levels });
            }
        }
        jobs.extend(
            self.store
                .shipment_batch(self.max_batch)
                .await?
                .into_iter()
                .map(Job::Shipment),
        );
        Ok(jobs)
    }

    /// Sends each owed request whose target is not waiting for its next attempt, once.
    pub async fn step(&self) -> Result<PushReport, StoreError> {
        let mut report = PushReport::default();
        for job in self.jobs().await? {
            let target = job.target();
            let state = self.store.retry_state(&target).await?;
            let now = now_ms();
            if let Some(s) = state.as_ref().filter(|s| s.next_attempt_ms > now) {
                report.retry_at(Instant::now() + Duration::from_millis(s.next_attempt_ms - now));
                continue;
            }
            if let Job::Shipment(op) = &job {
                if op.body.is_null() {
                    let what = job.describe();
                    let id = self
                        .store
                        .dead_letter(job.into_dead(), None, LEGACY_CANCEL, now_ms(), 0)
                        .await?;
                    self.store.durable().await?;
                    self.metrics.dead_lettered();
                    report.dead += 1;
                    tracing::error!(target_key = %what, dead_letter = id, "{LEGACY_CANCEL}");
                    continue;
                }
            }
            let started = Instant::now();
            let answer = job.send(&self.client).await;
            self.metrics
                .observe_push(job.kind(), started.elapsed().as_secs_f64());
            let attempts = state.as_ref().map_or(0, |s| s.attempts) + 1;
            match job.disposition(&answer) {
                Disposition::Done => {
                    let n = job.acked(&self.store, &self.metrics).await?;
                    report.levels += n;
                    tracing::info!(target_key = %job.describe(), status = answer.as_ref().map_or(0, |a| a.status), levels = n, "push accepted");
                    if state.is_some() {
                        self.store.set_retry_state(&target, None).await?;
                    }
                    report.accepted += 1;
                }
                Disposition::Retry => {
                    let ra = answer
                        .as_ref()
                        .ok()
                        .and_then(|a| a.retry_after.as_deref())
                        .and_then(|v| retry_after(v, SystemTime::now()));
                    match self.schedule.next_delay(attempts, ra) {
                        Some(delay) => {
                            let next = RetryState {
                                attempts,
                                next_attempt_ms: now_ms() + delay.as_millis() as u64,
                                last_error: Some(describe(&answer)),
                            };
                            self.store.set_retry_state(&target, Some(&next)).await?;
                            // Durable before going on: a restart resumes the schedule here.
                            self.store.durable().await?;
                            self.metrics.push_failed();
                            report.retrying += 1;
                            report.retry_at(Instant::now() + delay);
                            tracing::warn!(target_key = %job.describe(), attempt = attempts, delay_ms = delay.as_millis() as u64, answer = %next.last_error.as_deref().unwrap_or_default(), "push failed; will retry");
                        }
                        None => {
                            let what = job.describe();
                            let id = self.dead_letter(job, &answer, attempts).await?;
                            report.dead += 1;
                            tracing::error!(target_key = %what, attempts, dead_letter = id, answer = %describe(&answer), "push failed on every attempt of the retry schedule; kept as a dead letter");
                        }
                    }
                }
                Disposition::DeadLetter => {
                    let what = job.describe();
                    let id = self.dead_letter(job, &answer, attempts).await?;
                    report.dead += 1;
                    tracing::error!(target_key = %what, dead_letter = id, answer = %describe(&answer), "shop refused a push; kept as a dead letter");
                }
            }
        }
        Ok(report)
    }

    async fn dead_letter(
        &self,
        job: Job,
        answer: &Result<ShopAnswer, ShopError>,
        attempts: u32,
    ) -> Result<u64, StoreError> {
        let (status, body) = match answer {
            Ok(a) => (Some(a.status), a.body.clone()),
            Err(e) => (None, crate::telemetry::error_chain(e)),
        };
        let id = self
            .store
            .dead_letter(job.into_dead(), status, &body, now_ms(), attempts)
            .await?;
        self.store.durable().await?;
        self.metrics.dead_lettered();
        Ok(id)
    }
}
