//! Read-back on sled: `bins` (item \x1f warehouse -> BinRow), `item_skus` and `so_orders`
//! (cached fields), `tracking` (delivery note \x1f shipment -> Tracking), `shipped_at`.

use super::{key2, prefix, u64_of, SledStore};
use crate::model::{BinRow, Tracking};
use crate::store::{ready, FieldCache, ReadBack, StoreError, StoreFuture};

impl SledStore {
    fn cache_tree(&self, cache: FieldCache) -> &::sled::Tree {
        match cache {
            FieldCache::ItemSku => &self.item_skus,
            FieldCache::OrderId => &self.so_orders,
        }
    }

    fn apply_bins_now(
        &self,
        rows: &[BinRow],
        absent: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.writable()?;
        for row in rows {
            self.bins.insert(
                key2(&row.item_code, &row.warehouse),
                serde_json::to_vec(row)?,
            )?;
        }
        for (item, wh) in absent {
            self.bins.remove(key2(item, wh))?;
        }
        Ok(())
    }

    fn set_tracking_now(&self, delivery_note: &str, t: &Tracking) -> Result<(), StoreError> {
        self.writable()?;
        self.tracking
            .insert(key2(delivery_note, &t.shipment), serde_json::to_vec(t)?)?;
        Ok(())
    }

    fn first_shipped_at_now(&self, delivery_note: &str, now_ms: u64) -> Result<u64, StoreError> {
        self.writable()?;
        let prev = self.shipped_at.compare_and_swap(
            delivery_note,
            None::<&[u8]>,
            Some(&now_ms.to_be_bytes()[..]),
        )?;
        Ok(match prev {
            Ok(()) => now_ms,
            Err(e) => e.current.map(|v| u64_of(&v)).unwrap_or(now_ms),
        })
    }
}

impl ReadBack for SledStore {
    fn apply_bins<'a>(
        &'a self,
        rows: &'a [BinRow],
        absent: &'a [(String, String)],
    ) -> StoreFuture<'a, ()> {
        ready(self.apply_bins_now(rows, absent))
    }

    fn bin<'a>(&'a self, item: &'a str, warehouse: &'a str) -> StoreFuture<'a, Option<BinRow>> {
        ready((|| match self.bins.get(key2(item, warehouse))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        })())
    }

    fn has_bins<'a>(&'a self, item: &'a str) -> StoreFuture<'a, bool> {
        ready((|| {
            Ok(self
                .bins
                .scan_prefix(prefix(item))
                .next()
                .transpose()?
                .is_some())
        })())
    }

    fn cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
    ) -> StoreFuture<'a, Option<Option<String>>> {
        ready((|| {
            Ok(self
                .cache_tree(cache)
                .get(name)?
                .map(|v| Some(String::from_utf8_lossy(&v).into_owned()).filter(|s| !s.is_empty())))
        })())
    }

    fn set_cached_field<'a>(
        &'a self,
        cache: FieldCache,
        name: &'a str,
        value: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.cache_tree(cache)
                .insert(name, value.unwrap_or_default().as_bytes())?;
            Ok(())
        })())
    }

    fn forget_cached_field<'a>(&'a self, cache: FieldCache, name: &'a str) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.cache_tree(cache).remove(name)?;
            Ok(())
        })())
    }

    fn set_tracking<'a>(&'a self, delivery_note: &'a str, t: &'a Tracking) -> StoreFuture<'a, ()> {
        ready(self.set_tracking_now(delivery_note, t))
    }

    fn trackings<'a>(&'a self, delivery_note: &'a str) -> StoreFuture<'a, Vec<Tracking>> {
        ready(
            self.tracking
                .scan_prefix(prefix(delivery_note))
                .map(|r| Ok(serde_json::from_slice(&r?.1)?))
                .collect(),
        )
    }

    fn first_shipped_at<'a>(&'a self, delivery_note: &'a str, now_ms: u64) -> StoreFuture<'a, u64> {
        ready(self.first_shipped_at_now(delivery_note, now_ms))
    }
}
