//! Dedup of deliveries: two rotating generations of body hashes, so a key is remembered for
//! one to two windows (`server.dedup_window_secs`) without a scan to expire old keys.

use std::sync::atomic::Ordering;

use super::{u64_of, SledStore};
use crate::store::StoreError;

impl SledStore {
    /// Makes sure the dedup generation for `epoch` is current, clearing the one that expired.
    fn rotate_dedup(&self, epoch: u64) -> Result<(), StoreError> {
        if self.epoch.load(Ordering::Acquire) == epoch {
            return Ok(());
        }
        let _guard = self.rotate.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            return Ok(());
        }
        for (gen, wanted) in [
            (epoch % 2, epoch),
            ((epoch + 1) % 2, epoch.saturating_sub(1)),
        ] {
            let meta_key = format!("dedup_epoch/{gen}");
            let held = self.meta.get(&meta_key)?.map(|v| u64_of(&v));
            if held != Some(wanted) {
                self.dedup[gen as usize].clear()?;
                self.meta.insert(meta_key, &wanted.to_be_bytes())?;
            }
        }
        self.epoch.store(epoch, Ordering::Release);
        Ok(())
    }

    /// True when `key` was seen within the window ending at `now_secs`.
    pub(super) fn seen(&self, key: &[u8], now_secs: u64) -> Result<bool, StoreError> {
        let epoch = now_secs / self.dedup_window_secs;
        self.rotate_dedup(epoch)?;
        let cur = &self.dedup[(epoch % 2) as usize];
        let prev = &self.dedup[((epoch + 1) % 2) as usize];
        Ok(cur.contains_key(key)? || prev.contains_key(key)?)
    }

    /// Remembers `key` in the current window (after [`SledStore::seen`] rotated it).
    pub(super) fn remember(&self, key: &[u8], now_secs: u64) -> Result<(), StoreError> {
        let epoch = now_secs / self.dedup_window_secs;
        self.dedup[(epoch % 2) as usize].insert(key, &now_secs.to_be_bytes())?;
        Ok(())
    }
}
