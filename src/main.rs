//! The `shoprelay` command: parses the command line, sets up logging, runs a subcommand.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shoprelay::config::Settings;
use shoprelay::startup::{Application, Workers};
use shoprelay::telemetry::error_chain;

#[derive(Parser)]
#[command(
    name = "shoprelay",
    version,
    about = "Keeps a custom web shop in step with ERPNext"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    Serve {
        /// The configuration file (see shoprelay.example.toml).
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
    },
    /// Play a short scenario: a simulated ERPNext and shop with the real relay between them.
    Demo,
    /// One reconcile pass: re-read changed Bins and push what differs from the shop.
    Reconcile {
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
        /// Read every Bin, not only those changed since the last pass.
        #[arg(long)]
        full: bool,
    },
    /// Check a live shop against the shop contract, or run the reference shop.
    Shop {
        #[command(subcommand)]
        command: ShopCommand,
    },
    /// Install or check the relay's Webhook documents in ERPNext.
    Erpnext {
        #[command(subcommand)]
        command: ErpnextCommand,
    },
    /// Ask a running relay (its admin API): status, channels, dead letters, a SKU.
    Admin {
        /// The configuration file: the relay's address (server.listen) and admin token.
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
        /// The relay's address, e.g. http://127.0.0.1:8787 (default: from the configuration).
        #[arg(long)]
        url: Option<String>,
        /// Print the API's JSON answer as it is.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: AdminSubcommand,
    },
    /// Play a shop order end to end against the relay, its ERPNext and its shop (staging only).
    StagingTest {
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
        /// Leave the test documents in place for inspection.
        #[arg(long)]
        keep: bool,
        /// Run even though the ERPNext site is not in staging_test.allowed_sites.
        #[arg(long = "i-know-this-is-production")]
        i_know_this_is_production: bool,
    },
}

#[derive(Subcommand)]
enum AdminSubcommand {
    /// Health at a glance: ERPNext and the shop, queues, dead letters, reconcile.
    Status,
    /// The channel mapping in force.
    Channels,
    /// The dead letters; `retry` or `discard` one (by id) or all of them.
    DeadLetters {
        #[command(subcommand)]
        action: Option<DeadAction>,
    },
    /// A SKU: its Bins per warehouse, its level per channel, what the shop was last sent.
    Sku { sku: String },
}

#[derive(Subcommand)]
enum DeadAction {
    /// Queue a dead letter's target again (all of them without an id).
    Retry { id: Option<u64> },
    /// Drop a dead letter (all of them without an id).
    Discard { id: Option<u64> },
}

