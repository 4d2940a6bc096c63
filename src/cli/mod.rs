//! The `copcca-sms` command line (DESIGN.md section 1). `anyhow` lives here and nowhere below.

mod admin;
mod chaos;
mod demo;
mod output;
mod startup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::future::Future;
use std::time::Duration;

use crate::config::{Config, Environment};
use crate::providers::SmsGateway;
use crate::queue::Queues;
use crate::routing::RouteName;
use crate::workers::{self, reconcile, sample_queues};
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
    /// Job workers: purchase verification, SMS send, refund, overdue-debt sweep.
    Work,
    /// Periodic jobs: overdue-debt sweeps, expired holds, payment timeouts, reconciliation.
    Schedule,
    /// serve + work + schedule in one process.
    Run,
    /// The whole product end to end on a fresh database of its own (copcca_sms_demo), against
    /// built-in fake Twilio, Daraja and Stripe servers, ending with a summary table.
    Demo {
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Operator tasks.
    Admin(admin::AdminArgs),
    /// Development: start the fake Twilio, Daraja and Stripe on loopback ports, write the
    /// environment that points `serve` at them to a file, and run until stopped
    /// (scripts/api-fuzz and the TypeScript client's tests use it). The fake Stripe posts its
    /// events to `PUBLIC_URL`'s `/webhooks/stripe`.
    #[command(hide = true)]
    Fakes {
        /// Where to write the `NAME=value` lines, once every fake is listening.
        #[arg(long)]
        env_file: std::path::PathBuf,
    },
    /// Development: a seeded chaos run of `serve`, `schedule` and several `work` processes
    /// against the fakes, with faults injected, ending with the checks (README: Chaos run).
    #[command(hide = true)]
    Chaos(chaos::ChaosArgs),
}

/// Exit codes: 0 ok, 1 failure, 78 bad configuration (sysexits EX_CONFIG).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(78);
        }
    };
    let long_running = matches!(
        cli.command,
        Command::Serve | Command::Work | Command::Schedule | Command::Run
    );
    let quiet = matches!(cli.command, Command::Demo { .. } | Command::Chaos(_));
    telemetry::init(
        config.log_format,
        if quiet {
            "warn,sqlx=error"
        } else {
            telemetry::DEFAULT_FILTER
        },
    );
    if long_running && let Err(e) = crate::faults::setup_from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(78);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Migrate => migrate(&config).await,
            Command::Serve => serve(config).await,
            Command::Demo { json } => demo::run(config, json).await,
            Command::Admin(args) => admin::run(&config, args).await,
            Command::Work => {
                process_metrics(&config).await?;
                work(config, shutdown_signal()).await
            }
            Command::Schedule => {
                process_metrics(&config).await?;
                schedule(config, shutdown_signal()).await
            }
            Command::Run => run_all(config).await,
            Command::Fakes { env_file } => fakes(&config, &env_file).await,
            Command::Chaos(args) => chaos::run(config, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if e.is::<NoSmsProvider>() => {
            eprintln!("error: {e}");
            ExitCode::from(78)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    db::migrate(&config.database_url, &config.database_schema).await?;
    tracing::info!(schema = %config.database_schema, "migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `work` and `schedule` serve their own counters on `METRICS_ADDR` when it is set.
async fn process_metrics(config: &Config) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving process metrics");
        tokio::spawn(http::serve_process_metrics(listener));
    }
    Ok(())
}

/// `work` in production with no SMS provider: it would charge for messages it never sends.
#[derive(Debug, thiserror::Error)]
#[error(
    "COPCCA_ENV=production and no SMS provider is configured: set TWILIO_ACCOUNT_SID, \
     TWILIO_AUTH_TOKEN and TWILIO_FROM, or store the account in settings \
     (`copcca-sms admin set-twilio`, readable with SETTINGS_KEY); the demo provider only pretends to send"
)]
pub struct NoSmsProvider;

