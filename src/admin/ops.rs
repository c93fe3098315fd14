//! The operations the admin pages and the JSON API share, so both do exactly the same thing:
//! the health snapshot (`health`), the read-only lookups (`lookup`: a SKU, a mapping's
//! preview, the warehouse tree), and the changes an admin makes: dead letters retried or
//! discarded, a channel mapping put in force, a reconcile pass requested.

pub(crate) mod health;
pub(crate) mod lookup;

use crate::availability::Channel;
use crate::channels::ChannelError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// Why an admin's change was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    #[error("no dead letter with id {0}")]
    NotFound(u64),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the channels could not be saved")]
    Channels(#[from] ChannelError),
}

/// Retries (re-queues) or discards one dead letter, or all of them (`id` None). Returns the
/// ids it resolved; an unknown id is an error.
pub(crate) async fn settle_dead(
    state: &AppState,
    id: Option<u64>,
    requeue: bool,
) -> Result<Vec<u64>, OpError> {
    let ids = match id {
        Some(id) => vec![id],
        None => state
            .store
            .dead_letters()
            .await?
            .iter()
            .map(|d| d.id)
            .collect(),
    };
    let mut done = Vec::new();
    for one in ids {
        if state.store.resolve_dead(one, requeue).await? {
            done.push(one);
        } else if id.is_some() {
            return Err(OpError::NotFound(one));
        }
        // Resolving all: a letter someone else resolved meanwhile is simply gone.
    }
    state.store.durable().await?;
    if requeue && !done.is_empty() {
        state.wake_pusher.notify_one();
    }
    tracing::info!(
        count = done.len(),
        action = if requeue { "retry" } else { "discard" },
        "dead letters resolved by an admin"
    );
    Ok(done)
}

/// Puts `channels` in force (None: the file's again), persisted; every item is then re-priced
/// by a full reconcile pass. The inner result says whether the mapping could be resolved
/// against ERPNext's Warehouse tree now (Err: saved, resolved once ERPNext answers).
pub(crate) async fn put_in_force(
    state: &AppState,
    channels: Option<Vec<Channel>>,
) -> Result<Result<(), String>, OpError> {
    let source = if channels.is_some() { "admin" } else { "file" };
    state.channels.save_override(channels).await?;
    let applied = state.channels.refresh().await;
    request_reconcile(state, true);
    tracing::info!(
        source,
        "channel mapping changed by an admin; a full reconcile pass re-prices every item"
    );
    Ok(applied.map(|_| ()).map_err(|e| error_chain(&e)))
}

/// Asks the reconcile loop for a pass now (`full`: every item, not only those changed since the
/// watermark).
pub(crate) fn request_reconcile(state: &AppState, full: bool) {
    state.monitor.pass_requested();
    state.reconcile.request(full);
}
