//! What the benchmarks share: a database of their own, recreated on every run.

use sqlx::PgPool;

// Used by the sending bench only.
#[allow(dead_code)]
pub mod cpu;

/// `DATABASE_URL` (or the local default) with its database replaced by `name`, dropped and
/// migrated afresh; returns a pool of `connections` and the URL.
pub async fn fresh_database(name: &str, connections: u32) -> anyhow::Result<(PgPool, url::Url)> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms".into());
    let mut url = url::Url::parse(&base)?;
    url.set_path(&format!("/{name}"));
    let mut admin = url.clone();
    admin.set_path("/postgres");
    let admin = PgPool::connect(admin.as_str()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    copcca_sms::db::migrate(url.as_str(), "public")
        .await?
        .close()
        .await;
    Ok((
        copcca_sms::db::connect(url.as_str(), "public", connections).await?,
        url,
    ))
}

/// A numeric setting from the environment, or its default.
pub fn env_number(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// Shared by the benches with a queue; the ledger bench has none.
#[allow(dead_code)]
/// Ends a run: prints the ledger audit, removes the run's Redis keys, and fails on a dirty audit.
pub async fn finish(pool: &PgPool, queues: &copcca_sms::queue::Queues) -> anyhow::Result<()> {
    let audit = copcca_sms::ledger::audit(pool).await?;
    println!(
        "audit after the run: {}",
        if audit.is_clean() {
            "clean"
        } else {
            "VIOLATIONS"
        }
    );
    queues.delete_all().await?;
    anyhow::ensure!(audit.is_clean(), "{:?}", audit.violations);
    Ok(())
}

// Shared by the benches that send; the ledger bench has no companies of this kind.
#[allow(dead_code)]
/// A TZ company holding `credits`, whose sends nothing holds back: hourly quota raised, quiet
/// hours off (the benches measure sending, not the limits).
pub async fn unthrottled_company(
    pool: &PgPool,
    name: &str,
    credits: i64,
) -> anyhow::Result<copcca_sms::accounts::Company> {
    use copcca_sms::domain::{Country, CreditDelta};
    let company = copcca_sms::accounts::create_company(pool, name, Country::TZ).await?;
    sqlx::query("UPDATE companies SET sms_per_hour = 100000000, quiet_hours_start = '00:00', quiet_hours_end = '00:00' WHERE id = $1")
        .bind(company.id)
        .execute(pool)
        .await?;
    let mut conn = pool.acquire().await?;
    copcca_sms::ledger::adjust(
        &mut conn,
        uuid::Uuid::now_v7(),
        company.id,
        CreditDelta::new(credits)?,
        "bench",
        "bench",
    )
    .await?;
    Ok(company)
}

// Shared by the benches that run the send workers.
#[allow(dead_code)]
/// The workers (`workers::run`), running until stopped.
pub struct Workers {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

#[allow(dead_code)]
impl Workers {
    /// Starts the workers over `deps`, the send worker at `concurrency`.
    pub fn start(deps: &copcca_sms::workers::Deps, concurrency: usize) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let deps = deps.clone();
        let running = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            copcca_sms::workers::run(
                deps,
                copcca_sms::workers::consumer_config(),
                concurrency,
                stopped,
            )
            .await?;
            anyhow::Ok(())
        });
        Workers { stop, running }
    }

    /// Stops them gracefully and waits until they have.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.running.await?
    }
}

// Used by the benches that drop their big database when done.
#[allow(dead_code)]
/// Drops the database `name` of `DATABASE_URL`'s server (the benches' big ones, to free the disk).
pub async fn drop_database(name: &str) -> anyhow::Result<()> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms".into());
    let mut admin = url::Url::parse(&base)?;
    admin.set_path("/postgres");
    let admin = PgPool::connect(admin.as_str()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    Ok(())
}

// Shared by the benches that serve the API.
#[allow(dead_code)]
/// The service's HTTP API, served on a free loopback port over `url`'s database and a Redis
/// prefix of its own (`bench-<name>-...`), with `extra` configuration; its state, its base URL
/// and the queues under its prefix.
pub struct Served {
    pub state: copcca_sms::http::AppState,
    pub public: String,
    pub queues: copcca_sms::queue::Queues,
}

#[allow(dead_code)]
/// Starts [`Served`]: `REDIS_URL` (or the local default), the database `url`, and `extra`.
pub async fn serve(
    pool: &PgPool,
    url: &url::Url,
    name: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Served> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public = format!("http://{}", listener.local_addr()?);
    let prefix = format!("bench-{name}-{}", uuid::Uuid::new_v4().simple());
    let mut vars = vec![
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("PUBLIC_URL", public.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
    ];
    vars.extend_from_slice(extra);
    // The send workers' concurrency is the service's, as the environment sets it.
    let concurrency = std::env::var("SEND_CONCURRENCY").ok();
    if let Some(c) = concurrency.as_deref() {
        vars.push(("SEND_CONCURRENCY", c));
    }
    let config = copcca_sms::config::Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })?;
    let state = copcca_sms::http::AppState::new(pool.clone(), config)?;
    tokio::spawn(copcca_sms::http::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let queues = copcca_sms::queue::Queues::connect(&redis, &prefix).await?;
    Ok(Served {
        state,
        public,
        queues,
    })
}
