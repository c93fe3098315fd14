//! Shop orders: one record per order id (the order as received, its status, the Customer and
//! Sales Order it became, the last error, attempts and the next attempt), the webhook ids orders
//! arrived under, and two indexes: orders still owed to ERPNext (in arrival order) and dead
//! orders. The store keeps the order as the JSON it was received as; the orders module reads it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreFuture;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stored, owed to ERPNext (waiting for its first or next attempt).
    Received,
    /// An attempt started and has not ended: after a crash the order is placed again (the
    /// worker finds a Sales Order already made by the shop order id).
    Placing,
    /// The Sales Order exists.
    Created,
    /// ERPNext or the relay refused the order; it waits for an admin's retry.
    Dead,
}

impl OrderStatus {
    /// True while ERPNext still owes this order a Sales Order.
    pub fn is_owed(self) -> bool {
        matches!(self, Self::Received | Self::Placing)
    }
}

/// Everything the relay knows about one shop order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_id: String,
    /// The customer's email, trimmed and lower-cased: one customer's orders are placed one
    /// after another.
    pub customer_key: String,
    /// The order as received (the shop contract's `ShopOrder`).
    pub order: Value,
    /// The `webhook-id` it first arrived under.
    pub webhook_id: String,
    pub received_ms: u64,
    /// Arrival sequence (the key of its entry among owed orders).
    pub seq: u64,
    pub status: OrderStatus,
    pub customer: Option<String>,
    pub sales_order: Option<String>,
    /// The last error (kept while the order is retried, for the admin).
    pub error: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (ms since the epoch) is the order tried again.
    pub next_attempt_ms: u64,
    /// What the order's state booked in ERPNext beyond the Sales Order (contract 3).
    #[serde(default)]
    pub books: OrderBooks,
}

/// An order's invoice and payments in ERPNext, and the markers that make each exactly once: a
/// step is marked "in progress" (and flushed) before ERPNext is asked to create it, so after a
/// crash the relay looks for what that step may have made before it makes anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderBooks {
    /// The `updated_at` of the state last stored (None: the order has none).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// That `updated_at` in nanoseconds since the epoch, as the caller compared it.
    #[serde(default)]
    pub version: Option<i64>,
    /// The submitted Sales Invoice.
    #[serde(default)]
    pub invoice: Option<String>,
    /// An invoice may have been created and not recorded.
    #[serde(default)]
    pub invoicing: bool,
    /// The order's payments as booked (or waiting).
    #[serde(default)]
    pub payments: Vec<BookedPayment>,
    /// What is still owed, in words (None: nothing).
    #[serde(default)]
    pub owed: Option<String>,
    /// Steps done but not yet told on the Sales Order's timeline.
    #[serde(default)]
    pub untold: Vec<String>,
}

/// One shop payment and its Payment Entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BookedPayment {
    pub id: String,
    pub method: String,
    /// As the shop sent it, to the cent ("59.90").
    pub amount: String,
    /// The submitted Payment Entry (None: not booked yet, or not to be: `unpaid`).
    #[serde(default)]
    pub entry: Option<String>,
    /// A Payment Entry may have been created and not recorded.
    #[serde(default)]
    pub in_progress: bool,
    /// A method of `orders.unpaid_methods`: invoiced, no Payment Entry.
    #[serde(default)]
    pub unpaid: bool,
}

/// What [`OrderBook::receive_order`] did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderReceipt {
    /// Stored and owed (durable once [`super::Durability::durable`] returns).
    New,
    /// This webhook id delivered this order before: nothing stored.
    RepeatedDelivery,
    /// The order id was received before under another webhook id: nothing stored.
    KnownOrder,
    /// This webhook id delivered another order before: nothing stored.
    HookReused { order_id: String },
    /// A newer state (by `version`) of a known order: stored, and the order is owed again.
    Updated,
    /// An older state than the one stored: nothing stored.
    Stale,
}

/// From the owed orders (oldest first), the oldest of each customer if it is due, up to
/// `limit` of them; a customer whose oldest order is not due waits with all its later orders.
/// Also returns when the earliest order left out is due (`now` when some were left out only
/// for want of room). The rule every [`OrderBook::due_orders`] keeps.
pub fn due(owed: Vec<OrderRecord>, now: u64, limit: usize) -> (Vec<OrderRecord>, Option<u64>) {
    let mut customers = std::collections::BTreeSet::new();
    let mut batch = Vec::new();
    let mut next_due: Option<u64> = None;
    for record in owed {
        if !customers.insert(record.customer_key.clone()) {
            continue;
        }
        let at = if record.next_attempt_ms > now {
            record.next_attempt_ms
        } else if batch.len() < limit {
            batch.push(record);
            continue;
        } else {
            now
        };
        next_due = Some(next_due.map_or(at, |d| d.min(at)));
    }
    (batch, next_due)
}

