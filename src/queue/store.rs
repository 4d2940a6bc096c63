//! The queue's Redis operations, one method per step of a job's life. Multi-key steps are Lua
//! scripts (in `lua/`), so each is atomic: a crash between two Redis calls cannot lose a job or
//! run it twice beyond what at-least-once delivery allows.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script, Value};
use serde::{Deserialize, Serialize};

use super::keys::{GROUP, QueueKeys};

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| Script::new(include_str!(concat!("lua/", $file))))
    };
}

static ENQUEUE: LazyLock<Script> = script!("enqueue.lua");
static PROMOTE: LazyLock<Script> = script!("promote.lua");
static SETTLE: LazyLock<Script> = script!("settle.lua");
static EXTEND: LazyLock<Script> = script!("extend.lua");
static RECLAIM: LazyLock<Script> = script!("reclaim.lua");
static GIVE_BACK: LazyLock<Script> = script!("give_back.lua");
static REDRIVE: LazyLock<Script> = script!("redrive.lua");
static PRUNE: LazyLock<Script> = script!("prune.lua");

/// One call of the enqueue script handles at most this many jobs, so it never blocks Redis long.
const ENQUEUE_CHUNK: usize = 1_000;

/// A job as the queue stores it: its id, JSON arguments and attempt bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub args: String,
    /// Attempts already used before this delivery.
    #[serde(with = "as_string")]
    pub attempt: u32,
    #[serde(with = "as_string")]
    pub max: u32,
    /// The full idempotency key it was enqueued under, or empty.
    pub idem: String,
    /// Enqueue time, ms since the epoch.
    #[serde(with = "as_string")]
    pub enq: u64,
}

mod as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: std::str::FromStr>(
        d: D,
    ) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}")))
    }
}

impl JobRecord {
    fn from_fields(fields: &HashMap<String, Value>) -> Option<Self> {
        let get = |k: &str| {
            fields
                .get(k)
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
        };
        Some(JobRecord {
            id: get("id")?,
            args: get("args")?,
            attempt: get("attempt")?.parse().ok()?,
            max: get("max")?.parse().ok()?,
            idem: get("idem").unwrap_or_default(),
            enq: get("enq")?.parse().ok()?,
        })
    }
}

/// A job delivered to a consumer: the stream entry that carries it, and how often it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub entry: String,
    pub job: JobRecord,
    pub deliveries: u64,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub args: String,
    pub max_attempts: u32,
    pub idempotency_key: Option<String>,
    /// Run no earlier than this (ms since the epoch); `None` = now.
    pub run_at_ms: Option<u64>,
}

/// What enqueueing one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id, or the id of the job that already held its idempotency key.
    pub id: String,
    /// False when the idempotency key had already enqueued a job.
    pub fresh: bool,
}

/// How a settled entry leaves the consumer.
#[derive(Debug, Clone)]
pub enum Settle {
    Done,
    Later {
        at_ms: u64,
        job: JobRecord,
    },
    Dead {
        job: JobRecord,
        error: String,
        at_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The dead-letter entry id: what `redrive` takes.
    pub entry: String,
    pub job: JobRecord,
    pub error: String,
    pub failed_at_ms: u64,
}

/// Depth figures of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct QueueStats {
    /// Waiting in the stream, not yet delivered.
    pub ready: u64,
    /// Delivered to a consumer and not yet settled.
    pub in_flight: u64,
    /// Waiting for their run time (scheduled, retrying or snoozed).
    pub delayed: u64,
    pub dead: u64,
}

/// One queue in Redis.
#[derive(Clone)]
pub struct QueueStore {
    pub name: String,
    pub keys: QueueKeys,
    conn: ConnectionManager,
    idempotency_ttl: Duration,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl QueueStore {
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        name: &str,
        idempotency_ttl: Duration,
    ) -> Self {
        QueueStore {
            name: name.to_string(),
            keys: QueueKeys::new(prefix, name),
            conn,
            idempotency_ttl,
        }
    }

