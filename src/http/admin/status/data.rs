//! What the status page shows, read in one go: balances from PostgreSQL, queue figures and dead
//! letters from Redis, the last hour from `queue_samples` and `messages`. Redis trouble does not
//! take the page down: the page is most wanted when something is broken, so a Redis failure is
//! shown in place of its figures.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgPool;

use crate::http::admin::from_redis;
use crate::queue::{DeadLetter, QUEUES, QueueStats, Queues};
use crate::reports::revenue::{self, GroupBy, RevenueQuery, RevenueReport};

/// The charts cover this many one-minute buckets, the last one being the current minute.
pub const MINUTES: usize = 60;
/// The revenue chart covers this many UTC days, the last one being today.
pub const DAYS: usize = 30;
/// How many recent failures and dead letters are listed.
pub const RECENT: usize = 20;
/// At most this many companies are listed (by name).
pub const MAX_COMPANIES: i64 = 500;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CompanyBalance {
    pub id: uuid::Uuid,
    pub name: String,
    pub available: i64,
    pub reserved: i64,
    pub purchased: i64,
    /// Credits charged for sent messages.
    pub sent: i64,
}

/// One queue's depth at one minute.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepthSample {
    pub taken_at: DateTime<Utc>,
    pub queue: String,
    pub ready: i64,
    pub in_flight: i64,
    pub delayed: i64,
}

impl DepthSample {
    /// Jobs not yet done: ready, running or waiting for their time.
    pub fn backlog(&self) -> i64 {
        self.ready + self.in_flight + self.delayed
    }
}

/// Send attempts that began in one minute, by their outcome so far.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MinuteRate {
    pub minute: DateTime<Utc>,
    /// Now `sent` or `delivered`.
    pub sent: i64,
    /// Now `failed` or `undelivered`.
    pub failed: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Failure {
    pub id: uuid::Uuid,
    pub company: String,
    pub to_number: String,
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A card dispute, open ones first.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Dispute {
    pub id: String,
    pub company_id: uuid::Uuid,
    pub company: String,
    pub payment_id: uuid::Uuid,
    pub amount: rust_decimal::Decimal,
    pub currency: String,
    pub reason: String,
    pub stripe_status: String,
    pub outcome: String,
    pub credits_share: i64,
    pub opened_at: DateTime<Utc>,
}

/// A route's sends whose attempt began in the window, by the currency of their cost.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteActivity {
    /// `messages.provider`: the route (or `demo`).
    pub provider: String,
    pub sent: i64,
    pub failed: i64,
    /// What the provider reported charging the platform for them, where it did.
    pub cost: Option<rust_decimal::Decimal>,
    pub currency: Option<String>,
}

pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// The first minute of the charts' window.
    pub window_start: DateTime<Utc>,
    pub balances: Vec<CompanyBalance>,
    /// Every queue's figures now, or why Redis could not tell.
    pub queues: Result<Vec<(&'static str, QueueStats)>, String>,
    pub depth: Vec<DepthSample>,
    /// One entry per minute of the window, oldest first.
    pub send_rate: Vec<MinuteRate>,
    pub failures: Vec<Failure>,
    pub disputes: Vec<Dispute>,
    /// Each route's sends of the charts' window.
    pub route_activity: Vec<RouteActivity>,
    /// Each route's account and circuit (filled by the page, which knows the providers).
    pub routes: Vec<crate::http::admin::routes::RouteStatus>,
    /// The latest dead letters of all queues, newest first, or why Redis could not tell.
    pub dead_letters: Result<Vec<(&'static str, DeadLetter)>, String>,
    /// What needs the operator now (a paused account, unanswered sends), shown first.
    pub alerts: Vec<String>,
    /// The revenue report of the last [`DAYS`] days, by day (every company).
    pub revenue: RevenueReport,
    /// The latest clean ledger audit's checkpoint.
    pub audited: Option<crate::ledger::Checkpoint>,
}

/// Reads everything the page shows as of `at`.
pub async fn gather(pool: &PgPool, queues: &Queues, at: DateTime<Utc>) -> sqlx::Result<Snapshot> {
    let last_minute = at
        .duration_trunc(TimeDelta::minutes(1))
        .expect("a minute divides any time");
    let window_start = last_minute - TimeDelta::minutes(MINUTES as i64 - 1);
    let (queue_stats, dead_letters) =
        tokio::join!(from_redis(queues.stats()), from_redis(dead_letters(queues)));
    Ok(Snapshot {
        at,
        window_start,
        balances: balances(pool).await?,
        queues: queue_stats,
        depth: depth(pool, window_start).await?,
        send_rate: send_rate(pool, window_start, last_minute).await?,
        failures: failures(pool).await?,
        disputes: disputes(pool).await?,
        route_activity: route_activity(pool, window_start).await?,
        routes: Vec::new(),
        dead_letters,
        alerts: Vec::new(),
        revenue: revenue::revenue(
            pool,
            &RevenueQuery {
                from: at.date_naive() - TimeDelta::days(DAYS as i64 - 1),
                to: at.date_naive(),
                group_by: GroupBy::Day,
                company: None,
            },
        )
        .await?,
        audited: crate::ledger::latest_checkpoint(pool).await?,
    })
}

async fn balances(pool: &PgPool) -> sqlx::Result<Vec<CompanyBalance>> {
    sqlx::query_as(
        "SELECT c.id, c.name,
                COALESCE(b.available, 0) AS available, COALESCE(b.reserved, 0) AS reserved,
                COALESCE(b.total_purchased, 0) AS purchased, COALESCE(b.total_sent, 0) AS sent
         FROM companies c LEFT JOIN balances b ON b.company_id = c.id
         ORDER BY c.name, c.id LIMIT $1",
    )
    .bind(MAX_COMPANIES)
    .fetch_all(pool)
    .await
}

async fn depth(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<DepthSample>> {
    sqlx::query_as(
        "SELECT taken_at, queue, ready, in_flight, delayed FROM queue_samples
         WHERE taken_at >= $1 ORDER BY queue, taken_at",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

async fn send_rate(
    pool: &PgPool,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> sqlx::Result<Vec<MinuteRate>> {
    sqlx::query_as(
        "WITH attempts AS (
             SELECT date_trunc('minute', send_attempt_started_at) AS minute,
                    count(*) FILTER (WHERE status IN ('sent', 'delivered')) AS sent,
                    count(*) FILTER (WHERE status IN ('failed', 'undelivered')) AS failed
             FROM messages
             WHERE send_attempt_started_at >= $1 AND send_attempt_started_at < $2 + interval '1 minute'
             GROUP BY 1)
         SELECT m.minute, COALESCE(a.sent, 0) AS sent, COALESCE(a.failed, 0) AS failed
         FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS m (minute)
         LEFT JOIN attempts a ON a.minute = m.minute
         ORDER BY m.minute",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
}

async fn failures(pool: &PgPool) -> sqlx::Result<Vec<Failure>> {
    sqlx::query_as(
        "SELECT m.id, c.name AS company, m.to_number, m.status, m.error_code, m.error_message,
                m.updated_at
         FROM messages m JOIN companies c ON c.id = m.company_id
         WHERE m.status IN ('failed', 'undelivered')
         ORDER BY m.updated_at DESC LIMIT $1",
    )
    .bind(RECENT as i64)
    .fetch_all(pool)
    .await
}

async fn route_activity(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<RouteActivity>> {
    // The send-rate chart's index (`messages_send_started_idx`): the window's attempts only.
    sqlx::query_as(
        "SELECT provider,
                count(*) FILTER (WHERE status IN ('sent', 'delivered', 'undelivered')) AS sent,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                sum(price) AS cost, price_currency AS currency
         FROM messages
         WHERE send_attempt_started_at >= $1 AND provider IS NOT NULL
         GROUP BY provider, price_currency
         ORDER BY provider, price_currency NULLS FIRST",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

async fn disputes(pool: &PgPool) -> sqlx::Result<Vec<Dispute>> {
    sqlx::query_as(
        "SELECT d.id, d.company_id, c.name AS company, d.payment_id, d.amount, d.currency, d.reason,
                d.stripe_status, d.outcome, d.credits_share, d.opened_at
         FROM payment_disputes d JOIN companies c ON c.id = d.company_id
         ORDER BY d.outcome = 'open' DESC, d.opened_at DESC LIMIT $1",
    )
    .bind(RECENT as i64)
    .fetch_all(pool)
    .await
}

async fn dead_letters(queues: &Queues) -> redis::RedisResult<Vec<(&'static str, DeadLetter)>> {
    let mut all = Vec::new();
    for q in QUEUES {
        for d in queues.store(q).recent_dead_letters(RECENT).await? {
            all.push((q, d));
        }
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.1.failed_at_ms));
    all.truncate(RECENT);
    Ok(all)
}
