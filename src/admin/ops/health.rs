//! What the status page and `GET /admin/status` show about the integration's health: whether
//! ERPNext and the shop answer, how long each queue has been waiting, and the reconcile passes.

use std::time::Duration;

use serde::Serialize;

use crate::model::InboxRecord;
use crate::monitor::{queue_depths, ReconcileState};
use crate::state::AppState;
use crate::telemetry::error_chain;

/// How long a reachability probe may take before the peer counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

use crate::model::now_ms;

/// Whether a peer answered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Probe {
    pub reachable: bool,
    /// What it answered, or why it did not.
    pub detail: String,
}

/// One queue.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueueView {
    pub name: &'static str,
    pub depth: usize,
    /// How old the oldest entry is (inbox and dead letters: from the entry itself; the other
    /// queues keep no time, so: how long the queue has been non-empty, as the workers saw it).
    pub oldest_age_ms: Option<u64>,
}

/// The health of the integration at a glance.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Health {
    pub erpnext: Probe,
    pub shop: Probe,
    pub last_webhook_ms: Option<u64>,
    pub last_push_ms: Option<u64>,
    pub queues: Vec<QueueView>,
    pub dead_letters: usize,
    pub reconcile_watermark: Option<String>,
    pub reconcile: ReconcileState,
    pub now_ms: u64,
}

impl Health {
    /// True when nothing needs an admin's attention.
    pub fn ok(&self) -> bool {
        self.erpnext.reachable && self.shop.reachable && self.dead_letters == 0
    }
}

impl Probe {
    fn up(detail: String) -> Self {
        Self {
            reachable: true,
            detail,
        }
    }
    fn down(detail: String) -> Self {
        Self {
            reachable: false,
            detail,
        }
    }
}

/// Runs a probe's request with the time limit; a failure or no answer is a [`Probe`] that
/// says why.
async fn within<T, E: std::error::Error>(
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Probe> {
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(Probe::down(error_chain(&e))),
        Err(_) => Err(Probe::down(format!(
            "no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}

async fn probe_erpnext(state: &AppState) -> Probe {
    // An answer that refuses the credentials means ERPNext is up, but the relay cannot work
    // with it: that counts as a problem too.
    let call = state.erp.method("frappe.auth.get_logged_user", &[]);
    match within(call).await {
        Ok(user) => Probe::up(format!(
            "answers; signed in as {}",
            user.as_str().unwrap_or("?")
        )),
        Err(p) => p,
    }
}

async fn probe_shop(state: &AppState) -> Probe {
    let client = match crate::shop::ShopClient::new(&state.settings.shop) {
        Ok(c) => c,
        Err(e) => return Probe::down(error_chain(&e)),
    };
    // The optional read endpoint; a shop without it answers 404, which still shows it is up.
    let call = client.get("/inventory/levels?channel=shoprelay-health");
    match within(call).await {
        Ok(a) if a.status == 401 || a.status == 403 => Probe::down(format!(
            "answers {} (the shop refuses shop.token)",
            a.status
        )),
        Ok(a) if a.status >= 500 => Probe::down(format!("answers {}", a.status)),
        Ok(a) => Probe::up(format!("answers {}", a.status)),
        Err(p) => p,
    }
}

/// Probes ERPNext and the shop (at once) and gathers the rest from the store and the monitor.
pub(crate) async fn snapshot(state: &AppState) -> Result<Health, crate::store::StoreError> {
    let (erpnext, shop) = tokio::join!(probe_erpnext(state), probe_shop(state));
    let depths = state.store.depths();
    state.monitor.observe(&depths);
    let now = now_ms();
    let inbox_oldest = state
        .store
        .inbox_batch(1)
        .await?
        .first()
        .and_then(|(_, bytes)| serde_json::from_slice::<InboxRecord>(bytes).ok())
        .map(|r| r.received_ms);
    let dead = state.store.dead_letters().await?;
    let dead_oldest = dead.iter().map(|d| d.at_ms).min();
    let queues = queue_depths(&depths)
        .into_iter()
        .map(|(name, depth)| {
            let since = match name {
                "inbox" => inbox_oldest,
                "dead" => dead_oldest,
                _ => state.monitor.waiting_since(name),
            };
            QueueView {
                name,
                depth,
                oldest_age_ms: since.filter(|_| depth > 0).map(|s| now.saturating_sub(s)),
            }
        })
        .collect();
    let watermark = state
        .store
        .meta(crate::erpnext::reconcile::WATERMARK)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(Health {
        erpnext,
        shop,
        last_webhook_ms: state.metrics.last_event_ms(),
        last_push_ms: state.metrics.last_push_ms(),
        queues,
        dead_letters: dead.len(),
        reconcile_watermark: watermark,
        reconcile: state.monitor.reconcile(),
        now_ms: now,
    })
}

/// "3 s", "4 min", "2 h 5 min", "3 d".
pub(crate) fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(age(999), "0 s");
        assert_eq!(age(59_000), "59 s");
        assert_eq!(age(61_000), "1 min");
        assert_eq!(age(3_660_000), "1 h 1 min");
        assert_eq!(age(3 * 86_400_000), "3 d");
    }
}
