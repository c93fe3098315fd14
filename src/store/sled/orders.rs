//! Shop orders on sled: `orders` (order_id -> OrderRecord), `order_hooks` (webhook-id ->
//! HookEntry), `orders_owed` (arrival sequence -> order_id), `orders_dead` (order_id -> empty),
//! and the queue index the order queue reads (`order_queue.rs`), written with each record.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SledStore;
use crate::store::{
    ready, OrderBook, OrderBooks, OrderReceipt, OrderRecord, OrderStatus, StoreError, StoreFuture,
};

#[derive(Serialize, Deserialize)]
struct HookEntry {
    order_id: String,
    at_ms: u64,
}

fn abort(e: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e.into())
}

impl OrderBook for SledStore {
    fn receive_order<'a>(
        &'a self,
        webhook_id: &'a str,
        order_id: &'a str,
        customer_key: &'a str,
        order: &'a Value,
        now_ms: u64,
    ) -> StoreFuture<'a, OrderReceipt> {
        ready(self.receive_order_now(webhook_id, order_id, customer_key, order, None, now_ms))
    }

    fn receive_state<'a>(
        &'a self,
        webhook_id: &'a str,
        order_id: &'a str,
        customer_key: &'a str,
        order: &'a Value,
        version: Option<i64>,
        now_ms: u64,
    ) -> StoreFuture<'a, OrderReceipt> {
        ready(self.receive_state_now(webhook_id, order_id, customer_key, order, version, now_ms))
    }

    fn order<'a>(&'a self, order_id: &'a str) -> StoreFuture<'a, Option<OrderRecord>> {
        ready(self.order_now(order_id))
    }

    fn owed_orders(&self) -> StoreFuture<'_, Vec<OrderRecord>> {
        ready(self.records_of(&self.orders_owed))
    }

    fn due_orders(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<OrderRecord>, Option<u64>)> {
        ready(self.due_orders_now(now_ms, limit))
    }

    fn order_records_read(&self) -> u64 {
        self.order_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn dead_orders(&self) -> StoreFuture<'_, Vec<OrderRecord>> {
        ready(self.records_of(&self.orders_dead))
    }

    fn order_depths(&self) -> (usize, usize) {
        (self.orders_owed.len(), self.orders_dead.len())
    }

    fn save_order<'a>(&'a self, record: &'a OrderRecord) -> StoreFuture<'a, ()> {
        ready(self.save_order_now(record))
    }

    fn retry_order<'a>(
        &'a self,
        order_id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<OrderRecord>> {
        ready(self.retry_order_now(order_id, now_ms))
    }

    fn prune_order_hooks(&self, before_ms: u64) -> StoreFuture<'_, usize> {
        ready(self.prune_order_hooks_now(before_ms))
    }
}

impl SledStore {
    fn receive_order_now(
        &self,
        webhook_id: &str,
        order_id: &str,
        customer_key: &str,
        order: &Value,
        version: Option<i64>,
        now_ms: u64,
    ) -> Result<OrderReceipt, StoreError> {
        self.writable()?;
        let seq = self.db.generate_id()?;
        let record = OrderRecord {
            order_id: order_id.to_owned(),
            customer_key: customer_key.to_owned(),
            order: order.clone(),
            webhook_id: webhook_id.to_owned(),
            received_ms: now_ms,
            seq,
            status: OrderStatus::Received,
            customer: None,
            sales_order: None,
            error: None,
            attempts: 0,
            next_attempt_ms: now_ms,
            books: OrderBooks {
                updated_at: order
                    .get("updated_at")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                version,
                ..OrderBooks::default()
            },
        };
        let record_bytes = serde_json::to_vec(&record)?;
        let hook_bytes = serde_json::to_vec(&HookEntry {
            order_id: order_id.to_owned(),
            at_ms: now_ms,
        })?;
        let id = order_id.as_bytes();
        let _guard = self.orders_lock.lock().unwrap_or_else(|e| e.into_inner());
        let index = self.index_change(&record, true)?;
        Ok((
            &self.orders,
            &self.order_hooks,
            &self.orders_owed,
            &self.orders_by_customer,
            &self.orders_heads,
            &self.orders_due,
        )
            .transaction(|(records, hooks, owed, by_customer, heads, due)| {
                if let Some(seen) = hooks.get(webhook_id.as_bytes())? {
                    let seen: HookEntry = serde_json::from_slice(&seen).map_err(abort)?;
                    return Ok(if seen.order_id == order_id {
                        OrderReceipt::RepeatedDelivery
                    } else {
                        OrderReceipt::HookReused {
                            order_id: seen.order_id,
                        }
                    });
                }
                if records.get(id)?.is_some() {
                    return Ok(OrderReceipt::KnownOrder);
                }
                records.insert(id, record_bytes.clone())?;
                hooks.insert(webhook_id.as_bytes(), hook_bytes.clone())?;
                owed.insert(&seq.to_be_bytes(), id)?;
                index.apply(by_customer, heads, due)?;
                Ok(OrderReceipt::New)
            })?)
    }

