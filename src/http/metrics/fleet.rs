//! Series that describe the whole deployment: queue depths from Redis, read at every scrape (a
//! few O(1) commands), and messages, credits and payments from PostgreSQL. Messages by status and
//! credits by operation come from counters kept as the tables change ([`fleet_counters`]), a few
//! rows whatever the size of the tables; payments and balances are small aggregate queries.
//! [`TableCache`] still keeps their result and reads them again at most once per
//! `METRICS_CACHE_SECS` in this process, however many scrapers ask.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::db::fleet_counters;
use crate::messages::MessageStatus;
use crate::queue::Queues;

/// Payment methods and states as the schema allows them; rows with others are shown too.
const PAYMENT_METHODS: [&str; 3] = ["mpesa", "card", "bank_transfer"];
const PAYMENT_STATES: [&str; 8] = [
    "initiated",
    "pending",
    "paid",
    "credited",
    "failed",
    "cancelled",
    "expired",
    "refunded",
];

/// Credits moved by the ledger, by operation (names from `ledger_entry_operation`, 0026).
const LEDGER_OPERATIONS: [&str; 9] = [
    "reserved",
    "committed",
    "released",
    "refunded",
    "purchased",
    "purchase_reversed",
    "purchase_restored",
    "adjusted_up",
    "adjusted_down",
];

/// The deployment's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// (queue, state) -> jobs; state is ready, in_flight, delayed or dead. Empty when Redis
    /// did not answer.
    pub queue_jobs: BTreeMap<(String, String), i64>,
    /// Empty when PostgreSQL did not answer.
    pub tables: Tables,
    /// Whether each source answered (`postgres`, `redis`).
    pub sources_up: BTreeMap<String, bool>,
}

/// The figures read from PostgreSQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub messages: BTreeMap<String, i64>,
    /// Credits moved, by operation, since the beginning.
    pub ledger_credits: BTreeMap<String, i64>,
    /// Credits held now: available and reserved, summed over companies.
    pub balances: BTreeMap<String, i64>,
    /// (method, state) -> payments.
    pub payments: BTreeMap<(String, String), i64>,
}

/// The last [`Tables`] read and when, shared by the scrapes of one process. A failed read is
/// not kept: the next scrape tries again.
#[derive(Clone)]
pub struct TableCache {
    ttl: Duration,
    last: Arc<tokio::sync::Mutex<Option<(Instant, Tables)>>>,
}

impl TableCache {
    /// Figures at most `ttl` old (zero: read at every scrape).
    pub fn new(ttl: Duration) -> Self {
        TableCache {
            ttl,
            last: Arc::default(),
        }
    }

    /// The kept figures while fresh, else read now. Scrapes that come while a read is running
    /// wait for it and take its result: one read at a time.
    async fn get(&self, pool: &PgPool) -> Result<Tables, sqlx::Error> {
        let mut last = self.last.lock().await;
        if let Some((at, tables)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(tables.clone());
        }
        let tables = from_postgres(pool).await?;
        *last = Some((Instant::now(), tables.clone()));
        Ok(tables)
    }
}

/// Reads the figures (the PostgreSQL ones through `cache`). A source that fails is reported
/// down and its series left out; the scrape itself never fails for it.
pub async fn snapshot(pool: &PgPool, queues: &Queues, cache: &TableCache) -> Snapshot {
    let mut s = Snapshot::default();
    let redis = tokio::time::timeout(std::time::Duration::from_secs(3), queues.stats()).await;
    match redis {
        Ok(Ok(stats)) => {
            for (queue, st) in stats {
                for (state, n) in [
                    ("ready", st.ready),
                    ("in_flight", st.in_flight),
                    ("delayed", st.delayed),
                    ("dead", st.dead),
                ] {
                    s.queue_jobs
                        .insert((queue.to_string(), state.to_string()), n as i64);
                }
            }
            s.sources_up.insert("redis".into(), true);
        }
        other => {
            let error = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            tracing::warn!(%error, "metrics: queue depths unavailable");
            s.sources_up.insert("redis".into(), false);
        }
    }
    match cache.get(pool).await {
        Ok(tables) => {
            s.tables = tables;
            s.sources_up.insert("postgres".into(), true)
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: database figures unavailable");
            s.sources_up.insert("postgres".into(), false)
        }
    };
    s
}

