//! ERPNext side: the REST client (token auth, paging, error decoding), the Bin read-back,
//! and the Webhook documents shipped in `erpnext_webhook_setup/webhooks/`.

pub mod client;
pub mod setup;
pub mod webhooks;

pub use client::{ErpClient, ErpError};
