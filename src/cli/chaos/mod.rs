//! `copcca-sms chaos`: a seeded chaos run (issue 16). It starts the service as deployed (child
//! processes of this binary: `serve`, `schedule`, several `work`) on a fresh database, against the
//! fake Twilio, Beem, Daraja and Stripe, with Vodacom Tanzania's numbers routed through Beem then
//! Twilio (issue 19), and while traffic flows (messages, batches, purchases) it injects the
//! faults of a schedule derived from the seed: workers SIGKILLed, Redis flushed, PostgreSQL
//! crash-restarted, Twilio and Beem answering 429 / 500 / late / cut short, a Beem outage that
//! fails its messages over to Twilio, callbacks late, twice and out of order, the Twilio token
//! rotated. Then it lets everything quiesce and checks that nothing was lost, charged twice or
//! sent twice, on either route. The same seed gives the same schedule.
//!
//! - `schedule`: the seed -> the faults and their times
//! - `services`: the run's own PostgreSQL cluster and Redis server (or the shared ones)
//! - `fleet`: the child processes
//! - `faults`: injecting the schedule
//! - `traffic`: messages and purchases through the HTTP API
//! - `callbacks`: Twilio's status callbacks
//! - `report`: the final checks, the table and the JSON

mod callbacks;
mod faults;
mod fleet;
mod report;
mod schedule;
mod services;
mod traffic;

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use url::Url;

use self::callbacks::Counters;
use self::faults::{Injected, Injector};
use self::fleet::Fleet;
use self::schedule::Shape;
use self::services::{Postgres, Redis, free_port};
use self::traffic::{Api, Bought, Tenants};
use super::demo::{FakeProviders, fresh_database};
use crate::config::Config;
use crate::db;
use crate::fakes::beem::FakeBeem;
use crate::fakes::twilio as fake_twilio;
use crate::http::auth::JwtKeys;
use crate::queue::Queues;
use crate::settings::Cipher;

/// The run's database (dropped and created again on every run).
const DATABASE: &str = "copcca_sms_chaos_run";
/// How long after a send the fake Beem posts its delivery report: during a hung send's wait, so
/// that the report adopts a send whose answer has not come.
const BEEM_REPORT_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// The seed of the fault schedule and the traffic (random when absent; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// How long faults are injected and traffic sent (`60s`, `10m`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Messages sent in all.
    #[arg(long, default_value_t = 1_000)]
    messages: usize,
    /// Companies sending them (and buying credits).
    #[arg(long, default_value_t = 4)]
    companies: usize,
    /// `work` processes running at once.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Use DATABASE_URL's server and never restart PostgreSQL.
    #[arg(long)]
    no_pg_restart: bool,
    /// How long the system may take to become quiet once the faults stop.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    quiesce_timeout: Duration,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(base: Config, args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let dir = std::env::temp_dir().join(format!("copcca-sms-chaos-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "chaos: seed {seed} (the same run: --seed {seed}); logs in {}",
        dir.display()
    );
    let shape = Shape {
        duration: args.duration,
        workers: args.workers.max(1),
        pg_restarts: !args.no_pg_restart,
    };
    let planned = schedule::plan(seed, shape);
    std::fs::write(
        dir.join("schedule.json"),
        serde_json::to_string_pretty(&planned)?,
    )?;
    eprintln!(
        "chaos: schedule of {} faults over {:?}: {:?} (all in schedule.json)",
        planned.len(),
        args.duration,
        schedule::counts(&planned)
    );

    let postgres = Postgres::start(&base.database_url, &dir, !args.no_pg_restart).await?;
    let redis = match Redis::start(&base.redis_url, &dir).await {
        Ok(r) => r,
        Err(e) => {
            postgres.stop().await;
            return Err(e);
        }
    };
    // Ctrl-C or SIGTERM drops the run, and with it every child process (killed on drop).
    let report = tokio::select! {
        report = chaos(&base, &args, seed, &planned, &dir, &postgres, &redis) => report,
        () = super::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    postgres.stop().await;
    redis.stop().await;
    let report = report?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print();
    }
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("chaos: logs kept in {}", dir.display());
        Ok(ExitCode::FAILURE)
    }
}

