//! ERPNext side: the REST client (token auth, paging, error decoding), the Webhook documents
//! shipped in `erpnext_webhook_setup/webhooks/`, setup and check, the site's time zone, and
//! reconcile.

pub mod client;
pub mod reconcile;
pub mod setup;
pub mod timezone;
pub mod webhooks;

pub use client::{ErpClient, ErpError};
