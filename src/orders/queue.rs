//! The order queue: places owed orders in ERPNext, one order at a time per customer email (so
//! two orders of one new customer never create two Customers), several customers at once.
//! Every attempt is recorded before it starts ("placing") and after it ends; ERPNext being
//! unavailable schedules another attempt with backoff, a refusal makes the order dead until an
//! admin retries it.
//!
//! A step reads only the orders it attempts ([`crate::store::OrderBook::due_orders`], at most
//! `orders.concurrency`), so a backlog costs nothing while it waits. ERPNext being unavailable
//! pauses the whole queue with the same backoff (an outage is ERPNext's, not one order's):
//! during the pause a step reads nothing, and afterwards one order probes before the queue
//! serves several customers again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backoff::backoff;
use crate::channels::{ChannelError, Channels};
use crate::config::OrderQueueSettings;
use crate::metrics::{Metrics, OrderOutcome as Outcome};
use crate::model::now_ms;
use crate::orders::books;
use crate::orders::model::ShopOrder;
use crate::orders::worker::{place, OrderContext, PlaceError, Placed};
use crate::store::{OrderRecord, OrderStatus, Store, StoreError};
use crate::telemetry::error_chain;

/// The key that serialises a customer's orders: the email trimmed and lower-cased.
pub fn customer_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrderStep {
    /// Orders that reached ERPNext (created, or found already there).
    pub placed: usize,
    /// Orders that stay owed because ERPNext was unavailable.
    pub retried: usize,
    /// Orders refused (now dead).
    pub dead: usize,
    /// When the earliest order that was not due is due (ms since the epoch); after a step
    /// that placed something, step again at once.
    pub next_due_ms: Option<u64>,
}

impl OrderStep {
    /// True when the step attempted nothing.
    pub fn is_idle(&self) -> bool {
        self.placed == 0 && self.retried == 0 && self.dead == 0
    }
}

/// ERPNext found unavailable by the last steps: no order is attempted before `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outage {
    /// Steps in a row whose attempts all found ERPNext unavailable.
    failures: u32,
    until_ms: u64,
}

/// How long to wait after the `attempt`-th attempt found ERPNext unavailable: the base delay
/// doubled per attempt, capped, then between half and all of it (jitter, so that orders retried
/// together spread out).
fn retry_delay(attempt: u32, s: &OrderQueueSettings) -> Duration {
    backoff(
        attempt,
        Duration::from_millis(s.retry_base_ms),
        Duration::from_millis(s.retry_max_ms),
        fastrand::f64(),
    )
}

/// Places owed orders. Owned by the order loop; tests call [`OrderQueue::step`].
pub struct OrderQueue {
    store: Store,
    ctx: OrderContext,
    channels: Arc<Channels>,
    metrics: Arc<Metrics>,
    settings: OrderQueueSettings,
    outage: Mutex<Option<Outage>>,
}

impl OrderQueue {
    pub fn new(
        store: Store,
        ctx: OrderContext,
        channels: Arc<Channels>,
        metrics: Arc<Metrics>,
        settings: OrderQueueSettings,
    ) -> Self {
        Self {
            store,
            ctx,
            channels,
            metrics,
            settings,
            outage: Mutex::new(None),
        }
    }

