//! shoprelay keeps a custom web shop in step with ERPNext. ERPNext's Webhook documents signal
//! that stock changed; the relay verifies and stores each signal durably, reads the truth back
//! over ERPNext's REST API, computes the sellable level per sales channel and pushes absolute
//! levels to the shop, with retries on a schedule and a dead-letter list.
//!
//! # Layout
//!
//! Modules follow the data flow; an arrow is "uses", and no module uses one that uses it back
//! (`tests/it/module_graph.rs` fails on a cycle):
//!
//! ```text
//! store        ──▶ model                      (role traits; store/sled/ is the only sled code)
//! erpnext      ──▶ store, http                (REST client, webhooks, setup/check, reconcile)
//! channels     ──▶ availability, erpnext, store (the mapping: file or admin, resolved)
//! metrics      ──▶ store (depths)
//! monitor      ──▶ erpnext, store             (queue ages, reconcile passes)
//! state        ──▶ channels, erpnext, metrics, monitor, store
//! orders       ──▶ channels, erpnext, metrics, store (checks, money, queue, worker)
//! inbound      ──▶ state, orders, metrics, store (signatures, POST /webhooks/erpnext and /webhooks/shop/orders)
//! availability, shipments                     (pure; availability defines Channel and Policy)
//! processor    ──▶ channels, erpnext, availability, shipments, metrics, store
//! shop         ──▶ signing, http, metrics, store (client, retry, push agent, check)
//! admin        ──▶ state, channels, monitor, shop, erpnext, availability, store
//! startup      ──▶ admin, inbound, processor, orders, shop, monitor, channels, state, metrics, erpnext, store
//! cli          ──▶ startup, admin, erpnext, orders, shop
//! demo         ──▶ startup, signing, testkit; testkit ──▶ erpnext, inbound, signing
//! staging      ──▶ erpnext, shop, availability, signing (staging-test)
//! notify                                      (systemd notifications, for `serve`)
//! ```
//!
//! `config`, `model`, `telemetry` (logging, errors with their causes), `http` (the client
//! builder and the URL encoder), `signing` and `backoff` are used by many and not drawn. The modules:
//!
//! - [`config`]: the TOML file and `SHOPRELAY_*` overrides, validated into [`config::Settings`].
//! - [`model`]: shared data: Bin rows, levels, signals, inbox records, shipment operations, the
//!   clock in milliseconds.
//! - [`store`]: the durable store split by role, each a trait (inbox and dedup, dirty work,
//!   read-back rows, the generic coalescing outbox with its retry state, dead letters, meta,
//!   durability and health) used through [`store::Store`]; each role's trait in
//!   `store/<role>.rs`, its sled implementation in `store/sled/`, the only code that touches
//!   sled (`tests/it/module_graph.rs` fails when anything else names it).
//! - [`http`]: the authorised HTTP client builder shared by the ERPNext and shop clients, and
//!   the one URL path segment encoder.
//! - [`signing`]: the signatures the relay and its tools send (Frappe's, Standard Webhooks');
//!   `inbound::signature` checks what arrives with the same keys.
//! - [`backoff`]: the one exponential backoff with jitter of the relay's loops and the order
//!   queue.
//! - [`erpnext`]: the REST client, the shipped Webhook documents, setup/check, the site's
//!   clock in its time zone, and reconcile (Bins changed since a watermark, or all of them when
//!   the site's clock went back or the daily full pass is due → dirty items in the store).
//! - [`channels`]: the one owner of the channel mapping: the file's or the admin's channels,
//!   saved in the store, resolved against ERPNext's Warehouse tree.
//! - [`metrics`]: counters of what the relay did, and their Prometheus text.
//! - [`limits`]: what an unauthenticated caller may cost: wrong admin tokens slowed per client
//!   address, the byte budget of request bodies, the health probes' reuse of one store check.
//! - [`state`]: what the HTTP handlers share ([`state::AppState`]).
//! - [`inbound`]: signature checks, `POST /webhooks/erpnext` → the inbox, and
//!   `POST /webhooks/shop/orders` → the order records.
//! - [`availability`] and [`shipments`]: pure: a channel ([`availability::Channel`], with its
//!   [`availability::Policy`]) and Bin rows to sellable levels; a Delivery Note to the shop's
//!   shipments. `config` names the channel type (the file's `[[channels]]`), so it lives here
//!   and not in `channels`, which uses `erpnext` and through it `config`.
//! - [`processor`]: inbox events → dirty items and documents → read back → levels and
//!   shipments in the outbox.
//! - [`shop`]: the shop client, the retry policy, the push agent (outbox → shop), the contract
//!   check.
//! - [`orders`]: shop orders into ERPNext: the order model and its checks, the pure money rules,
//!   the queue that places owed orders one customer at a time, and the worker that finds or
//!   creates the Customer and creates one Sales Order per shop order.
//! - [`monitor`]: what the running relay knows about itself for the admin: since when each
//!   queue waits, the reconcile passes.
//! - [`admin`]: the probes (`probes`: `/healthz`, `/readyz`, `/metrics`), the admin JSON API
//!   (`api`), and the admin pages (`page`, one file per page under `src/admin/page/`; signed in
//!   with a session cookie; templates in `src/admin/templates/`); what the pages and the API
//!   both do (health, lookups, dead letters settled, a mapping put in force) is `admin::ops`.
//! - [`startup`]: [`startup::Application`] opens the store, binds the listener, runs the
//!   worker loops.
//! - [`cli`]: the administrative subcommands (`erpnext setup`, `erpnext check`, `reconcile`,
//!   `admin ...` against a running relay's admin API).
//! - `notify` (unix): systemd's `READY=1`/`STOPPING=1`, and `WATCHDOG=1` while `/healthz` is 200.
//! - [`telemetry`]: logging (plain text or JSON lines), and errors printed with their causes.
//! - [`staging`]: `shoprelay staging-test`, the go-live cycle against a real ERPNext and shop:
//!   a small driver in `staging/mod.rs`, one file per step around the run's context
//!   (`staging/cycle.rs`).
//!
//! Outside the library: the binary (`src/main.rs`, with `src/demo.rs`, `shoprelay demo`, the
//! relay between a simulated ERPNext and shop), and the workspace crate `testkit/`
//! (`shoprelay_testkit`: the ERPNext emulator, its REST front (`erp_front`: vouchers created
//! over REST, webhooks sent by a background worker) and the reference shop, used by the demo,
//! `shoprelay shop mock` and the tests). No module of the library uses the testkit, the demo or
//! the staging test (only the binary and [`cli`] start it); `tests/it/module_graph.rs` fails when
//! one does.

pub mod admin;
pub mod availability;
pub mod backoff;
pub mod channels;
pub mod cli;
pub mod config;
pub mod erpnext;
pub mod http;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod monitor;
#[cfg(unix)]
pub mod notify;
pub mod orders;
pub mod processor;
pub mod shipments;
pub mod shop;
pub mod signing;
pub mod staging;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