#[derive(Subcommand)]
enum ShopCommand {
    /// Run the contract's conformance checks against the shop in the configuration.
    Check {
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
        /// A channel for test levels.
        #[arg(long, default_value = "shoprelay-check")]
        channel: String,
        /// Test SKUs (repeat the flag for several).
        #[arg(long = "sku", default_values_t = vec!["SHOPRELAY-CHECK-1".to_string()])]
        skus: Vec<String>,
    },
    /// Run the reference shop (in memory) that implements the contract; its API is under /erp.
    Mock {
        #[arg(long, default_value = "127.0.0.1:8788")]
        listen: std::net::SocketAddr,
        /// The bearer token it requires.
        #[arg(long, default_value = "shop-token")]
        token: String,
        /// A Standard Webhooks secret it verifies (repeat while rotating); none: unsigned.
        #[arg(long = "signing-secret")]
        signing_secrets: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ErpnextCommand {
    /// Create or update the Webhook documents of erpnext_webhook_setup/webhooks/ in ERPNext.
    Setup {
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Send the webhook secret to every shoprelay webhook again (after rotating it).
        #[arg(long)]
        reset_secret: bool,
    },
    /// Check credentials, the webhooks, and recent failed deliveries.
    Check {
        #[arg(long, default_value = "shoprelay.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => {
            shoprelay::telemetry::init("info,sled=warn,actix_server=warn");
            serve(config).await
        }
        Command::Reconcile { config, full } => {
            shoprelay::telemetry::init("warn");
            match Settings::load(&config) {
                Ok(settings) => shoprelay::cli::reconcile(
                    &settings,
                    full,
                    &mut std::io::stdout(),
                    &mut std::io::stderr(),
                )
                .await
                .map(|_| ())
                .map_err(|e| error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            }
        }
        Command::Shop { command } => {
            shoprelay::telemetry::init("warn");
            shop(command).await
        }
        Command::Erpnext { command } => {
            shoprelay::telemetry::init("warn");
            erpnext(command).await
        }
        Command::Admin {
            config,
            url,
            json,
            command,
        } => {
            shoprelay::telemetry::init("warn");
            admin(config, url, json, command).await
        }
        Command::StagingTest {
            config,
            keep,
            i_know_this_is_production,
        } => {
            shoprelay::telemetry::init("warn");
            staging_test(config, keep, i_know_this_is_production).await
        }
        Command::Demo => {
            shoprelay::telemetry::init("error");
            demo::run().await.map_err(|e| error_chain(&*e))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shoprelay: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn admin(
    config: PathBuf,
    url: Option<String>,
    json: bool,
    command: AdminSubcommand,
) -> Result<(), String> {
    use shoprelay::cli::admin::{run, AdminCommand, Target};
    // Without a configuration file, `--url` and SHOPRELAY_ADMIN_TOKEN are enough.
    let settings = match Settings::load(&config) {
        Ok(s) => Some(s),
        Err(e) if url.is_some() || !config.exists() => {
            if config.exists() {
                eprintln!(
                    "shoprelay: ignoring {}: {}",
                    config.display(),
                    error_chain(&e)
                );
            }
            None
        }
        Err(e) => return Err(error_chain(&e)),
    };
    let token = std::env::var("SHOPRELAY_ADMIN_TOKEN").ok();
    let target = Target::new(settings.as_ref(), url, token).map_err(|e| error_chain(&e))?;
    let command = match command {
        AdminSubcommand::Status => AdminCommand::Status,
        AdminSubcommand::Channels => AdminCommand::Channels,
        AdminSubcommand::DeadLetters { action: None } => AdminCommand::DeadLetters,
        AdminSubcommand::DeadLetters {
            action: Some(DeadAction::Retry { id }),
        } => AdminCommand::Retry(id),
        AdminSubcommand::DeadLetters {
            action: Some(DeadAction::Discard { id }),
        } => AdminCommand::Discard(id),
        AdminSubcommand::Sku { sku } => AdminCommand::Sku(sku),
    };
    run(&target, &command, json, &mut std::io::stdout())
        .await
        .map_err(|e| error_chain(&e))
}

async fn erpnext(command: ErpnextCommand) -> Result<(), String> {
    let mut out = std::io::stdout();
    match command {
        ErpnextCommand::Setup {
            config,
            dry_run,
            reset_secret,
        } => {
            let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
            shoprelay::cli::erpnext_setup(&settings, dry_run, reset_secret, &mut out)
                .await
                .map(|_| ())
                .map_err(|e| error_chain(&e))
        }
        ErpnextCommand::Check { config } => {
            let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
            match shoprelay::cli::erpnext_check(&settings, &mut out).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("ERPNext is not wired right (see above)".into()),
                Err(e) => Err(error_chain(&e)),
            }
        }
    }
}

async fn staging_test(config: PathBuf, keep: bool, production_ok: bool) -> Result<(), String> {
    let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
    let options = shoprelay::staging::Options {
        keep,
        production_ok,
    };
    match shoprelay::staging::run(&settings, &options, &mut std::io::stdout()).await {
        Ok(report) if report.passed() => Ok(()),
        Ok(_) => Err("the staging test failed (see above)".into()),
        Err(e) => Err(error_chain(&e)),
    }
}

async fn shop(command: ShopCommand) -> Result<(), String> {
    match command {
        ShopCommand::Check {
            config,
            channel,
            skus,
        } => {
            let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
            match shoprelay::cli::shop_check(&settings, &channel, &skus, &mut std::io::stdout())
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err("the shop breaks the contract (see above)".into()),
                Err(e) => Err(error_chain(&e)),
            }
        }
        ShopCommand::Mock {
            listen,
            token,
            signing_secrets,
        } => {
            let listener = std::net::TcpListener::bind(listen)
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let options = shoprelay_testkit::shop::MockOptions {
                token,
                signing_secrets,
                quirk: None,
            };
            let shop = shoprelay_testkit::ShopMock::start_on(listener, options)
                .map_err(|e| e.to_string())?;
            println!(
                "reference shop listening; set shop.base_url = \"{}\" (Ctrl-C stops it)",
                shop.base_url()
            );
            shutdown_signal().await;
            shop.stop().await;
            Ok(())
        }
    }
}

async fn serve(config: PathBuf) -> Result<(), String> {
    let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
    let app = Application::build(settings, Workers::Background)
        .await
        .map_err(|e| error_chain(&e))?;
    let handle = app.handle();
    // Printed on stdout so that scripts (and tests) binding port 0 can find the port.
    println!("shoprelay listening on {}", app.local_addr());
    // Under systemd (Type=notify): ready now, and a watchdog heartbeat while /healthz is 200.
    #[cfg(unix)]
    let notifier = shoprelay::notify::Notifier::from_env();
    #[cfg(unix)]
    if let Some(n) = &notifier {
        n.ready(app.local_addr());
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in flight");
        #[cfg(unix)]
        if let Some(n) = &notifier {
            n.stopping();
        }
        handle.stop(true).await;
    });
    app.run_until_stopped().await.map_err(|e| error_chain(&e))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
