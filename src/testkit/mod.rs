//! The ERPNext emulator (with its Webhook conditions and stock vouchers) and the recording shop,
//! shared by `shoprelay demo` and the tests, plus helpers to run a relay between them.

pub mod condition;
pub mod erp;
pub mod frappe;
pub mod pyjson;
pub mod shop;

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
admin_token = "admin-token"

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
