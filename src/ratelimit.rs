//! Fleet-wide rate limits (a company's hourly quota, the API's per-company request rate), held
//! in Redis by a GCRA script so any number of processes share one budget. A limited job is
//! snoozed until the limit allows it, never failed. (The provider sender's cap is not a budget
//! but a fair schedule: `pacing`.)
//!
//! Local pre-filter: once Redis has said "not before T" for a key, this process answers "wait"
//! for that key until T without asking again (others can only have used more of the budget
//! since). This spares Redis the round trips of a flood from one company. governor was
//! considered for this role and not used: its state is per process, and a cell it grants
//! locally before the fleet-wide check refuses is consumed anyway, so it drifts stricter than
//! the real budget.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::ConnectionManager;

static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("queue/lua/gcra_take.lua"),
        include_str!("queue/lua/gcra.lua")
    ))
});

/// `count` events per `period`, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Quota {
    /// `n` per hour, all of them at once if they come at once (as governor's `per_hour`).
    pub fn per_hour(n: u32) -> Self {
        Quota {
            count: n.max(1),
            period: Duration::from_secs(3600),
            burst: n.max(1),
        }
    }

    pub fn per_second(n: u32) -> Self {
        Quota {
            count: n.max(1),
            period: Duration::from_secs(1),
            burst: n.max(1),
        }
    }

    /// The time one event takes from the budget (the GCRA's emission interval).
    pub fn interval_ms(&self) -> u64 {
        (self.period.as_millis() as u64)
            .div_ceil(u64::from(self.count))
            .max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Try again after this long.
    Wait(Duration),
}

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
    prefix: String,
    /// Refusals Redis gave, per key and quota: until when this process answers "wait".
    refused_until: Arc<Mutex<HashMap<(String, Quota), Instant>>>,
}

impl RateLimiter {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        RateLimiter {
            conn,
            prefix: prefix.to_string(),
            refused_until: Arc::default(),
        }
    }

    /// The Redis key of `key`'s budget, for a script that takes from it as one step of its own
    /// (the sender's schedule takes a company's quota as its send joins: `pacing`).
    pub fn budget_key(&self, key: &str) -> String {
        format!("{}:rl:{key}", self.prefix)
    }

    /// Forgets what `key` has used: its next check starts from a full budget. For a budget
    /// whose quota was just changed (the time it owes was counted at the old rate).
    pub async fn reset(&self, key: &str) -> redis::RedisResult<()> {
        let full_key = self.budget_key(key);
        self.refused_until
            .lock()
            .expect("lock")
            .retain(|k, _| k.0 != full_key);
        redis::cmd("DEL")
            .arg(&full_key)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// How many events `quota` would allow at once for `key` now, without taking any (an
    /// estimate's input: another process may take some the next moment).
    pub async fn free_now(&self, key: &str, quota: Quota) -> redis::RedisResult<u32> {
        let (tat, (secs, micros)): (Option<u64>, (u64, u64)) = redis::pipe()
            .get(self.budget_key(key))
            .cmd("TIME")
            .query_async(&mut self.conn.clone())
            .await?;
        let now = secs * 1000 + micros / 1000;
        let owed = tat.unwrap_or(now).saturating_sub(now);
        let free = u64::from(quota.burst).saturating_sub(owed.div_ceil(quota.interval_ms()));
        Ok(free as u32)
    }

    /// Takes `cost` from the budget of `key` if it fits now.
    pub async fn check(&self, key: &str, quota: Quota, cost: u32) -> redis::RedisResult<Decision> {
        let full_key = self.budget_key(key);
        // The pre-filter remembers a refusal under its quota: once the quota changes (the
        // operator raised a company's), the next check asks Redis.
        let filter_key = (full_key.clone(), quota);
        if let Some(until) = self
            .refused_until
            .lock()
            .expect("lock")
            .get(&filter_key)
            .copied()
        {
            let now = Instant::now();
            if until > now {
                return Ok(Decision::Wait(until - now));
            }
        }
        let (allowed, wait_ms): (i64, i64) = GCRA
            .key(&full_key)
            .arg(quota.interval_ms())
            .arg(quota.burst)
            .arg(cost.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut refused = self.refused_until.lock().expect("lock");
        if allowed == 1 {
            refused.remove(&filter_key);
            return Ok(Decision::Allowed);
        }
        let wait = Duration::from_millis(wait_ms.max(1) as u64);
        refused.insert(filter_key, Instant::now() + wait);
        if refused.len() > 10_000 {
            let now = Instant::now();
            refused.retain(|_, until| *until > now);
        }
        Ok(Decision::Wait(wait))
    }
}