    fn receive_state_now(
        &self,
        webhook_id: &str,
        order_id: &str,
        customer_key: &str,
        order: &Value,
        version: Option<i64>,
        now_ms: u64,
    ) -> Result<OrderReceipt, StoreError> {
        let receipt =
            self.receive_order_now(webhook_id, order_id, customer_key, order, version, now_ms)?;
        if receipt != OrderReceipt::KnownOrder {
            return Ok(receipt);
        }
        let Some(version) = version else {
            return Ok(receipt);
        };
        let hook_bytes = serde_json::to_vec(&HookEntry {
            order_id: order_id.to_owned(),
            at_ms: now_ms,
        })?;
        let updated_at = order
            .get("updated_at")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = order_id.as_bytes();
        let _guard = self.orders_lock.lock().unwrap_or_else(|e| e.into_inner());
        // Owed again, due now, if the state is applied (planned here: every writer holds the
        // lock, so the record cannot change before the transaction reads it).
        let index = match self.order_now(order_id)? {
            Some(mut current) => {
                current.next_attempt_ms = now_ms;
                Some(self.index_change(&current, true)?)
            }
            None => None,
        };
        Ok((
            &self.orders,
            &self.order_hooks,
            &self.orders_owed,
            &self.orders_dead,
            &self.orders_by_customer,
            &self.orders_heads,
            &self.orders_due,
        )
            .transaction(|(records, hooks, owed, dead, by_customer, heads, due)| {
                if hooks.get(webhook_id.as_bytes())?.is_some() {
                    return Ok(OrderReceipt::RepeatedDelivery);
                }
                let Some(bytes) = records.get(id)? else {
                    return Ok(OrderReceipt::KnownOrder);
                };
                let mut record: OrderRecord = serde_json::from_slice(&bytes).map_err(abort)?;
                let stored = record.books.version;
                if stored.is_some_and(|s| s > version) {
                    return Ok(OrderReceipt::Stale);
                }
                if stored == Some(version) {
                    return Ok(OrderReceipt::KnownOrder);
                }
                record.order = order.clone();
                record.books.version = Some(version);
                record.books.updated_at = updated_at.clone();
                if record.status != OrderStatus::Placing {
                    record.status = OrderStatus::Received;
                }
                record.next_attempt_ms = now_ms;
                record.attempts = 0;
                let out = serde_json::to_vec(&record).map_err(abort)?;
                records.insert(id, out)?;
                hooks.insert(webhook_id.as_bytes(), hook_bytes.clone())?;
                owed.insert(&record.seq.to_be_bytes(), id)?;
                dead.remove(id)?;
                if let Some(index) = &index {
                    index.apply(by_customer, heads, due)?;
                }
                Ok(OrderReceipt::Updated)
            })?)
    }

    fn order_now(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.read_record(order_id.as_bytes())
    }

    fn records_of(&self, index: &::sled::Tree) -> Result<Vec<OrderRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in index.iter() {
            let (k, v) = entry?;
            // owed: seq -> order id; dead: order id -> empty.
            let id = if v.is_empty() { k } else { v };
            if let Some(record) = self.read_record(&id)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn save_order_now(&self, record: &OrderRecord) -> Result<(), StoreError> {
        self.writable()?;
        let bytes = serde_json::to_vec(record)?;
        let id = record.order_id.as_bytes();
        let seq = record.seq.to_be_bytes();
        let _guard = self.orders_lock.lock().unwrap_or_else(|e| e.into_inner());
        let index = self.index_change(record, record.status.is_owed())?;
        Ok((
            &self.orders,
            &self.orders_owed,
            &self.orders_dead,
            &self.orders_by_customer,
            &self.orders_heads,
            &self.orders_due,
        )
            .transaction(|(records, owed, dead, by_customer, heads, due)| {
                records.insert(id, bytes.clone())?;
                if record.status.is_owed() {
                    owed.insert(&seq, id)?;
                } else {
                    owed.remove(&seq)?;
                }
                if record.status == OrderStatus::Dead {
                    dead.insert(id, &[] as &[u8])?;
                } else {
                    dead.remove(id)?;
                }
                index.apply(by_customer, heads, due)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?)
    }

    fn retry_order_now(
        &self,
        order_id: &str,
        now_ms: u64,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let Some(mut record) = self.order_now(order_id)? else {
            return Ok(None);
        };
        if record.status != OrderStatus::Dead {
            return Ok(None);
        }
        record.status = OrderStatus::Received;
        record.next_attempt_ms = now_ms;
        self.save_order_now(&record)?;
        Ok(Some(record))
    }

    fn prune_order_hooks_now(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.writable()?;
        let hooks = &self.order_hooks;
        let mut removed = 0;
        for entry in hooks.iter() {
            let (k, v) = entry?;
            let old = serde_json::from_slice::<HookEntry>(&v).map_or(true, |h| h.at_ms < before_ms);
            if old {
                hooks.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
