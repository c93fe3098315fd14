//! Dead letters: pushes the shop refused for good, or whose retry schedule ran out, kept with
//! the shop's answer until an admin retries (re-queues the current value) or discards them.

use serde::{Deserialize, Serialize};

use super::outbox::{shipment_entry, OutboxKind, Queued, Target};
use super::{StoreError, StoreFuture};
use crate::model::ShipmentOp;

/// What a dead push was about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadTarget {
    /// `POST /inventory/levels` for one channel.
    Levels {
        channel: String,
        levels: Vec<(String, u64)>,
    },
    /// A shipment operation (`/orders/{order_id}/shipments/{shipment_id}`).
    Shipment { op: ShipmentOp },
}

impl DeadTarget {
    /// The outbox entries it was made of, and the target its retry state was kept for.
    pub(crate) fn entries(&self) -> Result<(Vec<Queued>, Target), StoreError> {
        Ok(match self {
            DeadTarget::Levels { channel, levels } => (
                levels
                    .iter()
                    .map(|(sku, v)| Queued {
                        group: channel.clone(),
                        key: sku.clone(),
                        value: v.to_be_bytes().to_vec(),
                    })
                    .collect(),
                Target {
                    kind: OutboxKind::Levels,
                    group: channel.clone(),
                    key: None,
                },
            ),
            DeadTarget::Shipment { op } => (
                vec![shipment_entry(op)?],
                Target {
                    kind: OutboxKind::Shipments,
                    group: op.order_id.clone(),
                    key: Some(op.shipment_id.clone()),
                },
            ),
        })
    }

    pub(crate) fn kind(&self) -> OutboxKind {
        match self {
            DeadTarget::Levels { .. } => OutboxKind::Levels,
            DeadTarget::Shipment { .. } => OutboxKind::Shipments,
        }
    }
}

/// A push kept for the admin with the shop's last answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    #[serde(flatten)]
    pub target: DeadTarget,
    pub status: Option<u16>,
    pub response: String,
    pub at_ms: u64,
    /// Attempts made before it was given up (1 for a refusal).
    #[serde(default)]
    pub attempts: u32,
}

/// Refused and exhausted pushes.
pub trait DeadLetters: Send + Sync {
    /// Keeps a dead push and takes its entries out of the outbox (those not replaced by a newer
    /// value meanwhile), with its retry state. What was queued stays recorded as last queued, so
    /// the same value is not sent again until it changes or an admin retries the letter.
    fn dead_letter<'a>(
        &'a self,
        target: DeadTarget,
        status: Option<u16>,
        response: &'a str,
        at_ms: u64,
        attempts: u32,
    ) -> StoreFuture<'a, u64>;
    /// Every dead letter, oldest first.
    fn dead_letters(&self) -> StoreFuture<'_, Vec<DeadLetter>>;
    /// Takes a letter out; with `requeue`, what it was about goes back into the outbox with its
    /// current value (never the letter's possibly outdated one). False when there is no such id.
    fn resolve_dead(&self, id: u64, requeue: bool) -> StoreFuture<'_, bool>;
}
