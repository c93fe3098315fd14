//! The outbox: one generic coalescing queue per kind (levels, shipments; next, orders). Each
//! entry is a value owed to the shop under (group, key); queuing a value equal to the last one
//! queued does nothing, a newer value replaces one still waiting, and an acknowledgement removes
//! an entry only if it still holds the value that was sent. Each target (a levels channel, a
//! shipment) carries its retry state (attempts, next attempt), persisted beside its entries.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreFuture};
use crate::model::{Level, ShipmentOp};

/// What an outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// Stock levels: group = channel, key = SKU, value = the level (8 bytes, big-endian).
    Levels,
    /// Shipments: group = shop order id, key = shipment id, value = the operation (JSON).
    Shipments,
}

impl OutboxKind {
    /// Every kind.
    pub const ALL: [OutboxKind; 2] = [OutboxKind::Levels, OutboxKind::Shipments];

    pub(crate) fn index(self) -> usize {
        match self {
            OutboxKind::Levels => 0,
            OutboxKind::Shipments => 1,
        }
    }

    /// The kind's name in keys and in the admin API.
    pub fn name(self) -> &'static str {
        match self {
            OutboxKind::Levels => "levels",
            OutboxKind::Shipments => "shipments",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A value to queue under (group, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub group: String,
    pub key: String,
    pub value: Vec<u8>,
}

/// An entry waiting in an outbox.
pub type Pending = Queued;

/// What one request goes to, and what retry state is kept per: a whole group (a levels channel:
/// one request per channel) or one entry (`key`: a shipment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub kind: OutboxKind,
    pub group: String,
    pub key: Option<String>,
}

/// How a target's retries stand: persisted, so a restart resumes the schedule where it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// Attempts made so far (all failed).
    pub attempts: u32,
    /// Not before this time (ms since the epoch).
    pub next_attempt_ms: u64,
    /// What the last attempt got.
    pub last_error: Option<String>,
}

/// One (group, key) of an outbox: the value last queued, and the value waiting (if one is).
pub type Entry = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The coalescing outboxes and their retry state.
pub trait Outbox: Send + Sync {
    /// Queues the entries that differ from the last value queued under their (group, key),
    /// replacing any value still waiting there. Returns how many were queued.
    fn queue<'a>(&'a self, kind: OutboxKind, entries: &'a [Queued]) -> StoreFuture<'a, usize>;
    /// The groups with entries waiting, in order.
    fn pending_groups(&self, kind: OutboxKind) -> StoreFuture<'_, Vec<String>>;
    /// Up to `limit` entries waiting, of `group` (None: of any group), in order.
    fn pending<'a>(
        &'a self,
        kind: OutboxKind,
        group: Option<&'a str>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Pending>>;
    /// The shop has these: remove each unless a newer value replaced it meanwhile.
    fn acked<'a>(&'a self, kind: OutboxKind, sent: &'a [Pending]) -> StoreFuture<'a, ()>;
    /// A target's retry state, if it has failed since its last success.
    fn retry_state<'a>(&'a self, target: &'a Target) -> StoreFuture<'a, Option<RetryState>>;
    /// Sets (None: clears) a target's retry state.
    fn set_retry_state<'a>(
        &'a self,
        target: &'a Target,
        state: Option<&'a RetryState>,
    ) -> StoreFuture<'a, ()>;
    /// Every target with a retry state.
    fn retry_states(&self) -> StoreFuture<'_, Vec<(Target, RetryState)>>;
    /// For one (group, key): the value last queued, and the value waiting (if one is).
    fn entry<'a>(
        &'a self,
        kind: OutboxKind,
        group: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Entry>;
}

/// Levels and shipments as typed entries of the generic outbox.
impl Store {
    /// Records computed levels; those that differ from the last value queued for the shop (or
    /// were never queued) go into the outbox. Returns how many were queued.
    pub async fn queue_levels(&self, levels: &[Level]) -> Result<usize, StoreError> {
        let entries: Vec<Queued> = levels
            .iter()
            .map(|l| Queued {
                group: l.channel.clone(),
                key: l.sku.clone(),
                value: l.available.to_be_bytes().to_vec(),
            })
            .collect();
        self.queue(OutboxKind::Levels, &entries).await
    }

    /// For (channel, sku): the level last queued for the shop, and the level waiting (if one
    /// is; otherwise the shop has the last one queued, or it was dead-lettered).
    pub async fn level(
        &self,
        channel: &str,
        sku: &str,
    ) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let (queued, waiting) = self.entry(OutboxKind::Levels, channel, sku).await?;
        Ok((queued.map(|v| level_of(&v)), waiting.map(|v| level_of(&v))))
    }

    /// Channels that have levels waiting.
    pub async fn outbox_channels(&self) -> Result<Vec<String>, StoreError> {
        self.pending_groups(OutboxKind::Levels).await
    }

    /// Up to `limit` levels waiting for `channel`.
    pub async fn outbox_batch(
        &self,
        channel: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .pending(OutboxKind::Levels, Some(channel), limit)
            .await?
            .into_iter()
            .map(|p| (p.key, level_of(&p.value)))
            .collect())
    }

    /// The shop accepted these levels of `channel`.
    pub async fn outbox_acked(
        &self,
        channel: &str,
        sent: &[(String, u64)],
    ) -> Result<(), StoreError> {
        let sent: Vec<Pending> = sent
            .iter()
            .map(|(sku, v)| Pending {
                group: channel.to_owned(),
                key: sku.clone(),
                value: v.to_be_bytes().to_vec(),
            })
            .collect();
        self.acked(OutboxKind::Levels, &sent).await
    }

    /// Queues shipment operations that differ from the last one queued for their shipment.
    pub async fn queue_shipments(&self, ops: &[ShipmentOp]) -> Result<usize, StoreError> {
        let entries = ops
            .iter()
            .map(shipment_entry)
            .collect::<Result<Vec<Queued>, StoreError>>()?;
        self.queue(OutboxKind::Shipments, &entries).await
    }

    /// Up to `limit` shipment operations waiting to be sent.
    pub async fn shipment_batch(&self, limit: usize) -> Result<Vec<ShipmentOp>, StoreError> {
        self.pending(OutboxKind::Shipments, None, limit)
            .await?
            .iter()
            .map(|p| Ok(serde_json::from_slice(&p.value)?))
            .collect()
    }

    /// The shop has `op`: take it out unless a newer operation replaced it meanwhile.
    pub async fn shipment_acked(&self, op: &ShipmentOp) -> Result<(), StoreError> {
        self.acked(OutboxKind::Shipments, &[shipment_entry(op)?])
            .await
    }
}

/// A shipment operation as an outbox entry.
pub(crate) fn shipment_entry(op: &ShipmentOp) -> Result<Queued, StoreError> {
    Ok(Queued {
        group: op.order_id.clone(),
        key: op.shipment_id.clone(),
        value: serde_json::to_vec(op)?,
    })
}

/// A level as stored in an outbox entry: 8 bytes, big-endian (shorter values are read as their
/// leading bytes, zero-padded).
pub(crate) fn level_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_be_bytes(b)
}
