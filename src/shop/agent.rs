//! The push agent: drains the outbox into `POST /inventory/levels`, one request in flight per
//! channel so that the last request the shop receives holds the current value; retries with
//! backoff and Retry-After; refused batches become dead letters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{ShopAnswer, ShopClient, ShopError};
use super::retry::{classify, next_delay, retry_after, Disposition};
use crate::admin::Metrics;
use crate::config::ShopSettings;
use crate::store::{Store, StoreError};

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
    /// The earliest time a channel in backoff may be tried again.
    pub next_retry: Option<Instant>,
}

impl PushReport {
    /// True when nothing was sent.
    pub fn is_idle(&self) -> bool {
        self.accepted == 0 && self.retrying == 0 && self.dead == 0
    }
}

/// Pushes levels. Tests call [`PushAgent::step`]; the running relay loops over it.
pub struct PushAgent {
    store: Store,
    client: ShopClient,
    max_batch: usize,
    base: Duration,
    max: Duration,
    backoff: Mutex<HashMap<String, Backoff>>,
    metrics: Arc<Metrics>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
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

    fn backoff_of(&self, channel: &str) -> Option<Backoff> {
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(channel)
            .copied()
    }

    fn set_backoff(&self, channel: &str, value: Option<Backoff>) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(b) => map.insert(channel.to_owned(), b),
            None => map.remove(channel),
        };
    }

    /// Sends at most one batch per channel that has levels waiting and is not backing off.
    pub async fn step(&self) -> Result<PushReport, StoreError> {
        let mut report = PushReport::default();
        for channel in self.store.outbox_channels()? {
            let now = Instant::now();
            let backoff = self.backoff_of(&channel);
            if let Some(b) = backoff.filter(|b| b.until > now) {
                report.next_retry = Some(report.next_retry.map_or(b.until, |t| t.min(b.until)));
                continue;
            }
            let batch = self.store.outbox_batch(&channel, self.max_batch)?;
            if batch.is_empty() {
                continue;
            }
            let answer = self.client.post_levels(&channel, &batch).await;
            let disposition = match &answer {
                Ok(a) => classify(a.status),
                Err(_) => Disposition::Retry,
            };
            match disposition {
                Disposition::Done => {
                    self.store.outbox_acked(&channel, &batch)?;
                    self.set_backoff(&channel, None);
                    self.metrics.pushed(batch.len());
                    report.accepted += 1;
                    report.levels += batch.len();
                    tracing::debug!(channel, levels = batch.len(), "shop accepted levels");
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
                    self.set_backoff(&channel, Some(Backoff { attempt, until }));
                    self.metrics.push_failed();
                    report.retrying += 1;
                    report.next_retry = Some(report.next_retry.map_or(until, |t| t.min(until)));
                    tracing::warn!(channel, attempt, delay_ms = delay.as_millis() as u64, answer = %describe(&answer), "push failed; will retry");
                }
                Disposition::DeadLetter => {
                    let (status, body) = match &answer {
                        Ok(a) => (Some(a.status), a.body.as_str()),
                        Err(_) => (None, ""),
                    };
                    let id = self
                        .store
                        .dead_letter(&channel, &batch, status, body, now_ms())?;
                    self.set_backoff(&channel, None);
                    self.metrics.dead_lettered();
                    report.dead += 1;
                    tracing::error!(channel, dead_letter = id, answer = %describe(&answer), "shop refused levels; kept as a dead letter");
                }
            }
        }
        Ok(report)
    }
}

fn describe(answer: &Result<ShopAnswer, ShopError>) -> String {
    match answer {
        Ok(a) => format!(
            "{} {}",
            a.status,
            a.body.chars().take(200).collect::<String>()
        ),
        Err(e) => e.to_string(),
    }
}