async fn deps(config: &Config) -> anyhow::Result<workers::Deps> {
    startup::when_reachable("PostgreSQL and Redis", config.startup_wait, || async {
        let pool = db::connect(&config.database_url, &config.database_schema, 16).await?;
        let queues = Queues::connect(&config.redis_url, &config.redis_prefix).await?;
        Ok(workers::Deps::load(pool, queues, config).await?)
    })
    .await
}

/// The workers' deps; in production, only with a real SMS provider.
async fn sending_deps(config: &Config) -> anyhow::Result<workers::Deps> {
    let deps = deps(config).await?;
    let providers = deps.providers.current();
    match &providers.sms.twilio {
        SmsGateway::Demo if config.environment == Environment::Production => {
            return Err(NoSmsProvider.into());
        }
        SmsGateway::Demo => tracing::warn!(
            "provider: demo (no Twilio account configured): messages are logged as sent, charged, and nothing leaves the machine"
        ),
        twilio => tracing::info!(account = twilio.account(), "provider: twilio"),
    }
    for route in [RouteName::Beem, RouteName::Africastalking] {
        if let Some(gateway) = providers.sms.get(route) {
            tracing::info!(account = gateway.account(), "route {route}: configured");
        }
    }
    Ok(deps)
}

async fn work(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    let deps = sending_deps(&config).await?;
    let concurrency = config.send_concurrency;
    tracing::info!(
        send_concurrency = concurrency,
        "workers running: sms, refunds, purchases, sweeps"
    );
    workers::run(deps, workers::consumer_config(), concurrency, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn schedule(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
    use futures::FutureExt;
    let deps = deps(&config).await?;
    let queues = deps.queues.clone();
    let pool = deps.pool.clone();
    let stop = shutdown.shared();
    tracing::info!(sweep_cron = %config.sweep_cron, "scheduler running: reconciliation every 30 s, queue samples every minute, overdue-debt sweeps on SWEEP_CRON (UTC)");
    let (_, _, sweeps) = tokio::join!(
        reconcile::run(
            deps,
            reconcile::Settings {
                rejected_webhooks_kept: config.rejected_webhook_retention,
                ..Default::default()
            },
            Duration::from_secs(30),
            stop.clone(),
        ),
        sample_queues::run(pool, queues.clone(), Duration::from_secs(60), stop.clone()),
        workers::schedule_sweeps(&queues, &config.sweep_cron, stop),
    );
    sweeps?;
    Ok(ExitCode::SUCCESS)
}

/// serve + work + schedule in one process, stopped together by one signal.
async fn run_all(config: Config) -> anyhow::Result<ExitCode> {
    // Refuse before anything starts, rather than serve without workers.
    drop(sending_deps(&config).await?);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    let stop = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    };
    let (a, b, c) = tokio::join!(
        serve_until(config.clone(), stop()),
        work(config.clone(), stop()),
        schedule(config, stop())
    );
    a?;
    b?;
    c?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    serve_until(config, shutdown_signal()).await
}

async fn serve_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    if config.uses_dev_jwt_secret() {
        tracing::warn!(
            "JWT_SECRET is not set: using the development secret; never do this in production"
        );
    }
    // Listening only once ready: until then a load balancer's probe is refused, not left hanging.
    let state = startup::when_reachable("PostgreSQL and Redis", config.startup_wait, || async {
        let pool = db::connect(&config.database_url, &config.database_schema, 16).await?;
        Ok(http::AppState::load(pool, config.clone()).await?)
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    http::serve(listener, state, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn fakes(config: &Config, env_file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let fakes = demo::FakeProviders::start().await?;
    // Where the operator would point Stripe's dashboard.
    fakes
        .stripe
        .set_webhook_url(config.public_url.route("webhooks/stripe"));
    fakes.write_env_file(env_file)?;
    tracing::info!(env_file = %env_file.display(), "fake providers listening");
    shutdown_signal().await;
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