#[allow(clippy::too_many_arguments)]
async fn chaos(
    base: &Config,
    args: &ChaosArgs,
    seed: u64,
    planned: &[schedule::Planned],
    dir: &Path,
    postgres: &Postgres,
    redis: &Redis,
) -> anyhow::Result<report::Report> {
    let database_url = fresh_database(&postgres.url, DATABASE).await?;
    db::migrate(&database_url, &base.database_schema)
        .await?
        .close()
        .await;
    let pool = db::connect(&database_url, &base.database_schema, 10).await?;
    let fakes = FakeProviders::start().await?;
    let public = Url::parse(&format!("http://127.0.0.1:{}/", free_port()?))?;
    let prefix = format!("copcca-chaos-{}", uuid::Uuid::new_v4().simple());
    let env = fleet_env(base, &fakes, &database_url, &redis.url, &prefix, &public);
    let lookup: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Config::from_lookup(|k| {
        lookup
            .get(k)
            .map(|v| v.to_string())
            .or_else(|| std::env::var(k).ok())
    })?;
    fakes
        .stripe
        .set_webhook_url(config.public_url.route("/webhooks/stripe"));
    let cipher = Cipher::new(&config.settings_key.context("SETTINGS_KEY")?);
    // The account lives in operator settings (not the environment, which would win), so that
    // a rotation reaches every running process.
    faults::store_twilio(&pool, &cipher, fake_twilio::AUTH_TOKEN).await?;
    let opening = (args.messages * 2 / args.companies.max(1)) as i64 + 200;
    let tenants = Tenants::create(
        &pool,
        &JwtKeys::new(&config),
        args.companies.max(1),
        opening,
    )
    .await?;
    let queues = Queues::connect(&redis.url, &prefix).await?;

    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut fleet = Fleet::start(
        env,
        dir.to_path_buf(),
        args.workers.max(1),
        public.join("readyz")?.as_str(),
    )
    .await?;
    eprintln!(
        "chaos: serve, schedule and {} workers running; injecting",
        args.workers
    );

    let api = Api::new(public)?;
    let beem_report_url = traffic::route_through_beem(&api, &tenants).await?;
    fakes
        .beem
        .report_to(Some(&beem_report_url), BEEM_REPORT_AFTER);
    // Refused while PostgreSQL restarts, as Twilio's are: posted again, as Beem retries.
    fakes.beem.retry_reports_for(callbacks::RETRY_FOR);

    let counters = Arc::new(Counters::default());
    let (stop_callbacks, callbacks_stopped) = tokio::sync::watch::channel(false);
    let callbacks = tokio::spawn(callbacks::drive(
        fakes.twilio.clone(),
        seed,
        counters.clone(),
        callbacks_stopped,
    ));
    let started = Instant::now();
    let mut injector = Injector {
        fleet: &mut fleet,
        postgres,
        redis,
        queues: &queues,
        twilio: &fakes.twilio,
        beem: &fakes.beem,
        pool: &pool,
        cipher: &cipher,
        done: Injected::default(),
    };
    let (_, sent, bought) = tokio::join!(
        injector.run(planned, started),
        traffic::send_messages(&api, &tenants, seed, args.messages, args.duration),
        traffic::buy_credits(
            &api,
            &tenants,
            (&fakes.daraja, &fakes.stripe),
            &pool,
            seed,
            (args.messages / 100).max(9),
            args.duration,
        ),
    );
    let injected = injector.done;
    tokio::time::sleep_until((started + args.duration).into()).await;
    eprintln!(
        "chaos: faults over after {:.0} s ({} messages accepted); waiting for quiet",
        started.elapsed().as_secs_f64(),
        sent.accepted
    );
    let faults_over = Instant::now();
    let quiet = quiesce(
        &pool,
        &mut fleet,
        (&counters, &fakes.beem),
        &bought,
        args.quiesce_timeout,
    )
    .await;
    let quiesce_secs = quiet.then(|| faults_over.elapsed().as_secs_f64());

    let twilio_messages = fakes.twilio.messages();
    let beem_sends = fakes.beem.sends();
    let _ = stop_callbacks.send(true);
    let _ = callbacks.await;
    let report = report::collect(
        &pool,
        report::Observed {
            run: report::Run {
                seed,
                duration_secs: args.duration.as_secs_f64(),
                messages_requested: args.messages,
                companies: args.companies,
                workers: args.workers,
                schedule: schedule::counts(planned),
            },
            injected,
            sent: &sent,
            bought: &bought,
            callbacks: counters.figures(),
            at_providers: report::AtProviders {
                twilio: &twilio_messages,
                beem: &beem_sends,
            },
            requests_retried: api.retries.figures(),
            restarts: (fleet.restarts, fleet.error_exits),
            crashes: fleet.crashes.clone(),
            quiesce_secs,
        },
    )
    .await;
    fleet.stop().await;
    if let Err(e) = redis.flush(&queues).await {
        eprintln!("chaos: the run's Redis keys were not removed: {e}");
    }
    pool.close().await;
    report
}

