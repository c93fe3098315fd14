//! Dead letters: pushes the shop refused for good, or whose retry schedule ran out, kept with
//! the shop's answer until an admin retries (re-queues the current value) or discards them.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use serde::{Deserialize, Serialize};

use super::outbox::{retry_key, shipment_entry, OutboxKind, Queued, Target};
use super::sled_backend::{key2, Counters, SledStore};
use super::{ready, StoreError, StoreFuture};
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
    fn entries(&self) -> Result<(Vec<Queued>, Target), StoreError> {
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

    fn kind(&self) -> OutboxKind {
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

impl SledStore {
    fn dead_letter_now(
        &self,
        target: DeadTarget,
        status: Option<u16>,
        response: &str,
        at_ms: u64,
        attempts: u32,
    ) -> Result<u64, StoreError> {
        self.writable()?;
        let id = self.db.generate_id()?;
        let kind = target.kind();
        let (sent, retry_target) = target.entries()?;
        let letter = DeadLetter {
            id,
            target,
            status,
            response: response.chars().take(4096).collect(),
            at_ms,
            attempts,
        };
        let bytes = serde_json::to_vec(&letter)?;
        let rkey = retry_key(&retry_target);
        let removed = (&self.outbox(kind).pending, &self.dead, &self.retry).transaction(
            |(out, dead, retry)| {
                let mut removed = 0i64;
                for e in &sent {
                    let key = key2(&e.group, &e.key);
                    if out.get(&key)?.as_deref() == Some(&e.value[..]) {
                        out.remove(key)?;
                        removed += 1;
                    }
                }
                dead.insert(&id.to_be_bytes(), bytes.clone())?;
                retry.remove(rkey.clone())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(removed)
            },
        )?;
        Counters::add(self.outbox_counter(kind), -removed);
        Counters::add(&self.counters.dead, 1);
        Ok(id)
    }

    fn resolve_dead_now(&self, id: u64, requeue: bool) -> Result<bool, StoreError> {
        self.writable()?;
        let key = id.to_be_bytes();
        let Some(bytes) = self.dead.get(key)? else {
            return Ok(false);
        };
        let letter: DeadLetter = serde_json::from_slice(&bytes)?;
        let kind = letter.target.kind();
        let (entries, _) = letter.target.entries()?;
        let keys: Vec<Vec<u8>> = entries.iter().map(|e| key2(&e.group, &e.key)).collect();
        let trees = self.outbox(kind);
        let (done, added) =
            (&self.dead, &trees.queued, &trees.pending).transaction(|(dead, queued, out)| {
                if dead.remove(&key)?.is_none() {
                    return Ok((false, 0i64));
                }
                let mut added = 0;
                if requeue {
                    for k in &keys {
                        if let (None, Some(current)) = (out.get(k)?, queued.get(k)?) {
                            out.insert(k.clone(), current)?;
                            added += 1;
                        }
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>((true, added))
            })?;
        if done {
            Counters::add(&self.counters.dead, -1);
            Counters::add(self.outbox_counter(kind), added);
        }
        Ok(done)
    }
}

impl DeadLetters for SledStore {
    fn dead_letter<'a>(
        &'a self,
        target: DeadTarget,
        status: Option<u16>,
        response: &'a str,
        at_ms: u64,
        attempts: u32,
    ) -> StoreFuture<'a, u64> {
        ready(self.dead_letter_now(target, status, response, at_ms, attempts))
    }

    fn dead_letters(&self) -> StoreFuture<'_, Vec<DeadLetter>> {
        ready(
            self.dead
                .iter()
                .map(|r| {
                    let (_, v) = r?;
                    Ok(serde_json::from_slice(&v)?)
                })
                .collect(),
        )
    }

    fn resolve_dead(&self, id: u64, requeue: bool) -> StoreFuture<'_, bool> {
        ready(self.resolve_dead_now(id, requeue))
    }
}
