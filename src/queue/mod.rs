//! The durable job queue: our Redis backend for apalis 1.0.
//!
//! Per queue, in Redis (all keys of one queue share a hash tag, so it works on Redis Cluster):
//! a Stream read through one consumer group (XREADGROUP BLOCK: an idle worker sees a push at
//! once; XACK + XDEL on completion), a sorted set of delayed jobs with their data (scheduled,
//! retrying, snoozed), moved into the stream by a script in bounded chunks, a dead-letter
//! stream, and idempotency keys checked in the same script that enqueues.
//!
//! Delivery is at least once: a worker that dies leaves its entries pending, and after the
//! lease (renewed while a job runs) another worker takes them over (XAUTOCLAIM). Handlers are
//! therefore idempotent; the database row is the truth.

pub mod backend;
mod consumer;
pub mod cron;
mod keys;
mod outcome;
mod store;

use std::time::Duration;

use copcca_jobs::Job;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use backend::{AckLayer, JobId, QueueError, RedisBackend};
pub use consumer::ConsumerConfig;
pub use keys::QueueKeys;
pub use outcome::{Cause, JobError, JobResultExt, RetryPolicy};
pub use store::{
    DeadLetter, Delivery, Enqueued, JobRecord, NewJob, QueueStats, QueueStore, Settle, now_ms,
};

/// Idempotency keys outlive any retry schedule of the jobs they guard.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(48 * 3600);

/// Every queue of `copcca_jobs`, for listings and metrics.
pub const QUEUES: [&str; 4] = [
    copcca_jobs::VerifyPurchase::QUEUE,
    copcca_jobs::SendSms::QUEUE,
    copcca_jobs::Refund::QUEUE,
    copcca_jobs::SweepOverdueDebts::QUEUE,
];

/// The queues of one deployment (one Redis, one key prefix).
#[derive(Clone)]
pub struct Queues {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
}

impl Queues {
    pub async fn connect(redis_url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let conn = client
            .get_connection_manager_with_config(Self::manager_config())
            .await?;
        Ok(Queues {
            client,
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// Connects on first use (and reconnects after), so a process can start while Redis is down.
    pub fn connect_lazy(redis_url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), Self::manager_config())?;
        Ok(Queues {
            client,
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn manager_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(5)))
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn store(&self, queue: &str) -> QueueStore {
        QueueStore::new(self.conn.clone(), &self.prefix, queue, IDEMPOTENCY_TTL)
    }

    /// A backend on any queue, for jobs of type `Args` capped at `max_attempts`.
    pub fn backend<Args>(
        &self,
        queue: &str,
        config: ConsumerConfig,
        max_attempts: u32,
    ) -> RedisBackend<Args> {
        RedisBackend::new(self.store(queue), self.client.clone(), config, max_attempts)
    }

    /// The backend of job kind `J`, on its own queue with its own attempt cap.
    pub fn backend_for<J: Job>(&self, config: ConsumerConfig) -> RedisBackend<J> {
        self.backend(J::QUEUE, config, J::MAX_ATTEMPTS)
    }

    /// Enqueues `job` now, once per idempotency key (a second enqueue returns the first job's id
    /// with `fresh: false`).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<Enqueued, QueueError> {
        Ok(self
            .enqueue_bulk(std::slice::from_ref(job), None)
            .await?
            .remove(0))
    }

    /// Enqueues `job` now under the idempotency key `key` instead of its own: a follow-up that
    /// must run even while a job under the usual key waits (snoozed, or retrying), once per
    /// `key`.
    pub async fn enqueue_as<J: Job>(&self, job: &J, key: &str) -> Result<Enqueued, QueueError> {
        Ok(self
            .enqueue_bulk_as(std::slice::from_ref(job), |_| key.to_string())
            .await?
            .remove(0))
    }

    /// Enqueues many jobs of one kind now, each under the idempotency key `key(job)` instead of
    /// its own: [`Queues::enqueue_as`] for a batch (a quota change, a reconciliation window).
    pub async fn enqueue_bulk_as<J: Job>(
        &self,
        jobs: &[J],
        key: impl Fn(&J) -> String,
    ) -> Result<Vec<Enqueued>, QueueError> {
        self.enqueue_keyed(jobs, key, None).await
    }

    /// Enqueues many jobs of one kind in as few round trips as the script chunking allows,
    /// to run no earlier than `run_at_ms` when given.
    pub async fn enqueue_bulk<J: Job>(
        &self,
        jobs: &[J],
        run_at_ms: Option<u64>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        self.enqueue_keyed(jobs, J::idempotency_key, run_at_ms)
            .await
    }

    async fn enqueue_keyed<J: Job>(
        &self,
        jobs: &[J],
        key: impl Fn(&J) -> String,
        run_at_ms: Option<u64>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let new: Vec<NewJob> = jobs
            .iter()
            .map(|j| {
                Ok(NewJob {
                    id: uuid::Uuid::now_v7().to_string(),
                    args: serde_json::to_string(j)?,
                    max_attempts: J::MAX_ATTEMPTS,
                    idempotency_key: Some(key(j)),
                    run_at_ms,
                })
            })
            .collect::<Result<_, serde_json::Error>>()?;
        Ok(self.store(J::QUEUE).enqueue(&new).await?)
    }

    /// Deletes every key of this prefix (queues, idempotency keys, rate limits): for throwaway
    /// prefixes such as the demo's. Never call it on a live deployment's prefix.
    pub async fn delete_all(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let mut deleted = 0;
        for pattern in [format!("{{{}:*", self.prefix), format!("{}:*", self.prefix)] {
            let keys: Vec<String> = {
                let mut iter: redis::AsyncIter<String> =
                    redis::AsyncCommands::scan_match(&mut conn, &pattern).await?;
                let mut keys = Vec::new();
                while let Some(k) = futures::StreamExt::next(&mut iter).await {
                    keys.push(k?);
                }
                keys
            };
            for chunk in keys.chunks(500) {
                let n: usize = redis::cmd("UNLINK")
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await?;
                deleted += n;
            }
        }
        Ok(deleted)
    }

    /// Depth figures of every queue.
    pub async fn stats(&self) -> redis::RedisResult<Vec<(&'static str, QueueStats)>> {
        let mut out = Vec::new();
        for q in QUEUES {
            out.push((q, self.store(q).stats().await?));
        }
        Ok(out)
    }
}

/// A worker name unique to this process and start: `<host>-<pid>-<random>`. Consumer names
/// need not be stable: a restart under any name works at once (its predecessor's entries are
/// taken over after their lease, or at once when the name is reused).
pub fn worker_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{role}-{host}-{}-{}", std::process::id(), &random[..8])
}
