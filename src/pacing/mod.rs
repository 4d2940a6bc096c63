//! Turns at a provider's sender, shared fairly between companies and paced exactly; and a cap
//! on requests in flight to a provider account. Both are held in Redis, so the whole fleet of
//! workers shares one schedule and one cap.
//!
//! **Fair share.** Every send that its company's quota allows takes a ticket at the sender
//! (`fair.lua`: start-time fair queueing; the quota is taken by the same script, so joining
//! costs one round trip). Tickets are handed paced slots in the order of their
//! start tags, so while company A's 1,000-message batch waits, company B's single message is
//! handed one of the next slots instead of the slot after A's last. Slots are handed only a
//! short horizon ahead, and a run waits for a near slot in the worker (an exact sleep) but for a
//! far one in the queue (a snooze), so no worker is held for long.
//!
//! **Exact pacing.** Slots are one interval apart (burst 1), at [`Pace::SHARE_OF_CAP`] of the
//! sender's cap, so that the jitter between a slot and the request reaching the provider cannot
//! put more than the cap in any one-second window.
//!
//! **In flight.** Twilio's 20429 is about concurrent requests to one account: a send holds a
//! lease (`in_flight.lua`) from just before its request until its answer. A bulk route's
//! grouped request holds one the same way, so its cap is the fleet's too, not each worker's.
//!
//! Time is Redis's (`TIME`), not the workers' clocks; tests pass their own.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::domain::{CompanyId, MessageId};
use crate::ratelimit::Quota;

static FAIR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../queue/lua/gcra_take.lua"),
        include_str!("fair.lua")
    ))
});
/// How much longer than its longest request a lease is held (a worker that died mid-request
/// frees it after this).
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How often a request waiting for a lease looks again.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(5);

static IN_FLIGHT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("in_flight.lua")));

/// How one sender's slots are spaced and handed out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Between two slots (one segment each).
    pub interval_ms: f64,
    /// How far ahead of now slots are handed to tickets.
    pub horizon_ms: u64,
    /// How late after its slot a request may leave (a run that comes back later, or whose claim
    /// or lease took longer, gives the slot up and takes the head of the schedule instead).
    pub late_ms: u64,
}

impl Pace {
    /// The share of the provider's cap the slots use: 3% below it leaves 30 ms at 20/s for a
    /// request to reach the provider later than its slot without a 21st in any second.
    pub const SHARE_OF_CAP: f64 = 0.97;

    /// Slots for a sender allowed `per_second` segments a second. The horizon is three slots but
    /// at least 100 ms (at high caps a horizon counted in slots would be shorter than a trip
    /// through the queue). A request may leave up to 24 ms after its slot: at any cap, the
    /// (cap + 1)th slot after one comes 1000 / 0.97 = 1031 ms after it, so a request later than
    /// its slot by less than 31 ms cannot make cap + 1 in any second.
    pub fn per_second(per_second: u32) -> Self {
        let interval_ms = 1000.0 / (f64::from(per_second.max(1)) * Self::SHARE_OF_CAP);
        Pace {
            interval_ms,
            horizon_ms: ((3.0 * interval_ms).ceil() as u64).max(100),
            late_ms: ((1000.0 / Self::SHARE_OF_CAP - 1000.0) * 0.8) as u64,
        }
    }
}

/// What a send may do now at its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Its slot starts this many ms from when the schedule was asked (negative: it started that
    /// long ago, by less than the pace's `late_ms`).
    Go(i64),
    /// Not yet: ask again after this long.
    Later(Duration),
    /// It holds no ticket, and its company's quota allows no send for this long: it took
    /// nothing, and asks again then.
    OverQuota(Duration),
}

/// The budget a send without a ticket takes one from as it joins the schedule: its company's
/// hourly quota, `ratelimit`'s budget under Redis key `key`.
#[derive(Debug, Clone, Copy)]
pub struct JoinQuota<'a> {
    pub key: &'a str,
    pub quota: Quota,
}

/// The fleet-wide schedule of every sender and the in-flight leases of every account.
#[derive(Clone)]
pub struct Pacer {
    conn: ConnectionManager,
    prefix: String,
}

/// The companies waiting at a sender, and how many segments each still has to be handed slots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waiting {
    pub segments: std::collections::HashMap<String, f64>,
}

/// How long the schedule of an idle sender is kept.
const SCHEDULE_TTL: Duration = Duration::from_secs(3600);

