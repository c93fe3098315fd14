//! The integration tests, one binary: one module per area, with the shared harness in
//! [`common`] (the ERPNext emulator, the recording shop and a relay between them) and the
//! real-ERPNext helper in [`lab`] (the lab tests, `lab_*`, skip saying why without `ERPNEXT_URL`).
//!
//! `cargo test --test it` runs them all; `cargo test --test it stock_flow::` one module;
//! `cargo test --test it lab_` the lab tests (with the lab's environment).

mod common;
mod lab;

mod admin;
mod admin_routes;
mod binary;
mod browser;
mod clock;
mod demo;
mod deploy;
mod docs;
mod erpnext_setup;
mod full_disk;
mod hostile;
mod inbound;
mod interop;
mod lab_admin;
mod lab_books;
mod lab_clock;
mod lab_e2e;
mod lab_items;
mod lab_orders;
mod lab_voucher_types;
mod lab_vouchers;
mod logs;
mod metrics;
mod module_graph;
mod openapi;
mod orders;
mod orders_books;
mod orders_erp;
mod reconcile;
mod shipments;
mod shop_contract;
mod shop_mock;
mod staging;
mod stock_flow;
mod store_contract;
mod store_failure;
mod templates;
mod vouchers;