/// The environment of every child process: the run's database and Redis prefix, the fakes,
/// and timings short enough for recovery to happen within the run.
fn fleet_env(
    base: &Config,
    fakes: &FakeProviders,
    database_url: &str,
    redis_url: &str,
    prefix: &str,
    public: &Url,
) -> Vec<(&'static str, String)> {
    let secret = || hex::encode(rand::random::<[u8; 32]>());
    let mut env: Vec<(&'static str, String)> = vec![
        ("COPCCA_ENV", "development".into()),
        ("DATABASE_URL", database_url.into()),
        ("DATABASE_SCHEMA", base.database_schema.clone()),
        ("REDIS_URL", redis_url.into()),
        ("REDIS_PREFIX", prefix.into()),
        (
            "BIND_ADDR",
            public
                .socket_addrs(|| None)
                .map_or(String::new(), |a| a[0].to_string()),
        ),
        ("PUBLIC_URL", public.to_string()),
        ("JWT_SECRET", secret()),
        ("SETTINGS_KEY", secret()),
        // A rotated token reaches every process within half a second.
        ("SETTINGS_RELOAD_MS", "500".into()),
        // The traffic is one client at full speed, and the fake Twilio posts every callback.
        ("API_RATE_PER_SECOND", "0".into()),
        ("WEBHOOK_RATE_PER_SECOND", "0".into()),
        ("TWILIO_MAX_PER_SECOND", "200".into()),
        // A send whose answer was lost and that Twilio's list does not show is sent again
        // after this: short, so that it happens within the run (the fake shows every message
        // once its first callback has left, well before).
        ("TWILIO_VALIDITY_PERIOD_SECS", "120".into()),
        ("TWILIO_RESEND_UNANSWERED_AFTER_SECS", "180".into()),
        ("LOG_FORMAT", "json".into()),
        ("RUST_LOG", "info,sqlx=warn".into()),
        // Set but empty is "not set" to nobody: the account comes from settings instead.
        ("TWILIO_ACCOUNT_SID", String::new()),
        ("TWILIO_AUTH_TOKEN", String::new()),
        ("TWILIO_FROM", String::new()),
    ];
    env.extend(fakes.env().into_iter().filter(|(k, _)| {
        !matches!(
            *k,
            "TWILIO_ACCOUNT_SID" | "TWILIO_AUTH_TOKEN" | "TWILIO_FROM"
        )
    }));
    env
}

/// Waits until every message is final (or held as unanswered after a Beem send that the fake
/// never received: no report will come), every purchase ended, no credits are held but for
/// those, and every Twilio status callback has been posted, for at most `limit`; meanwhile keeps
/// the fleet whole.
async fn quiesce(
    pool: &PgPool,
    fleet: &mut Fleet,
    (counters, beem): (&Counters, &FakeBeem),
    bought: &Bought,
    limit: Duration,
) -> bool {
    let ids: Vec<String> = bought.purchases.iter().map(|p| p.id.clone()).collect();
    let started = Instant::now();
    while started.elapsed() < limit {
        let _ = fleet.check();
        if matches!(open(pool, beem, &ids).await, Ok((0, 0, 0))) && counters.idle() {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// Messages not final, credits held and purchases open, but for messages held that Beem never
/// received.
async fn open(
    pool: &PgPool,
    beem: &FakeBeem,
    purchases: &[String],
) -> Result<(i64, i64, i64), sqlx::Error> {
    let held = report::held_never_at_beem(pool, &report::beem_received(&beem.sends())).await?;
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages
                 WHERE status NOT IN ('delivered', 'undelivered', 'failed') AND id <> ALL($2)),
                (SELECT count(*) FROM holds WHERE status = 'active' AND message_id <> ALL($2)),
                (SELECT count(*) FROM payments
                 WHERE id::text = ANY($1) AND status IN ('initiated', 'pending', 'paid'))",
    )
    .bind(purchases)
    .bind(&held)
    .fetch_one(pool)
    .await
}