impl Pacer {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Pacer {
            conn,
            prefix: prefix.to_string(),
        }
    }

    /// Message `message` of `company`, `cost` segments, asks for its turn at `sender`; without a
    /// ticket it takes one from `quota` and joins, in the same step (one round trip). Running it
    /// again for the same message is harmless: it keeps its ticket, or its slot, and takes
    /// nothing more from the quota.
    pub async fn ask(
        &self,
        sender: &str,
        pace: Pace,
        company: CompanyId,
        message: MessageId,
        cost: u32,
        quota: JoinQuota<'_>,
    ) -> redis::RedisResult<Turn> {
        self.ask_at(sender, pace, company, message, cost, quota, None)
            .await
    }

    /// [`Pacer::ask`] at time `now_ms` instead of Redis's clock (tests).
    #[allow(clippy::too_many_arguments)]
    pub async fn ask_at(
        &self,
        sender: &str,
        pace: Pace,
        company: CompanyId,
        message: MessageId,
        cost: u32,
        quota: JoinQuota<'_>,
        now_ms: Option<u64>,
    ) -> redis::RedisResult<Turn> {
        let base = format!("{}:pace:{sender}", self.prefix);
        let cost = cost.max(1);
        let (kind, ms): (i64, i64) = FAIR
            .key(&base)
            .key(format!("{base}:waiting"))
            .key(format!("{base}:slots"))
            .key(quota.key)
            .arg(format!("{message}:{cost}"))
            .arg(company.to_string())
            .arg(cost)
            .arg(pace.interval_ms)
            .arg(pace.horizon_ms)
            .arg(pace.late_ms)
            .arg(quota.quota.interval_ms())
            .arg(now_ms.map(|n| n.to_string()).unwrap_or_default())
            .arg(SCHEDULE_TTL.as_millis() as u64)
            .arg(quota.quota.burst)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match kind {
            1 => Turn::Go(ms),
            3 => Turn::OverQuota(Duration::from_millis(ms.max(1) as u64)),
            _ => Turn::Later(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    /// Who waits at `sender` now: nobody when its next free slot has come (it is idle);
    /// otherwise each company's segments still to be handed slots, from its finish tag over the
    /// schedule's virtual time (give or take the message just handed one).
    pub async fn waiting(&self, sender: &str) -> redis::RedisResult<Waiting> {
        let (state, (secs, micros)): (std::collections::HashMap<String, f64>, (u64, u64)) =
            redis::pipe()
                .hgetall(format!("{}:pace:{sender}", self.prefix))
                .cmd("TIME")
                .query_async(&mut self.conn.clone())
                .await?;
        let now = (secs * 1000 + micros / 1000) as f64;
        if state.get("next").is_none_or(|next| *next <= now) {
            return Ok(Waiting::default());
        }
        let v = state.get("v").copied().unwrap_or(0.0);
        Ok(Waiting {
            segments: state
                .into_iter()
                .filter_map(|(field, finish)| {
                    let company = field.strip_prefix("f:")?;
                    (finish > v).then(|| (company.to_string(), finish - v))
                })
                .collect(),
        })
    }

    /// Takes (or renews) lease `lease` on `account`'s requests in flight, held for at most
    /// `hold`; `Err(wait)` when `cap` leases are held, with how long until the earliest expires.
    pub async fn take_lease(
        &self,
        account: &str,
        lease: &str,
        cap: u32,
        hold: Duration,
    ) -> redis::RedisResult<Result<(), Duration>> {
        self.take_lease_at(account, lease, cap, hold, None).await
    }

    /// [`Pacer::take_lease`] at time `now_ms` instead of Redis's clock (tests).
    pub async fn take_lease_at(
        &self,
        account: &str,
        lease: &str,
        cap: u32,
        hold: Duration,
        now_ms: Option<u64>,
    ) -> redis::RedisResult<Result<(), Duration>> {
        let (taken, ms): (i64, i64) = IN_FLIGHT
            .key(self.leases_key(account))
            .arg(lease)
            .arg(cap.max(1))
            .arg(hold.as_millis().max(1) as u64)
            .arg(now_ms.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(if taken == 1 {
            Ok(())
        } else {
            Err(Duration::from_millis(ms.max(1) as u64))
        })
    }

    /// Takes lease `lease` on `account`'s requests in flight as soon as one of `cap` is free
    /// (looking again every [`IN_FLIGHT_POLL`] at most); `false` when none comes free before
    /// `deadline`.
    pub async fn wait_for_lease(
        &self,
        account: &str,
        lease: &str,
        cap: u32,
        hold: Duration,
        deadline: tokio::time::Instant,
    ) -> redis::RedisResult<bool> {
        loop {
            let Err(wait) = self.take_lease(account, lease, cap, hold).await? else {
                return Ok(true);
            };
            let retry_at = tokio::time::Instant::now() + wait.min(IN_FLIGHT_POLL);
            if retry_at > deadline {
                return Ok(false);
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }

    /// Gives lease `lease` back (its request has its answer); a failure is logged, and the
    /// lease lapses on its own after its hold.
    pub async fn give_back_lease(&self, account: &str, lease: &str) {
        if let Err(e) = self.release_lease(account, lease).await {
            tracing::warn!(%account, error = %e, "giving back an in-flight lease failed");
        }
    }

    /// Gives lease `lease` back (its request has its answer).
    pub async fn release_lease(&self, account: &str, lease: &str) -> redis::RedisResult<()> {
        redis::cmd("ZREM")
            .arg(self.leases_key(account))
            .arg(lease)
            .query_async(&mut self.conn.clone())
            .await
    }

    fn leases_key(&self, account: &str) -> String {
        format!("{}:in_flight:{account}", self.prefix)
    }
}
