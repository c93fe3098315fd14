//! What the relay serves besides its webhooks: the probes (`probes`: `/healthz`, `/readyz`,
//! `/metrics`), the admin JSON API (`api`: bearer `admin_token`; status, the outbox with its
//! retry state, dead letters, the channels, a SKU, shop orders), and the admin web pages
//! (`page`: `/admin/` and `/admin/ui/...`, signed in with a session cookie). The operations
//! the pages and the API share are in `ops`, so both do the same thing.

mod api;
pub(crate) mod ops;
mod page;
mod probes;
mod session;

use actix_web::web;

/// Registers the probes, the admin API and the admin pages.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(probes::routes)
        .configure(api::routes)
        .configure(page::routes);
}