    /// Creates the consumer group (and the stream) if missing; reading from the start, so jobs
    /// enqueued before any worker existed are delivered.
    pub async fn ensure_group(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<()> = conn
            .xgroup_create_mkstream(&self.keys.stream, GROUP, "0")
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Enqueues jobs in chunks of one script call each, deduplicating by idempotency key.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> redis::RedisResult<Vec<Enqueued>> {
        let mut out = Vec::with_capacity(jobs.len());
        let now = now_ms();
        for chunk in jobs.chunks(ENQUEUE_CHUNK) {
            let mut inv = ENQUEUE.prepare_invoke();
            inv.key(&self.keys.stream)
                .key(&self.keys.delayed)
                .key(&self.keys.delayed_data);
            inv.arg(now)
                .arg(self.idempotency_ttl.as_millis() as u64)
                .arg(chunk.len());
            let mut slot = 4;
            for job in chunk {
                let this_slot = match &job.idempotency_key {
                    Some(k) => {
                        inv.key(self.keys.idempotency(k));
                        slot += 1;
                        slot - 1
                    }
                    None => 0,
                };
                inv.arg(&job.id)
                    .arg(&job.args)
                    .arg(job.max_attempts)
                    .arg(this_slot)
                    .arg(job.run_at_ms.unwrap_or(0))
                    .arg(now);
            }
            let reply: Vec<(i64, String)> = inv.invoke_async(&mut self.conn.clone()).await?;
            out.extend(reply.into_iter().map(|(fresh, id)| Enqueued {
                id,
                fresh: fresh == 1,
            }));
        }
        Ok(out)
    }

    /// Moves up to `limit` due delayed jobs into the stream. Returns how many moved and when the
    /// next delayed job is due (ms since the epoch).
    pub async fn promote(&self, limit: usize) -> redis::RedisResult<(u64, Option<u64>)> {
        let (moved, next): (u64, i64) = PROMOTE
            .key(&self.keys.delayed)
            .key(&self.keys.delayed_data)
            .key(&self.keys.stream)
            .arg(now_ms())
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((moved, u64::try_from(next).ok()))
    }

    /// Reads up to `count` new entries for `consumer`, waiting up to `block` for the first one,
    /// on `conn` (a connection of the caller's own: a blocked read holds its connection).
    /// With `pending_after`, reads instead the entries already delivered to this consumer name
    /// and not settled, after that entry id ("0" for all): a restart under the same name takes
    /// them up at once.
    pub async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
        pending_after: Option<&str>,
    ) -> redis::RedisResult<Vec<Delivery>> {
        let mut opts = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count);
        if let Some(b) = block {
            opts = opts.block(b.as_millis() as usize);
        }
        let id = pending_after.unwrap_or(">");
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.keys.stream], &[id], &opts)
            .await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                match JobRecord::from_fields(&entry.map) {
                    Some(job) => out.push(Delivery {
                        entry: entry.id,
                        job,
                        deliveries: 1,
                    }),
                    // An entry deleted while pending reads back empty: nothing left to run.
                    None => self
                        .settle(consumer, &[(entry.id, Settle::Done)])
                        .await
                        .map(|_| ())?,
                }
            }
        }
        Ok(out)
    }

    /// Takes over up to `count` entries not renewed for `lease` (their consumer died).
    pub async fn reclaim(
        &self,
        consumer: &str,
        lease: Duration,
        count: usize,
    ) -> redis::RedisResult<Vec<Delivery>> {
        let flat: Vec<Value> = RECLAIM
            .key(&self.keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(lease.as_millis() as u64)
            .arg(count)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut out = Vec::new();
        let mut items = flat
            .into_iter()
            .map(|v| redis::from_redis_value::<String>(v).unwrap_or_default());
        while let Some(entry) = items.next() {
            let deliveries: u64 = items.next().and_then(|s| s.parse().ok()).unwrap_or(1);
            let mut fields = HashMap::new();
            loop {
                match items.next() {
                    Some(k) if !k.is_empty() => {
                        let v = items.next().unwrap_or_default();
                        fields.insert(k, Value::BulkString(v.into_bytes()));
                    }
                    _ => break,
                }
            }
            match JobRecord::from_fields(&fields) {
                Some(job) => out.push(Delivery {
                    entry,
                    job,
                    deliveries,
                }),
                None => {
                    self.settle(consumer, &[(entry, Settle::Done)]).await?;
                }
            }
        }
        Ok(out)
    }

    /// Settles finished entries of `consumer` in one script call. Returns, per entry, whether it
    /// was settled (false: the lease was lost to another consumer, which will run it again).
    pub async fn settle(
        &self,
        consumer: &str,
        items: &[(String, Settle)],
    ) -> redis::RedisResult<Vec<bool>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = SETTLE.prepare_invoke();
        inv.key(&self.keys.stream)
            .key(&self.keys.delayed)
            .key(&self.keys.delayed_data)
            .key(&self.keys.dead);
        inv.arg(GROUP).arg(consumer).arg(items.len());
        let mut slot = 4;
        for (entry, settle) in items {
            let (action, job, at) = match settle {
                Settle::Done => ("done", String::new(), 0),
                Settle::Later { at_ms, job } => ("later", to_json(job, None), *at_ms),
                Settle::Dead { job, error, at_ms } => ("dead", to_json(job, Some(error)), *at_ms),
            };
            // A dead job's idempotency key is released (if it still names the job).
            let idem_slot = match settle {
                Settle::Dead { job, .. } if !job.idem.is_empty() => {
                    inv.key(&job.idem);
                    slot += 1;
                    slot
                }
                _ => 0,
            };
            inv.arg(entry).arg(action).arg(job).arg(at).arg(idem_slot);
        }
        let reply: Vec<i64> = inv.invoke_async(&mut self.conn.clone()).await?;
        Ok(reply.into_iter().map(|r| r == 1).collect())
    }

    /// Renews the lease of entries `consumer` is still running.
    pub async fn extend(&self, consumer: &str, entries: &[String]) -> redis::RedisResult<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        EXTEND
            .key(&self.keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(entries)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Hands entries fetched but never started back to the stream (graceful shutdown).
    pub async fn give_back(&self, consumer: &str, entries: &[String]) -> redis::RedisResult<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        GIVE_BACK
            .key(&self.keys.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(entries)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Dead letters, oldest first, from `after` (exclusive; `None` = the start).
    pub async fn dead_letters(
        &self,
        after: Option<&str>,
        count: usize,
    ) -> redis::RedisResult<Vec<DeadLetter>> {
        let start = after.map(|a| format!("({a}")).unwrap_or_else(|| "-".into());
        let reply: redis::streams::StreamRangeReply = self
            .conn
            .clone()
            .xrange_count(&self.keys.dead, start, "+", count)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|e| dead_letter(e.id, &e.map))
            .collect())
    }

    /// The latest `count` dead letters, newest first (for the status page).
    pub async fn recent_dead_letters(&self, count: usize) -> redis::RedisResult<Vec<DeadLetter>> {
        let reply: redis::streams::StreamRangeReply = self
            .conn
            .clone()
            .xrevrange_count(&self.keys.dead, "+", "-", count)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|e| dead_letter(e.id, &e.map))
            .collect())
    }

    /// One dead letter by its entry id.
    pub async fn dead_letter(&self, entry: &str) -> redis::RedisResult<Option<DeadLetter>> {
        let reply: redis::streams::StreamRangeReply = self
            .conn
            .clone()
            .xrange(&self.keys.dead, entry, entry)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .find_map(|e| dead_letter(e.id, &e.map)))
    }

    /// Sends a dead letter back to the queue with a fresh attempt count, holding its idempotency
    /// key again unless another job took it meanwhile; its job id, if it existed.
    pub async fn redrive(&self, entry: &str) -> redis::RedisResult<Option<String>> {
        let Some(letter) = self.dead_letter(entry).await? else {
            return Ok(None);
        };
        // The script checks the key against the letter it reads, so any key of this queue will
        // do for a letter without one.
        let idem = match letter.job.idem.as_str() {
            "" => &self.keys.dead,
            key => key,
        };
        REDRIVE
            .key(&self.keys.dead)
            .key(&self.keys.stream)
            .key(idem)
            .arg(entry)
            .arg(self.idempotency_ttl.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Removes consumers idle for longer than `idle` that hold no entries.
    pub async fn prune_consumers(&self, idle: Duration) -> redis::RedisResult<u64> {
        let info: redis::streams::StreamInfoConsumersReply = self
            .conn
            .clone()
            .xinfo_consumers(&self.keys.stream, GROUP)
            .await?;
        let stale: Vec<String> = info
            .consumers
            .into_iter()
            .filter(|c| c.pending == 0 && c.idle as u128 > idle.as_millis())
            .map(|c| c.name)
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        PRUNE
            .key(&self.keys.stream)
            .arg(GROUP)
            .arg(stale)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    pub async fn stats(&self) -> redis::RedisResult<QueueStats> {
        let mut conn = self.conn.clone();
        let (len, delayed, dead): (u64, u64, u64) = redis::pipe()
            .xlen(&self.keys.stream)
            .zcard(&self.keys.delayed)
            .xlen(&self.keys.dead)
            .query_async(&mut conn)
            .await?;
        let pending: redis::RedisResult<redis::streams::StreamPendingReply> =
            conn.xpending(&self.keys.stream, GROUP).await;
        let in_flight = match pending {
            Ok(p) => p.count() as u64,
            Err(e) if e.code() == Some("NOGROUP") => 0,
            Err(e) => return Err(e),
        };
        Ok(QueueStats {
            ready: len.saturating_sub(in_flight),
            in_flight,
            delayed,
            dead,
        })
    }
}

fn to_json(job: &JobRecord, error: Option<&str>) -> String {
    let mut v = serde_json::to_value(job).expect("job records serialise");
    if let Some(e) = error {
        v["error"] = serde_json::Value::String(e.to_string());
    }
    v.to_string()
}

fn dead_letter(entry: String, fields: &HashMap<String, Value>) -> Option<DeadLetter> {
    let get = |k: &str| {
        fields
            .get(k)
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
    };
    Some(DeadLetter {
        job: JobRecord::from_fields(fields)?,
        error: get("error").unwrap_or_default(),
        failed_at_ms: get("failed_at").and_then(|s| s.parse().ok()).unwrap_or(0),
        entry,
    })
}
