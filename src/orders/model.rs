//! A shop order as the shop sends it to `POST /webhooks/shop/orders` (the `ShopOrder` schema of
//! the shop contract), and the order settings (`[orders]` in the configuration).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bespoke key/value pairs the shop attaches to an order, its customer or a line.
pub type Fields = Map<String, Value>;

/// One order placed in the shop. Amounts are in `currency`; see the money rules on
/// [`OrderLine`] and [`ShopOrder::total`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopOrder {
    /// The shop's order id; ERPNext keeps it in the Sales Order's `po_no` (or the configured
    /// `erpnext.order_id_field`).
    pub order_id: String,
    /// The sales channel the order was placed in (a configured channel name).
    pub channel: String,
    /// RFC 3339 date-time.
    pub placed_at: String,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
    pub customer: OrderCustomer,
    pub shipping_address: PostalAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<PostalAddress>,
    pub lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Shipping>,
    /// Taken off the sum of the line totals (not off shipping); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_total: Option<f64>,
    /// Optional check: sum of line totals − `discount_total` + `shipping.amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Fields,
    /// Contract 3: RFC 3339, the shop's last change to the order. A state not newer than the
    /// last one applied changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Contract 3: "placed" (default) or "cancelled".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Contract 3: the prices, discounts and shipping include `taxes` (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prices_include_tax: bool,
    /// Contract 3: the order's taxes, one entry per tax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<OrderTax>,
    /// Contract 3: money the shop has captured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<OrderPayment>,
    /// Contract 3: money the shop has given back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<OrderRefund>,
}

/// One tax of an order: ERPNext gets one taxes row on the account `[orders.tax_accounts]`
/// maps `title` to, for `amount` in the order's currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderTax {
    pub title: String,
    /// Percent (informative: the relay books `amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub amount: f64,
}

/// Money the shop captured for an order; `id` becomes the Payment Entry's `reference_no`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderPayment {
    pub id: String,
    /// e.g. "card", "paypal", "cod": `[orders.payment_accounts]` maps it to an account.
    pub method: String,
    pub amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    /// The payment provider's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Money the shop gave back for an order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderRefund {
    pub id: String,
    pub amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<RefundLine>,
    /// Shipping refunded; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<f64>,
    /// The goods come back into stock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restock: bool,
}

/// Units of one SKU a refund gives back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefundLine {
    pub sku: String,
    pub qty: f64,
}

/// The customer who placed the order; found in ERPNext by email (trimmed, case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderCustomer {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Fields,
}

/// A postal address; `country` is an ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub country: String,
}

/// One order line. Line total = `qty × unit_price − discount`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub qty: f64,
    /// The price of one unit before discounts.
    pub unit_price: f64,
    /// The amount taken off the whole line (not per unit); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<f64>,
    /// Contract 3: units removed from the line before it shipped; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_qty: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Fields,
}

/// Shipping charged on top of the goods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    pub method: String,
    pub amount: f64,
}

/// `[orders]` and `[orders.fields]` of the configuration, defined with the rest of it.
pub use crate::config::{FieldMapping, OrderSettings};
