//! A shop order as the shop sends it to `POST /webhooks/shop/orders` (the `ShopOrder` schema of
//! the shop contract), and the order settings (`[orders]` in the configuration).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bespoke key/value pairs the shop attaches to an order, its customer or a line.
pub type Fields = Map<String, Value>;

/// One order placed in the shop. Amounts are in `currency`; see the money rules on
/// [`OrderLine`] and [`ShopOrder::total`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// The customer who placed the order; found in ERPNext by email (trimmed, case-insensitive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub qty: f64,
    /// The price of one unit before discounts.
    pub unit_price: f64,
    /// The amount taken off the whole line (not per unit); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Fields,
}

/// Shipping charged on top of the goods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    pub method: String,
    pub amount: f64,
}

/// `[orders]` and `[orders.fields]` of the configuration, defined with the rest of it.
pub use crate::config::{FieldMapping, OrderSettings};
