//! shoprelay keeps a custom web shop in step with ERPNext. ERPNext's Webhook documents signal
//! that stock changed; the relay verifies and stores each signal durably, reads the truth back
//! over ERPNext's REST API, computes the sellable level per sales channel and pushes absolute
//! levels to the shop, with retries and a dead-letter list.
//!
//! # Layout
//!
//! Modules follow the data flow:
//!
//! - [`config`]: the TOML file and `SHOPRELAY_*` overrides, validated into [`config::Settings`].
//! - [`startup`]: [`startup::Application`] binds the listener and runs the worker loops.
//! - [`inbound`]: signature checks and the `POST /webhooks/erpnext` handler.
//! - [`store`]: the only module that touches sled (dedup, inbox, dirty items, outbox, dead letters).
//! - [`erpnext`]: the REST client and the shipped Webhook documents.
//! - [`processor`]: inbox events to dirty items and documents, read back, to levels and shipments.
//! - [`availability`]: pure: Bin rows and a channel to a sellable level.
//! - [`shipments`]: pure: a Delivery Note, its orders and its tracking to the shop's shipments.
//! - [`http`]: the authorised HTTP client builder shared by the ERPNext and shop clients.
//! - [`shop`]: the shop client, the retry policy and the push agent.
//! - [`admin`]: health, metrics and the admin API.
//! - [`cli`]: the administrative subcommands (`erpnext setup`, `erpnext check`, `reconcile`).
//! - [`demo`]: `shoprelay demo`, the relay between a simulated ERPNext and shop.
//! - [`testkit`]: the ERPNext emulator and the recording shop used by the demo and the tests.

pub mod admin;
pub mod availability;
pub mod cli;
pub mod config;
pub mod demo;
pub mod erpnext;
pub mod http;
pub mod inbound;
pub mod model;
pub mod orders;
pub mod processor;
pub mod shipments;
pub mod shop;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod testkit;
