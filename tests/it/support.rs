//! Shared helpers: companies with credits, message and payment rows, a single reservation and
//! charge through the send steps, the audit, `spawn_app`, and a property run's own database.

use std::collections::HashMap;
use std::time::Duration;

use copcca_sms::accounts::{self, Company};
use copcca_sms::config::Config;
use copcca_sms::domain::{CompanyId, Country, CreditDelta, Credits, HoldId, MessageId, PaymentId};
use copcca_sms::http::{self, AppState};
use copcca_sms::ledger;
use copcca_sms::messages::{NewMessage, insert_queued};
use sqlx::{PgConnection, PgPool};

/// A TZ company holding `credits` available credits (granted by an adjustment).
pub async fn company_with(pool: &PgPool, credits: i64) -> Company {
    let company = accounts::create_company(pool, "Test Co", Country::TZ)
        .await
        .unwrap();
    if credits > 0 {
        ledger::adjust(
            &mut pool.acquire().await.unwrap(),
            uuid::Uuid::now_v7(),
            company.id,
            CreditDelta::new(credits).unwrap(),
            "test grant",
            "test",
        )
        .await
        .unwrap();
    }
    company
}

/// A queued message row costing `credits`.
pub async fn message(pool: &PgPool, company: CompanyId, credits: i64) -> MessageId {
    let mut conn = pool.acquire().await.unwrap();
    let m = NewMessage {
        company,
        to: "+255754123456",
        body: "Test reminder",
        encoding: "GSM-7",
        segments: credits as i32,
        credits: Credits::new(credits).unwrap(),
        sender: "test",
    };
    insert_queued(&mut conn, &m).await.unwrap()
}

/// A payment in state `paid` (as a verified provider callback would leave it).
pub async fn paid_payment(pool: &PgPool, company: CompanyId, credits: i64) -> PaymentId {
    let id = PaymentId::new();
    sqlx::query(
        "INSERT INTO payments (id, company_id, package_id, method, status, credits, amount, currency, requested_by)
         VALUES ($1, $2, 'starter', 'bank_transfer', 'paid', $3, 2.00, 'USD', 'test')",
    )
    .bind(id)
    .bind(company)
    .bind(credits)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Reserves `credits` of `company` for `message`, held for `ttl`, as a send job's first step does
/// (`ledger::begin_sends` with one item: the message is marked `sending`): by a run that has just
/// read the message, so its `seen` is the message's current `send_attempt_started_at`. A database
/// error of the statement is `LedgerError::Database`.
pub async fn reserve_one(
    conn: &mut PgConnection,
    company: CompanyId,
    message: MessageId,
    credits: Credits,
    ttl: Duration,
) -> ledger::Begun {
    let seen: Option<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT send_attempt_started_at FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&mut *conn)
            .await?;
    let item = ledger::BeginSend {
        company,
        message,
        credits,
        ttl,
        seen: seen.flatten(),
        attempt: uuid::Uuid::now_v7(),
        account: None,
    };
    one(ledger::begin_sends(conn, &[item]).await?)
}

/// Charges `charge` credits on `hold`, as a send job's last step does (`ledger::finish_sends` with
/// one item: the message is marked `sent`, with a made-up provider record).
pub async fn commit_one(
    conn: &mut PgConnection,
    hold: HoldId,
    charge: Credits,
) -> ledger::Finished {
    let item = ledger::FinishSend {
        hold,
        charge,
        provider: "twilio".into(),
        provider_id: format!("SM{}", hold.0.simple()),
        segments: charge.get() as i32,
        uncharged: 0,
        price: None,
        price_currency: None,
    };
    one(ledger::finish_sends(conn, &[item]).await?)
}

fn one<A>(answers: Vec<A>) -> A {
    let [answer] =
        <[A; 1]>::try_from(answers).unwrap_or_else(|a| panic!("{} answers for one item", a.len()));
    answer
}

pub async fn available(pool: &PgPool, company: CompanyId) -> i64 {
    ledger::balance(pool, company)
        .await
        .unwrap()
        .available
        .get()
}

pub async fn reserved(pool: &PgPool, company: CompanyId) -> i64 {
    ledger::balance(pool, company).await.unwrap().reserved.get()
}

#[track_caller]
pub fn credits(n: i64) -> Credits {
    Credits::new(n).unwrap()
}

pub async fn assert_audit_clean(pool: &PgPool) {
    let report = ledger::audit(pool).await.unwrap();
    assert!(
        report.is_clean(),
        "ledger audit failed: {:#?}",
        report.violations
    );
}

