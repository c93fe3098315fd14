//! The `shoprelay` command: parses the command line, sets up logging, runs a subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shoprelay::config::Settings;
use shoprelay::startup::{error_chain, Application, Workers};

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
    /// Install or check the relay's Webhook documents in ERPNext.
    Erpnext {
        #[command(subcommand)]
        command: ErpnextCommand,
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
        Command::Erpnext { command } => {
            shoprelay::telemetry::init("warn");
            erpnext(command).await
        }
        Command::Demo => {
            shoprelay::telemetry::init("error");
            shoprelay::demo::run().await.map_err(|e| error_chain(&*e))
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

async fn serve(config: PathBuf) -> Result<(), String> {
    let settings = Settings::load(&config).map_err(|e| error_chain(&e))?;
    let app = Application::build(settings, Workers::Background)
        .await
        .map_err(|e| error_chain(&e))?;
    let handle = app.handle();
    // Printed on stdout so that scripts (and tests) binding port 0 can find the port.
    println!("shoprelay listening on 127.0.0.1:{}", app.port());
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in flight");
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
