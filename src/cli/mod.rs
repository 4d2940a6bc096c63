//! The `copcca-sms` command line (DESIGN.md section 1). `anyhow` lives here and nowhere below.

mod admin;
mod demo;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{db, http, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "copcca-sms",
    version,
    about = "SMS credits and sending service behind COPCCA CRM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database if missing and apply the migrations.
    Migrate,
    /// HTTP ingress: CRM API, webhooks, admin API, health.
    Serve,
    /// Job workers: purchase verification, SMS send, refund.
    Work,
    /// Periodic jobs: overdue-debt sweeps, expired holds, payment timeouts, reconciliation.
    Schedule,
    /// serve + work + schedule in one process.
    Run,
    /// The flow end to end on a database of its own, with a summary.
    Demo,
    /// Operator tasks.
    Admin(admin::AdminArgs),
}

/// Exit codes: 0 ok, 1 failure, 2 not built yet, 78 bad configuration (sysexits EX_CONFIG).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(78);
        }
    };
    telemetry::init(config.log_format);
    if let Some(issue) = not_built_yet(&cli.command) {
        eprintln!("error: this subcommand is not built yet ({issue}); nothing was done");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Migrate => migrate(&config).await,
            Command::Serve => serve(config).await,
            Command::Demo => demo::run(config).await,
            Command::Admin(args) => admin::run(&config, args).await,
            Command::Work | Command::Schedule | Command::Run => unreachable!("refused above"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Subcommands whose issue has not landed: they say so instead of pretending.
fn not_built_yet(command: &Command) -> Option<&'static str> {
    match command {
        Command::Work => Some("job workers arrive with issue #3, the durable job queue"),
        Command::Schedule => Some("the scheduler arrives with issues #3 and #4"),
        Command::Run => Some("it needs the workers and scheduler of issues #3 and #4"),
        _ => None,
    }
}

async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    db::migrate(&config.database_url, &config.database_schema).await?;
    tracing::info!(schema = %config.database_schema, "migrations applied");
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    if config.uses_dev_jwt_secret() {
        tracing::warn!(
            "JWT_SECRET is not set: using the development secret; never do this in production"
        );
    }
    let pool = db::connect(&config.database_url, &config.database_schema, 16).await?;
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let state = http::AppState::new(pool, config)?;
    http::serve(listener, state, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