/// A config with the local defaults and the given overrides.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let vars: HashMap<&str, &str> = overrides.iter().copied().collect();
    Config::from_lookup(|k| {
        vars.get(k)
            .map(|v| v.to_string())
            .or_else(|| std::env::var(k).ok())
    })
    .unwrap()
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A fresh user of `company` (or a company-less super_admin) and a token for it.
    pub async fn token(
        &self,
        company: Option<CompanyId>,
        role: copcca_sms::domain::Role,
    ) -> String {
        let user = accounts::create_user(&self.state.pool, company, role, None)
            .await
            .unwrap();
        self.state.jwt.issue(user.id, chrono::Duration::hours(1))
    }

    /// `GET path` with `token`, its body as JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// `route`'s entry in `GET /admin/routes`.
pub async fn route_status(
    app: &TestApp,
    token: &str,
    route: copcca_sms::routing::RouteName,
) -> serde_json::Value {
    let v = app.get_json("/admin/routes", token).await;
    v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == route.to_string())
        .unwrap_or_else(|| panic!("{route} missing from {v}"))
        .clone()
}

/// Starts the HTTP service on a free loopback port over `pool`.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, &[]).await
}

pub async fn spawn_app_with(pool: PgPool, overrides: &[(&str, &str)]) -> TestApp {
    // Bind first: the app's own address is its PUBLIC_URL (callbacks come back to it).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut vars: Vec<(&str, &str)> = vec![("PUBLIC_URL", &base)];
    vars.extend_from_slice(overrides);
    let state = AppState::new(pool, config(&vars)).unwrap();
    let served = state.clone();
    tokio::spawn(async move { http::serve(listener, served, std::future::pending()).await });
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
    }
}

/// This process's value of a counter series, named with its labels as rendered
/// (`copcca_send_interruptions_total{kind="taken_over"}`); 0 before its first sample. Compare it
/// before and after: under `cargo test` (one process for all tests) other tests count too.
pub fn process_counter(series: &str) -> u64 {
    copcca_sms::metrics::process_series(series).map_or(0, |v| v as u64)
}

/// Redis loses every key of this deployment (its prefix's; other tests' keys stay), as a
/// FLUSHALL would: queued jobs, delays, dedup keys.
pub async fn forget_jobs(queues: &copcca_sms::queue::Queues) {
    let mut conn = queues.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", queues.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "there were jobs to lose");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// Runs the real workers over `deps` until `queues` have nothing ready, in flight or delayed for
/// three polls in a row (or `limit` passes), then stops them gracefully. Retries are fast here.
pub async fn run_workers_until_idle(
    deps: &copcca_sms::workers::Deps,
    queues: &[&str],
    limit: std::time::Duration,
) {
    run_leased_workers_until_idle(deps, queues, limit, std::time::Duration::from_secs(5)).await;
}

/// As `run_workers_until_idle`, with jobs leased for `lease`: the jobs of a worker that died
/// are taken over once they have been idle that long.
pub async fn run_leased_workers_until_idle(
    deps: &copcca_sms::workers::Deps,
    queues: &[&str],
    limit: std::time::Duration,
    lease: std::time::Duration,
) {
    use copcca_sms::queue::{ConsumerConfig, RetryPolicy};
    use std::time::{Duration, Instant};

    let mut config = ConsumerConfig::new(RetryPolicy::new(
        8,
        Duration::from_millis(20),
        Duration::from_millis(100),
    ));
    config.lease = lease;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = deps.clone();
    let running = tokio::spawn(async move {
        copcca_sms::workers::run(workers, config, 16, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap()
    });
    let started = Instant::now();
    let mut idle_polls = 0;
    while started.elapsed() < limit && idle_polls < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut busy = 0;
        for q in queues {
            let s = deps.queues.store(q).stats().await.unwrap();
            busy += s.ready + s.in_flight + s.delayed;
        }
        idle_polls = if busy == 0 { idle_polls + 1 } else { 0 };
    }
    let _ = stop.send(());
    running.await.unwrap();
}

/// A migrated database of its own, with the runtime that drives it, for a property run: proptest
/// drives a synchronous closure, so such a test builds both itself rather than using
/// `#[sqlx::test]`.
pub struct OwnDatabase {
    pub rt: tokio::runtime::Runtime,
    pub pool: PgPool,
    url: url::Url,
    name: String,
}

impl OwnDatabase {
    /// A fresh database `<prefix>_<uuid>` on `DATABASE_URL`'s server.
    pub fn create(prefix: &str) -> OwnDatabase {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms_test".into());
        let mut url = url::Url::parse(&base).unwrap();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        url.set_path(&name);
        let pool = rt
            .block_on(copcca_sms::db::migrate(url.as_str(), "public"))
            .unwrap();
        OwnDatabase {
            rt,
            pool,
            url,
            name,
        }
    }

    /// Closes the pool and drops the database (the runtime goes when `self` does).
    pub fn drop_database(&self) {
        let name = &self.name;
        self.rt.block_on(async {
            self.pool.close().await;
            let mut admin = self.url.clone();
            admin.set_path("/postgres");
            let admin = PgPool::connect(admin.as_str()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .unwrap();
        });
    }
}
