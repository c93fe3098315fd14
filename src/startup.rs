//! Builds the application: opens the store, binds the listener (port 0 works, for tests),
//! wires the HTTP routes, and runs the processing, push, reconcile and order loops until the
//! server stops.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backoff::backoff;
use crate::channels::{ChannelError, Channels};
use crate::config::Settings;
use crate::erpnext::reconcile::{PassReport, Progress, ReconcileError, Reconciler};
use crate::erpnext::{ErpClient, ErpError};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::orders::queue::OrderQueue;
use crate::orders::worker::OrderContext;
use crate::processor::{Processor, ProcessorSettings};
use crate::shop::{PushAgent, ShopClient, ShopError};
use crate::state::{AppState, ReconcileTrigger};
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the data directory {path}")]
    Store {
        path: std::path::PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the ERPNext client")]
    Erp(#[from] ErpError),
    #[error("cannot build the shop client")]
    Shop(#[from] ShopError),
    #[error("cannot register the metrics")]
    Metrics(#[from] prometheus::Error),
}

/// The relay's workers, shared with tests that drive them a step at a time.
#[derive(Clone)]
pub struct Relay {
    pub store: Store,
    pub processor: Arc<Processor>,
    pub pusher: Arc<PushAgent>,
    pub reconciler: Arc<Reconciler>,
    pub metrics: Arc<Metrics>,
    pub channels: Arc<Channels>,
    pub monitor: Arc<Monitor>,
    erp: ErpClient,
    pub orders: Arc<OrderQueue>,
    wake_processor: Arc<Notify>,
    wake_pusher: Arc<Notify>,
    wake_orders: Arc<Notify>,
    reconcile: Arc<ReconcileTrigger>,
}

/// Why a reconcile pass could not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("resolving the channels failed")]
    Channels(#[from] ChannelError),
    #[error("the reconcile pass failed")]
    Reconcile(#[from] ReconcileError),
}

impl Relay {
    /// Opens the store and builds the workers (no listener). `serve` and the command-line
    /// tools share it; only one process may open a data directory at a time.
    pub async fn open(settings: &Settings) -> Result<Self, StartupError> {
        let store = Store::open(&settings.server.data_dir, settings.server.dedup_window_secs)
            .map_err(|source| StartupError::Store {
                path: settings.server.data_dir.clone(),
                source,
            })?;
        let metrics = Arc::new(Metrics::new()?);
        let erp = ErpClient::new(&settings.erpnext)?;
        let shop = ShopClient::new(&settings.shop)?;
        let channels = Arc::new(
            Channels::load(store.clone(), erp.clone(), settings.channels.clone())
                .await
                .map_err(|source| StartupError::Store {
                    path: settings.server.data_dir.clone(),
                    source,
                })?,
        );
        let processor = Processor::new(
            store.clone(),
            erp.clone(),
            ProcessorSettings {
                dirty_batch: settings.erpnext.readback_batch * 4,
                order_id_field: settings.erpnext.order_id_field.clone(),
                sku_field: settings.erpnext.sku_field.clone(),
            },
            channels.clone(),
            metrics.clone(),
        );
        let orders = OrderQueue::new(
            store.clone(),
            OrderContext {
                erp: erp.clone(),
                settings: settings.orders.clone(),
                order_id_field: settings.erpnext.order_id_field.clone(),
                sku_field: settings.erpnext.sku_field.clone(),
            },
            channels.clone(),
            metrics.clone(),
            settings.order_queue.clone(),
        );
        let reconciler = Reconciler::new(
            erp.clone(),
            store.clone(),
            settings.erpnext.page_size,
            settings.erpnext.reconcile_overlap_secs,
            settings.erpnext.full_reconcile_interval_secs,
        );
        let pusher = PushAgent::new(store.clone(), shop, &settings.shop, metrics.clone());
        Ok(Relay {
            store,
            processor: Arc::new(processor),
            pusher: Arc::new(pusher),
            reconciler: Arc::new(reconciler),
            metrics,
            channels,
            monitor: Arc::new(Monitor::default()),
            erp,
            orders: Arc::new(orders),
            wake_processor: Arc::new(Notify::new()),
            wake_pusher: Arc::new(Notify::new()),
            wake_orders: Arc::new(Notify::new()),
            reconcile: Arc::new(ReconcileTrigger::default()),
        })
    }

    /// One reconcile pass over the channels' warehouses (read from ERPNext's tree first); wakes
    /// the processor for the items it marked.
    pub async fn reconcile_pass(
        &self,
        full: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<PassReport, PassError> {
        self.monitor.pass_started(full);
        let result = self.pass_over_map(full, |p| {
            self.monitor.pass_progress(p);
            progress(p);
        });
        let result = result.await;
        self.monitor
            .pass_finished(result.as_ref().map_err(|e| error_chain(e)));
        result
    }

    async fn pass_over_map(
        &self,
        full: bool,
        progress: impl FnMut(Progress),
    ) -> Result<PassReport, PassError> {
        let map = self.channels.refresh().await?;
        let report = self
            .reconciler
            .pass(&map.warehouses, full, progress)
            .await?;
        self.wake_processor.notify_one();
        Ok(report)
    }
}

/// Whether [`Application::run_until_stopped`] starts the background loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// The processing and push loops run by themselves (production, most tests).
    Background,
    /// Nothing runs until the caller steps `relay().processor` / `relay().pusher`.
    Manual,
}

/// A built, bound, not yet running relay.
pub struct Application {
    addr: std::net::SocketAddr,
    server: Server,
    relay: Relay,
    workers: Workers,
    reconcile_every: Option<Duration>,
}

impl Application {
    /// Opens the store and binds `server.listen`. Must run inside a tokio runtime.
    pub async fn build(settings: Settings, workers: Workers) -> Result<Self, StartupError> {
        let relay = Relay::open(&settings).await?;
        let settings = Arc::new(settings);
        let limits = Arc::new(crate::limits::Limits::new(&settings.server));
        let saved = relay
            .store
            .meta(crate::limits::SIGNED_OUT_META)
            .await
            .map_err(|source| StartupError::Store {
                path: settings.server.data_dir.clone(),
                source,
            })?;
        if let Some(saved) = saved {
            limits.signed_out.load(&saved);
        }
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            store: relay.store.clone(),
            wake_processor: relay.wake_processor.clone(),
            wake_pusher: relay.wake_pusher.clone(),
            reconcile: relay.reconcile.clone(),
            metrics: relay.metrics.clone(),
            channels: relay.channels.clone(),
            monitor: relay.monitor.clone(),
            erp: relay.erp.clone(),
            wake_orders: relay.wake_orders.clone(),
            limits: limits.clone(),
        });
        let addr = settings.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route(
                    "/webhooks/erpnext",
                    web::post().to(crate::inbound::erpnext::receive),
                )
                .route(
                    "/webhooks/shop/orders",
                    web::post().to(crate::inbound::shop::receive),
                )
                .configure(crate::admin::routes)
        })
        .workers(settings.server.workers)
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
        Ok(Self {
            addr: bound,
            server,
            relay,
            workers,
            reconcile_every: (settings.erpnext.reconcile_interval_secs > 0)
                .then(|| Duration::from_secs(settings.erpnext.reconcile_interval_secs)),
        })
    }

    /// The port the relay listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the relay listens on (`server.listen` with the port the system chose).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The workers and the store.
    pub fn relay(&self) -> Relay {
        self.relay.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped through [`Application::handle`]; then stops the loops
    /// and flushes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let loops: Vec<JoinHandle<()>> = match self.workers {
            Workers::Background => vec![
                tokio::spawn(processing_loop(self.relay.clone())),
                tokio::spawn(push_loop(self.relay.clone())),
                tokio::spawn(reconcile_loop(self.relay.clone(), self.reconcile_every)),
                tokio::spawn(order_loop(self.relay.clone())),
            ],
            Workers::Manual => Vec::new(),
        };
        let result = self.server.await;
        for l in &loops {
            l.abort();
        }
        for l in loops {
            let _ = l.await;
        }
        if let Err(e) = self.relay.store.flush_now() {
            tracing::error!(error = %error_chain(&e), "final flush failed");
        }
        result
    }
}

