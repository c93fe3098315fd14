//! The outboxes on sled: per kind a "last queued" tree and a "pending" tree (group \x1f key ->
//! value), and `outbox_retry` (kind \x1f group \x1f key -> RetryState).

use ::sled::transaction::{ConflictableTransactionError, Transactional};

use super::{key2, prefix, split2, Counters, SledStore, SEP};
use crate::store::{
    ready, Entry, Outbox, OutboxKind, Pending, Queued, RetryState, StoreError, StoreFuture, Target,
};

pub(super) fn retry_key(t: &Target) -> Vec<u8> {
    let mut k = key2(t.kind.name(), &t.group);
    k.push(SEP);
    k.extend_from_slice(t.key.as_deref().unwrap_or_default().as_bytes());
    k
}

fn target_of(k: &[u8]) -> Option<Target> {
    let (kind, rest) = split2(k)?;
    let (group, key) = split2(rest.as_bytes())?;
    Some(Target {
        kind: OutboxKind::from_name(&kind)?,
        group,
        key: Some(key).filter(|k| !k.is_empty()),
    })
}

fn pending_of(k: &[u8], v: &[u8]) -> Pending {
    let (group, key) = split2(k).unwrap_or_default();
    Pending {
        group,
        key,
        value: v.to_vec(),
    }
}

impl SledStore {
    fn queue_now(&self, kind: OutboxKind, entries: &[Queued]) -> Result<usize, StoreError> {
        self.writable()?;
        let trees = self.outbox(kind);
        let (queued, added) = (&trees.queued, &trees.pending).transaction(|(q, out)| {
            let (mut n, mut added) = (0usize, 0i64);
            for e in entries {
                let key = key2(&e.group, &e.key);
                if q.get(&key)?.as_deref() == Some(&e.value[..]) {
                    continue;
                }
                q.insert(key.clone(), e.value.clone())?;
                added += i64::from(out.insert(key, e.value.clone())?.is_none());
                n += 1;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>((n, added))
        })?;
        Counters::add(self.outbox_counter(kind), added);
        Ok(queued)
    }

    fn pending_groups_now(&self, kind: OutboxKind) -> Result<Vec<String>, StoreError> {
        let tree = &self.outbox(kind).pending;
        let mut out: Vec<String> = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        loop {
            let next = tree.range(from.clone()..).next().transpose()?;
            let Some((k, _)) = next else { break };
            let Some((group, _)) = split2(&k) else { break };
            from = prefix(&group);
            from.push(0xff);
            out.push(group);
        }
        Ok(out)
    }

    fn acked_now(&self, kind: OutboxKind, sent: &[Pending]) -> Result<(), StoreError> {
        self.writable()?;
        let tree = &self.outbox(kind).pending;
        for p in sent {
            let swapped =
                tree.compare_and_swap(key2(&p.group, &p.key), Some(&p.value[..]), None::<&[u8]>)?;
            Counters::add(self.outbox_counter(kind), -i64::from(swapped.is_ok()));
        }
        Ok(())
    }
}

impl Outbox for SledStore {
    fn queue<'a>(&'a self, kind: OutboxKind, entries: &'a [Queued]) -> StoreFuture<'a, usize> {
        ready(self.queue_now(kind, entries))
    }

    fn pending_groups(&self, kind: OutboxKind) -> StoreFuture<'_, Vec<String>> {
        ready(self.pending_groups_now(kind))
    }

    fn pending<'a>(
        &'a self,
        kind: OutboxKind,
        group: Option<&'a str>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Pending>> {
        let tree = &self.outbox(kind).pending;
        let from = group.map(prefix).unwrap_or_default();
        ready(
            tree.scan_prefix(from)
                .take(limit)
                .map(|r| {
                    let (k, v) = r?;
                    Ok(pending_of(&k, &v))
                })
                .collect(),
        )
    }

    fn acked<'a>(&'a self, kind: OutboxKind, sent: &'a [Pending]) -> StoreFuture<'a, ()> {
        ready(self.acked_now(kind, sent))
    }

    fn retry_state<'a>(&'a self, target: &'a Target) -> StoreFuture<'a, Option<RetryState>> {
        ready((|| match self.retry.get(retry_key(target))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        })())
    }

    fn set_retry_state<'a>(
        &'a self,
        target: &'a Target,
        state: Option<&'a RetryState>,
    ) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            match state {
                Some(s) => {
                    self.retry
                        .insert(retry_key(target), serde_json::to_vec(s)?)?;
                }
                None => {
                    self.retry.remove(retry_key(target))?;
                }
            }
            Ok(())
        })())
    }

    fn entry<'a>(
        &'a self,
        kind: OutboxKind,
        group: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Entry> {
        let trees = self.outbox(kind);
        let k = key2(group, key);
        ready((|| {
            Ok((
                trees.queued.get(&k)?.map(|v| v.to_vec()),
                trees.pending.get(&k)?.map(|v| v.to_vec()),
            ))
        })())
    }

    fn retry_states(&self) -> StoreFuture<'_, Vec<(Target, RetryState)>> {
        ready(
            self.retry
                .iter()
                .filter_map(|r| match r {
                    Ok((k, v)) => target_of(&k).map(|t| {
                        serde_json::from_slice(&v)
                            .map(|s| (t, s))
                            .map_err(StoreError::from)
                    }),
                    Err(e) => Some(Err(e.into())),
                })
                .collect(),
        )
    }
}
