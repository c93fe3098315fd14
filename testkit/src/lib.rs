//! The tools of shoprelay, kept out of the relay itself: the ERPNext emulator (with its Webhook
//! conditions, stock vouchers and Sales Orders) and the reference shop, used by `shoprelay demo`,
//! `shoprelay shop mock` and the tests, plus helpers to run a relay between them. The crate does
//! not depend on the relay: it plays ERPNext and the shop with its own reading of their rules
//! (signatures, timestamps, Webhook documents), so the tests check the relay against a second
//! implementation rather than against itself. The relay's code never imports it
//! (`tests/it/module_graph.rs`); only the binary's `demo` and `shop mock` do.

pub mod condition;
pub mod erp;
pub mod erp_front;
pub mod frappe;
pub mod pyjson;
pub mod shop;
pub mod sign;
pub mod timestamp;

pub use erp::ErpEmulator;
pub use frappe::Delivery;
pub use shop::{Scripted, ShopMock};

/// Starts an actix server with `workers` threads on `listener`, with the routes `configure`
/// sets up, on the current tokio runtime; returns its port and a handle to stop it.
pub fn spawn_server(
    listener: std::net::TcpListener,
    workers: usize,
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
) -> std::io::Result<(u16, actix_web::dev::ServerHandle)> {
    let port = listener.local_addr()?.port();
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
            .workers(workers)
            .disable_signals()
            .listen(listener)?
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((port, handle))
}

/// The webhook secret the emulator signs with and the relay is configured with.
pub const WEBHOOK_SECRET: &str = "emulator-webhook-secret";

/// A configuration (TOML) for a relay between `erp` and `shop`, listening on port 0, storing in
/// `data_dir`, with two channels: `web` (Stores + Finished Goods, actual minus reserved) and
/// `marketplace` (Stores only, buffer 2).
pub fn relay_toml(erp_url: &str, shop_url: &str, data_dir: &std::path::Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
admin_token = "admin-token-0123456789"

[erpnext]
url = "{erp_url}"
api_key = "{key}"
api_secret = "{secret}"
webhook_secrets = ["an-old-secret", "{whs}"]
page_size = 20

[shop]
base_url = "{shop_url}"
token = "{token}"
max_batch = 100
retry_schedule_secs = [0, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]

[[channels]]
name = "web"
warehouses = ["Stores - ACME", "Finished Goods - ACME"]
policy = "actual_minus_reserved"

[[channels]]
name = "marketplace"
warehouses = ["Stores - ACME"]
policy = "actual_minus_reserved"
buffer = 2
"#,
        data = data_dir.display().to_string().replace('\\', "/"),
        key = erp::API_KEY,
        secret = erp::API_SECRET,
        whs = WEBHOOK_SECRET,
        token = shop::SHOP_TOKEN,
    )
}

/// The secret the shop signs its orders with in the demo and the tests (the Standard Webhooks
/// specification's example secret).
pub const SHOP_ORDER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// [`relay_toml`] text that also takes shop orders: `shop.webhook_secret` (with `extra_secrets`
/// beside [`SHOP_ORDER_SECRET`], as while rotating) and an `[orders]` section that retries fast.
pub fn with_orders(toml: &str, extra_secrets: &[&str]) -> String {
    let secrets: Vec<&str> = std::iter::once(SHOP_ORDER_SECRET)
        .chain(extra_secrets.iter().copied())
        .collect();
    let list = serde_json::to_string(&secrets).unwrap_or_default();
    toml.replace(
        "max_batch = 100",
        &format!("max_batch = 100\nwebhook_secret = {list}"),
    ) + "\n[orders]\nshipping_account = \"Freight and Forwarding Charges - ACME\"\n\
         customer_group = \"Individual\"\nterritory = \"Rest Of The World\"\n\
         retry_base_ms = 20\nretry_max_ms = 200\n"
}