/// Shop orders in, their fate recorded.
pub trait OrderBook: Send + Sync {
    /// Stores a new order unless its webhook id or its order id was seen before. Atomic: two
    /// deliveries of one order racing store it once. Not durable until
    /// [`super::Durability::durable`] returns.
    fn receive_order<'a>(
        &'a self,
        webhook_id: &'a str,
        order_id: &'a str,
        customer_key: &'a str,
        order: &'a Value,
        now_ms: u64,
    ) -> StoreFuture<'a, OrderReceipt>;
    /// Contract 3: like [`OrderBook::receive_order`], but a known order whose stored state has
    /// an older `version` (the state's `updated_at` in ns since the epoch; None: it has none)
    /// takes this state: the record's order and `books.updated_at` are replaced, the order is
    /// owed again and due at `now_ms` ([`OrderReceipt::Updated`]); an older version is
    /// [`OrderReceipt::Stale`], the same (or none) [`OrderReceipt::KnownOrder`]. Atomic, so
    /// two states racing can never leave the older one stored. The default keeps contract 2
    /// (every known order is a duplicate).
    fn receive_state<'a>(
        &'a self,
        webhook_id: &'a str,
        order_id: &'a str,
        customer_key: &'a str,
        order: &'a Value,
        version: Option<i64>,
        now_ms: u64,
    ) -> StoreFuture<'a, OrderReceipt> {
        let _ = version;
        self.receive_order(webhook_id, order_id, customer_key, order, now_ms)
    }
    /// The record of one order.
    fn order<'a>(&'a self, order_id: &'a str) -> StoreFuture<'a, Option<OrderRecord>>;
    /// Orders still owed to ERPNext, oldest first.
    fn owed_orders(&self) -> StoreFuture<'_, Vec<OrderRecord>>;
    /// The orders to attempt now, as [`due`] chooses them from the owed orders: the oldest owed
    /// order of each customer when it is due at `now_ms`, at most `limit` of them, and when the
    /// earliest order left out is due. What the order queue reads at each step, so it must
    /// cost in proportion to `limit`, not to the orders owed (the default reads them all; a
    /// backend should keep an index).
    fn due_orders(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<OrderRecord>, Option<u64>)> {
        Box::pin(async move { Ok(due(self.owed_orders().await?, now_ms, limit)) })
    }
    /// Test seam: how many order records the backend has read since it opened (0 where it
    /// does not count).
    fn order_records_read(&self) -> u64 {
        0
    }
    /// Dead orders, by order id.
    fn dead_orders(&self) -> StoreFuture<'_, Vec<OrderRecord>>;
    /// How many orders are owed, and how many are dead.
    fn order_depths(&self) -> (usize, usize);
    /// Writes a record back, keeping the owed and dead indexes in step with its status.
    fn save_order<'a>(&'a self, record: &'a OrderRecord) -> StoreFuture<'a, ()>;
    /// Puts a dead order back in the queue, due at `now_ms`. Returns its record, or None when no
    /// such order is dead.
    fn retry_order<'a>(
        &'a self,
        order_id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<OrderRecord>>;
    /// Forgets webhook ids that arrived before `before_ms` (their orders stay, so a late repeat
    /// is still recognised by its order id). Returns how many were removed.
    fn prune_order_hooks(&self, before_ms: u64) -> StoreFuture<'_, usize>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn an_order_is_received_once_and_moves_between_owed_and_dead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60).expect("open");
        let a = serde_json::json!({"order_id": "A-1"});
        let receive = |hook: &'static str, id: &'static str, at: u64| {
            let store = store.clone();
            let a = a.clone();
            async move {
                store
                    .receive_order(hook, id, "ada@example.com", &a, at)
                    .await
                    .expect("receive")
            }
        };
        assert_eq!(receive("msg_1", "A-1", 5).await, OrderReceipt::New);
        assert_eq!(
            receive("msg_1", "A-1", 6).await,
            OrderReceipt::RepeatedDelivery
        );
        assert_eq!(receive("msg_2", "A-1", 7).await, OrderReceipt::KnownOrder);
        assert_eq!(
            receive("msg_1", "B-1", 8).await,
            OrderReceipt::HookReused {
                order_id: "A-1".into()
            }
        );
        assert_eq!(store.order_depths(), (1, 0));
        let mut rec = store.owed_orders().await.expect("owed").remove(0);
        assert_eq!(
            (rec.status, rec.order["order_id"].as_str()),
            (OrderStatus::Received, Some("A-1"))
        );
        rec.status = OrderStatus::Dead;
        rec.error = Some("unknown SKU".into());
        store.save_order(&rec).await.expect("save");
        assert_eq!(store.order_depths(), (0, 1));
        assert_eq!(store.dead_orders().await.expect("dead")[0].order_id, "A-1");
        let back = store
            .retry_order("A-1", 99)
            .await
            .expect("retry")
            .expect("was dead");
        assert_eq!(
            (back.status, back.next_attempt_ms),
            (OrderStatus::Received, 99)
        );
        assert_eq!(store.order_depths(), (1, 0));
        assert!(
            store
                .retry_order("A-1", 100)
                .await
                .expect("retry")
                .is_none(),
            "not dead"
        );
        assert!(store
            .retry_order("nope", 100)
            .await
            .expect("retry")
            .is_none());
        assert_eq!(store.prune_order_hooks(7).await.expect("prune"), 1);
        assert_eq!(receive("msg_1", "A-1", 200).await, OrderReceipt::KnownOrder);
    }
}