    fn outage(&self) -> Option<Outage> {
        *self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_outage(&self, outage: Option<Outage>) {
        *self.outage.lock().unwrap_or_else(|e| e.into_inner()) = outage;
    }

    /// One step: places every due order of the batch (different customers, concurrently) and
    /// records how each attempt ended. While ERPNext is out (see the module docs) it reads
    /// nothing and says when the pause ends.
    pub async fn step(&self) -> Result<OrderStep, StoreError> {
        let now = now_ms();
        let outage = self.outage();
        if let Some(o) = outage.filter(|o| o.until_ms > now) {
            return Ok(OrderStep {
                next_due_ms: Some(o.until_ms),
                ..OrderStep::default()
            });
        }
        let limit = if outage.is_some() {
            1
        } else {
            self.settings.concurrency
        };
        let (batch, next_due_ms) = self.store.due_orders(now, limit).await?;
        let mut report = OrderStep {
            next_due_ms,
            ..OrderStep::default()
        };
        let attempts = batch.into_iter().map(|record| self.attempt(record));
        for outcome in futures_util::future::join_all(attempts).await {
            match outcome? {
                Outcome::Created | Outcome::Existing => report.placed += 1,
                Outcome::Retry => report.retried += 1,
                Outcome::Dead => report.dead += 1,
            }
        }
        if report.placed > 0 {
            self.set_outage(None);
        } else if report.retried > 0 {
            let failures = outage.map_or(0, |o| o.failures) + 1;
            let until_ms = now_ms() + retry_delay(failures, &self.settings).as_millis() as u64;
            self.set_outage(Some(Outage { failures, until_ms }));
            report.next_due_ms = Some(report.next_due_ms.map_or(until_ms, |d| d.max(until_ms)));
        }
        Ok(report)
    }

    /// The warehouse the order's channel sells from; an unknown channel is a refusal.
    async fn warehouse(&self, channel: &str) -> Result<Result<String, PlaceError>, StoreError> {
        let map = match self.channels.map().await {
            Ok(map) => map,
            Err(ChannelError::Erp(e)) => return Ok(Err(PlaceError::Unavailable(e))),
            Err(ChannelError::Store(e)) => return Err(e),
            Err(ChannelError::Codec(e)) => return Err(StoreError::Codec(e)),
        };
        Ok(map.order_warehouses.get(channel).cloned().ok_or_else(|| {
            PlaceError::Refused(format!(
                "channel `{channel}` is not configured (the relay has {}); add it, then retry the order",
                map.channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }))
    }

    async fn attempt(&self, mut record: OrderRecord) -> Result<Outcome, StoreError> {
        record.status = OrderStatus::Placing;
        record.attempts += 1;
        self.store.save_order(&record).await?;
        // On disk before ERPNext is asked: after a crash the order is placed again, and the
        // worker finds the Sales Order this attempt may have made.
        self.store.durable().await?;
        let result = match serde_json::from_value::<ShopOrder>(record.order.clone()) {
            Ok(order) => self.place_and_settle(&mut record, &order).await?,
            Err(e) => Err(PlaceError::Refused(format!(
                "the stored order cannot be read: {e}"
            ))),
        };
        let order_id = record.order_id.clone();
        let outcome = match result {
            Ok(Placed {
                customer,
                sales_order,
                created,
            }) => {
                tracing::info!(order_id, customer, sales_order, created, "order placed");
                record.status = OrderStatus::Created;
                record.customer = Some(customer);
                record.sales_order = Some(sales_order);
                record.error = None;
                if created {
                    Outcome::Created
                } else {
                    Outcome::Existing
                }
            }
            Err(PlaceError::Unavailable(e)) => {
                let delay = retry_delay(record.attempts, &self.settings);
                let error = format!("ERPNext is unavailable: {}", error_chain(&e));
                tracing::warn!(
                    order_id,
                    attempts = record.attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    error,
                    "order stays owed"
                );
                record.status = OrderStatus::Received;
                record.next_attempt_ms = now_ms() + delay.as_millis() as u64;
                record.error = Some(error);
                Outcome::Retry
            }
            Err(PlaceError::Refused(message)) => {
                tracing::warn!(
                    order_id,
                    error = message,
                    "order refused; dead until retried"
                );
                record.status = OrderStatus::Dead;
                record.error = Some(message);
                Outcome::Dead
            }
        };
        // A newer state that arrived meanwhile is kept, and owed.
        if books::adopt_newer_state(&self.store, &mut record).await?
            && record.status == OrderStatus::Created
        {
            record.status = OrderStatus::Received;
            record.next_attempt_ms = now_ms();
        }
        self.store.save_order(&record).await?;
        self.store.durable().await?;
        self.metrics.order_outcome(outcome);
        Ok(outcome)
    }

    /// The Sales Order (placed now, or the one recorded), then the books its state owes.
    async fn place_and_settle(
        &self,
        record: &mut OrderRecord,
        order: &ShopOrder,
    ) -> Result<Result<Placed, PlaceError>, StoreError> {
        let placed = match &record.sales_order {
            Some(so) => Placed {
                customer: record.customer.clone().unwrap_or_default(),
                sales_order: so.clone(),
                created: false,
            },
            None => {
                let placed = match self.warehouse(&order.channel).await? {
                    Ok(wh) => place(&self.ctx, order, Some(&wh)).await,
                    Err(e) => Err(e),
                };
                match placed {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        record.customer = Some(placed.customer.clone());
        record.sales_order = Some(placed.sales_order.clone());
        Ok(books::settle(&self.ctx, &self.store, record, order)
            .await?
            .map(|_| placed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::due;

    fn record(order_id: &str, email: &str, next_attempt_ms: u64) -> OrderRecord {
        OrderRecord {
            order_id: order_id.to_owned(),
            customer_key: customer_key(email),
            order: serde_json::json!({"order_id": order_id}),
            webhook_id: format!("msg_{order_id}"),
            received_ms: 0,
            seq: 0,
            status: OrderStatus::Received,
            customer: None,
            sales_order: None,
            error: None,
            attempts: 0,
            next_attempt_ms,
            books: Default::default(),
        }
    }

    fn ids(batch: &[OrderRecord]) -> Vec<&str> {
        batch.iter().map(|r| r.order_id.as_str()).collect()
    }

    #[test]
    fn one_order_per_customer_at_a_time_oldest_first() {
        let owed = vec![
            record("1", "ada@example.com", 0),
            record("2", " ADA@example.com ", 0),
            record("3", "bob@example.com", 50),
            record("4", "bob@example.com", 0),
            record("5", "cy@example.com", 0),
            record("6", "di@example.com", 0),
        ];
        let (batch, next) = due(owed.clone(), 10, 8);
        assert_eq!(ids(&batch), ["1", "5", "6"], "bob's 4 waits behind his 3");
        assert_eq!(next, Some(50));
        let (batch, next) = due(owed, 10, 2);
        assert_eq!(ids(&batch), ["1", "5"]);
        assert_eq!(next, Some(10), "di is due now, left out for concurrency");
    }

    #[test]
    fn retries_back_off_to_the_cap_with_jitter() {
        let s = OrderQueueSettings {
            retry_base_ms: 1000,
            retry_max_ms: 8000,
            concurrency: 1,
        };
        for (attempt, full) in [(1, 1000), (2, 2000), (4, 8000), (40, 8000)] {
            let d = retry_delay(attempt, &s).as_millis() as u64;
            assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn one_customer_whatever_the_case_and_spaces() {
        assert_eq!(
            customer_key("  Ada@Example.COM "),
            customer_key("ada@example.com")
        );
        assert_ne!(
            customer_key("ada@example.com"),
            customer_key("ada.l@example.com")
        );
    }
}