const IDLE_POLL: Duration = Duration::from_secs(5);

/// How long a loop waits after its `failures`-th failure in a row.
fn failure_delay(failures: u32) -> Duration {
    backoff(
        failures,
        Duration::from_millis(200),
        Duration::from_secs(30),
        fastrand::f64(),
    )
}

async fn processing_loop(relay: Relay) {
    let mut failures = 0u32;
    loop {
        let step = relay.processor.step().await;
        relay.monitor.observe(&relay.store.depths());
        match step {
            Ok(report) => {
                failures = 0;
                if report.queued > 0 || report.shipments_queued > 0 {
                    relay.wake_pusher.notify_one();
                }
                if report.is_idle() {
                    tokio::select! {
                        _ = relay.wake_processor.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
            }
            Err(e) => {
                failures += 1;
                relay.metrics.processor_error();
                let delay = failure_delay(failures);
                tracing::warn!(error = %error_chain(&e), retry_in_ms = delay.as_millis() as u64, "processing failed; the dirty items stay queued");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A pass at start (catching up after downtime), then every `every`, whenever the scheduled
/// full pass is due, and whenever the admin asks. Without `every`, only when asked or due.
async fn reconcile_loop(relay: Relay, every: Option<Duration>) {
    let mut run = every.is_some();
    loop {
        if run {
            let full = relay.reconcile.take_full();
            match relay.reconcile_pass(full, |_| {}).await {
                Ok(r) => {
                    tracing::info!(full = r.full, clock_went_back = r.clock_went_back, rows = r.rows, pages = r.pages, watermark = ?r.watermark.map(|w| w.0), "reconcile pass done")
                }
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "reconcile pass failed; the next one will cover it")
                }
            }
        }
        let full_in = relay.reconciler.next_full_in().await.unwrap_or_else(|e| {
            tracing::warn!(error = %error_chain(&e), "cannot read when the last full pass ran");
            None
        });
        match [every, full_in].into_iter().flatten().min() {
            Some(d) => {
                tokio::select! {
                    _ = relay.reconcile.requested() => {}
                    _ = tokio::time::sleep(d) => {}
                }
            }
            None => relay.reconcile.requested().await,
        }
        run = true;
    }
}

/// How long webhook ids of shop orders are remembered (orders themselves are never forgotten,
/// so a later repeat is still a duplicate by its order id).
const ORDER_HOOKS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Places owed orders: steps at once while a step placed something, else waits for a new
/// order, an admin retry, or the next order due.
async fn order_loop(relay: Relay) {
    let mut failures = 0u32;
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            let before = crate::model::now_ms().saturating_sub(ORDER_HOOKS_KEPT.as_millis() as u64);
            if let Err(e) = relay.store.prune_order_hooks(before).await {
                tracing::warn!(error = %error_chain(&e), "pruning old order webhook ids failed");
            }
            pruned_at = Some(tokio::time::Instant::now());
        }
        match relay.orders.step().await {
            Ok(report) if !report.is_idle() => failures = 0,
            Ok(report) => {
                failures = 0;
                let now = crate::model::now_ms();
                let wait = report.next_due_ms.map_or(IDLE_POLL, |due| {
                    Duration::from_millis(due.saturating_sub(now)).min(IDLE_POLL)
                });
                tokio::select! {
                    _ = relay.wake_orders.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                failures += 1;
                let delay = failure_delay(failures);
                tracing::error!(error = %error_chain(&e), retry_in_ms = delay.as_millis() as u64, "order step failed; the orders stay owed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn push_loop(relay: Relay) {
    loop {
        let step = relay.pusher.step().await;
        relay.monitor.observe(&relay.store.depths());
        match step {
            Ok(report) if report.accepted > 0 || report.dead > 0 => {}
            Ok(report) => {
                let until = report
                    .next_retry
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + IDLE_POLL);
                tokio::select! {
                    _ = relay.wake_pusher.notified() => {}
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "push step failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
