//! Dead letters on sled: `dead` (id -> DeadLetter); a letter is written, and its entries and
//! retry state taken out of the outbox, in one transaction.

use ::sled::transaction::{ConflictableTransactionError, Transactional};

use super::outbox::retry_key;
use super::{key2, Counters, SledStore};
use crate::store::{ready, DeadLetter, DeadLetters, DeadTarget, StoreError, StoreFuture};

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