async fn from_postgres(pool: &PgPool) -> Result<Tables, sqlx::Error> {
    let mut s = Tables::default();
    for status in MessageStatus::ALL {
        s.messages.insert(status.as_str().into(), 0);
    }
    for op in LEDGER_OPERATIONS {
        s.ledger_credits.insert(op.into(), 0);
    }
    for (series, key, value) in fleet_counters::read(pool).await? {
        match series.as_str() {
            "messages" => s.messages.insert(key, value),
            "ledger_credits" => s.ledger_credits.insert(key, value),
            _ => None,
        };
    }

    let (available, reserved): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(available), 0)::bigint, COALESCE(sum(reserved), 0)::bigint FROM balances",
    )
    .fetch_one(pool)
    .await?;
    s.balances.insert("available".into(), available);
    s.balances.insert("reserved".into(), reserved);

    for method in PAYMENT_METHODS {
        for state in PAYMENT_STATES {
            s.payments.insert((method.into(), state.into()), 0);
        }
    }
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT method, status, count(*) FROM payments GROUP BY method, status")
            .fetch_all(pool)
            .await?;
    s.payments
        .extend(rows.into_iter().map(|(m, st, n)| ((m, st), n)));
    Ok(s)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BucketLabels {
    bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PaymentLabels {
    method: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

impl Snapshot {
    /// Adds these figures to `registry` (a fresh registry per scrape: no stale series).
    pub fn register(&self, registry: &mut Registry) {
        let queue_jobs = Family::<QueueLabels, Gauge>::default();
        for ((queue, state), n) in &self.queue_jobs {
            let labels = QueueLabels {
                queue: queue.clone(),
                state: state.clone(),
            };
            queue_jobs.get_or_create(&labels).set(*n);
        }
        registry.register(
            "queue_jobs",
            "Jobs per queue: ready (waiting), in_flight (running), delayed (scheduled, retrying or snoozed), dead",
            queue_jobs,
        );

        let messages = Family::<StatusLabels, Gauge>::default();
        for (status, n) in &self.tables.messages {
            let labels = StatusLabels {
                status: status.clone(),
            };
            messages.get_or_create(&labels).set(*n);
        }
        registry.register("messages", "Messages by status", messages);

        let ledger = Family::<OperationLabels, Counter>::default();
        for (op, n) in &self.tables.ledger_credits {
            let labels = OperationLabels {
                operation: op.clone(),
            };
            ledger.get_or_create(&labels).inc_by((*n).max(0) as u64);
        }
        registry.register(
            "ledger_credits",
            "Credits moved by the ledger since the beginning, by operation",
            ledger,
        );

        let balances = Family::<BucketLabels, Gauge>::default();
        for (bucket, n) in &self.tables.balances {
            let labels = BucketLabels {
                bucket: bucket.clone(),
            };
            balances.get_or_create(&labels).set(*n);
        }
        registry.register(
            "credits_balance",
            "Credits held now over all companies: available and reserved",
            balances,
        );

        let payments = Family::<PaymentLabels, Gauge>::default();
        for ((method, state), n) in &self.tables.payments {
            let labels = PaymentLabels {
                method: method.clone(),
                state: state.clone(),
            };
            payments.get_or_create(&labels).set(*n);
        }
        registry.register("payments", "Payments by method and state", payments);

        let up = Family::<SourceLabels, Gauge>::default();
        for (source, ok) in &self.sources_up {
            let labels = SourceLabels {
                source: source.clone(),
            };
            up.get_or_create(&labels).set(i64::from(*ok));
        }
        registry.register(
            "scrape_source_up",
            "1 when the source of the fleet series answered this scrape",
            up,
        );
    }
}
