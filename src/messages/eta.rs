//! When a company's batch will have been sent: from its hourly quota, its quiet hours, its share
//! of the sender's cap (the companies with work waiting there share it equally) and the cap. An
//! estimate, not a promise: other companies join and leave the sender, and the operator may change
//! the quota.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::{CompanyId, E164, QuietHours};
use crate::pacing::{Pace, Pacer};
use crate::ratelimit::{Quota, RateLimiter};
use crate::routing::{RoutePaces, RoutingTable, SmsRoutes};

/// What an estimate starts from.
#[derive(Debug, Clone, Copy)]
pub struct Outlook {
    pub now: DateTime<Utc>,
    /// The company's messages still to send, up to and including the batch's last (its own
    /// messages go in the order they came), and the segments of those that go to this sender.
    pub messages: u64,
    pub segments: u64,
    /// Of those, the ones not yet counted against the quota (the others hold tickets at the
    /// sender, taken when their quota allowed them).
    pub needing_quota: u64,
    /// The company's hourly quota, and how many messages it would allow at once now.
    pub per_hour: u32,
    pub quota_free_now: u64,
    /// Slots the sender hands out a second, and the other companies waiting for them now.
    pub slots_per_second: f64,
    pub other_companies: u32,
    /// The company's quiet hours, when any of those messages keep them.
    pub quiet: Option<QuietHours>,
}

/// What bounds a batch's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The company's hourly quota.
    Quota,
    /// Its share of the sender's cap.
    Sender,
}

/// When a batch is expected to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    /// When its last message is expected to reach the provider.
    pub completes_at: DateTime<Utc>,
    /// Seconds of sending it needs, quiet hours aside.
    pub sending_seconds: f64,
    pub bounded_by: Bound,
    /// Whether quiet hours hold part of it back.
    pub held_by_quiet_hours: bool,
}

/// The estimate for `o`: the slower of the quota and the sender's share, laid over the hours
/// outside quiet hours.
pub fn estimate(o: &Outlook) -> Estimate {
    let over_quota = o.needing_quota.saturating_sub(o.quota_free_now) as f64;
    let by_quota = over_quota * 3600.0 / f64::from(o.per_hour.max(1));
    let share = o.slots_per_second / f64::from(o.other_companies + 1);
    let by_sender = o.segments as f64 / share.max(f64::MIN_POSITIVE);
    let (sending_seconds, bounded_by) = if by_quota > by_sender {
        (by_quota, Bound::Quota)
    } else {
        (by_sender, Bound::Sender)
    };
    let (completes_at, held_by_quiet_hours) = outside_quiet_hours(o.now, sending_seconds, o.quiet);
    Estimate {
        completes_at,
        sending_seconds,
        bounded_by,
        held_by_quiet_hours,
    }
}

/// When `seconds` of sending starting at `from` end, counting only time outside `quiet`; and
/// whether quiet hours held any of it.
fn outside_quiet_hours(
    from: DateTime<Utc>,
    seconds: f64,
    quiet: Option<QuietHours>,
) -> (DateTime<Utc>, bool) {
    let mut at = from;
    let mut left = chrono::Duration::milliseconds((seconds * 1000.0).ceil() as i64);
    let mut held = false;
    let Some(quiet) = quiet else {
        return (at + left, false);
    };
    // One round per night; a year of nights at most (a quota of 1 an hour and 10,000 messages
    // is 417 days: past a year the estimate says a year).
    for _ in 0..366 {
        if let Some(until) = quiet.hold_until(at) {
            at = until;
            held = true;
        }
        let Some(night) = quiet.next_start(at) else {
            return (at + left, held);
        };
        if at + left <= night {
            return (at + left, held);
        }
        left -= night - at;
        at = night;
    }
    (at + left, held)
}

/// Where a company's messages go: the routing table, the routes' accounts and their paces.
pub struct Senders<'a> {
    pub table: &'a RoutingTable,
    pub routes: &'a SmsRoutes,
    pub paces: RoutePaces,
}

impl Senders<'_> {
    /// The sender (its pacing key) and pace a new message of `company` to `to` goes to while
    /// every circuit is closed; `None` when no route of its rule has an account.
    fn of(&self, company: CompanyId, to: &E164) -> Option<(String, Pace)> {
        let (route, gateway) = self
            .routes
            .offered(self.table.routes_for(company, to))
            .next()?;
        Some((gateway.rate_key(), self.paces.get(route)))
    }
}

/// The company's queued messages up to the batch's last, grouped so that every number of a
/// group matches the same rules: by the longest destination of the company's own rules and of
/// everybody's that each number starts with (`$3`, `$4`; `*` given as the empty prefix). One
/// number of each group then tells the whole group's route.
const QUEUED_BY_RULE: &str = "
    SELECT min(m.to_number), count(*), COALESCE(sum(m.segments), 0)::bigint,
           COALESCE(bool_or(m.respect_quiet_hours), false)
      FROM messages m, message_batches b
     WHERE b.id = $2 AND b.company_id = $1 AND m.company_id = $1 AND m.status = 'queued'
       AND (m.batch_id = $2 OR m.created_at <= b.created_at)
     GROUP BY (SELECT d FROM unnest($3::text[]) d WHERE m.to_number LIKE '+' || d || '%'
                ORDER BY length(d) DESC LIMIT 1),
              (SELECT d FROM unnest($4::text[]) d WHERE m.to_number LIKE '+' || d || '%'
                ORDER BY length(d) DESC LIMIT 1)";

/// The estimate for batch `batch` of `company` now, from the database, the company's quota in
/// Redis and the schedules of the senders its messages go to (by the routing table); `None`
/// when nothing of it is left to send. Its messages to different routes go out side by side,
/// so the batch completes when its slowest sender is done, or its quota lets the last one go.
pub async fn for_batch(
    pool: &PgPool,
    limiter: &RateLimiter,
    pacer: &Pacer,
    senders: &Senders<'_>,
    company: CompanyId,
    batch: uuid::Uuid,
) -> Result<Option<Estimate>, EtaError> {
    let left_in_batch: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE batch_id = $1 AND status = 'queued')",
    )
    .bind(batch)
    .fetch_one(pool)
    .await?;
    if !left_in_batch {
        return Ok(None);
    }
    let prefixes = |own: bool| -> Vec<&str> {
        let rules = senders.table.rules.iter();
        rules
            .filter(|r| r.company_id.is_some() == own && r.company_id.is_none_or(|c| c == company))
            .map(|r| r.destination.trim_start_matches('*'))
            .collect()
    };
    let groups: Vec<(String, i64, i64, bool)> = sqlx::query_as(QUEUED_BY_RULE)
        .bind(company)
        .bind(batch)
        .bind(prefixes(true))
        .bind(prefixes(false))
        .fetch_all(pool)
        .await?;
    let (mut messages, mut segments, mut keeps_quiet_hours) = (0, 0, false);
    // Segments per sender, in the order first met.
    let mut by_sender: Vec<(String, Pace, i64)> = Vec::new();
    for (sample, count, group_segments, quiet) in groups {
        messages += count;
        segments += group_segments;
        keeps_quiet_hours |= quiet;
        let to = E164::try_from(sample).map_err(|e| EtaError::Company(e.to_string()))?;
        let Some((key, pace)) = senders.of(company, &to) else {
            continue; // no account for its rule: it waits, and the estimate says nothing of it
        };
        match by_sender.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, n)) => *n += group_segments,
            None => by_sender.push((key, pace, group_segments)),
        }
    }
    let rules: (i32, String, chrono::NaiveTime, chrono::NaiveTime) = sqlx::query_as(
        "SELECT sms_per_hour, timezone, quiet_hours_start, quiet_hours_end FROM companies WHERE id = $1",
    )
    .bind(company)
    .fetch_one(pool)
    .await?;
    let (per_hour, timezone, start, end) = rules;
    let quota = Quota::per_hour(per_hour as u32);
    let quota_free_now = limiter
        .free_now(&super::send::quota_key(company), quota)
        .await?;
    let me = company.to_string();
    let mut waiting = Vec::with_capacity(by_sender.len());
    for (key, pace, route_segments) in by_sender {
        waiting.push((pacer.waiting(&key).await?, pace, route_segments));
    }
    // What already holds a ticket took its quota when it joined: only the rest needs it.
    let in_schedule: f64 = waiting
        .iter()
        .map(|(w, _, _)| w.segments.get(&me).copied().unwrap_or(0.0))
        .sum();
    let holding_tickets = (in_schedule * messages as f64 / segments.max(1) as f64).round() as i64;
    let tz: crate::domain::TimeZone = timezone
        .parse()
        .map_err(|e: crate::domain::UnknownTimeZone| EtaError::Company(e.to_string()))?;
    let now = Utc::now();
    let quiet = keeps_quiet_hours.then_some(QuietHours {
        tz: tz.tz(),
        start,
        end,
    });
    Ok(waiting
        .into_iter()
        .map(|(w, pace, route_segments)| {
            estimate(&Outlook {
                now,
                messages: messages as u64,
                needing_quota: (messages - holding_tickets).max(0) as u64,
                segments: route_segments as u64,
                per_hour: per_hour as u32,
                quota_free_now: u64::from(quota_free_now),
                slots_per_second: 1000.0 / pace.interval_ms,
                other_companies: w.segments.keys().filter(|c| **c != me).count() as u32,
                quiet,
            })
        })
        .max_by_key(|e| e.completes_at))
}

#[derive(Debug, thiserror::Error)]
pub enum EtaError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("company: {0}")]
    Company(String),
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeZone as _};

    use super::*;

    fn dar(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        chrono_tz::Africa::Dar_es_Salaam
            .with_ymd_and_hms(2026, 12, day, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn nights() -> QuietHours {
        QuietHours {
            tz: chrono_tz::Africa::Dar_es_Salaam,
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        }
    }

    fn outlook() -> Outlook {
        Outlook {
            now: dar(7, 10, 0),
            messages: 1_000,
            segments: 1_000,
            needing_quota: 1_000,
            per_hour: 100_000,
            quota_free_now: 100_000,
            slots_per_second: 20.0,
            other_companies: 0,
            quiet: Some(nights()),
        }
    }

    #[test]
    fn alone_at_the_sender_a_batch_takes_its_segments_over_the_cap() {
        let e = estimate(&outlook());
        assert_eq!(e.bounded_by, Bound::Sender);
        assert_eq!(e.sending_seconds, 50.0);
        assert_eq!(
            e.completes_at,
            dar(7, 10, 0) + chrono::Duration::seconds(50)
        );
        assert!(!e.held_by_quiet_hours);
    }

    #[test]
    fn the_cap_is_shared_with_the_companies_waiting() {
        let e = estimate(&Outlook {
            other_companies: 3,
            ..outlook()
        });
        assert_eq!(e.sending_seconds, 200.0);
        let segments = estimate(&Outlook {
            segments: 2_000,
            ..outlook()
        });
        assert_eq!(segments.sending_seconds, 100.0);
    }

    #[test]
    fn the_hourly_quota_bounds_what_it_does_not_allow_at_once() {
        // The default 100 an hour, 40 of them free now: 960 more take 9.6 hours.
        let e = estimate(&Outlook {
            per_hour: 100,
            quota_free_now: 40,
            ..outlook()
        });
        assert_eq!(e.bounded_by, Bound::Quota);
        assert_eq!(e.sending_seconds, 960.0 * 36.0);
        // 10:00 + 9.6 h = 19:36, before the quiet hours.
        assert_eq!(e.completes_at, dar(7, 19, 36));
    }

    #[test]
    fn messages_holding_tickets_took_their_quota_already() {
        // 100 of the 150 joined the sender when the quota allowed them: the other 50 wait for it.
        let e = estimate(&Outlook {
            messages: 150,
            segments: 150,
            needing_quota: 50,
            per_hour: 100,
            quota_free_now: 0,
            ..outlook()
        });
        assert_eq!(e.bounded_by, Bound::Quota);
        assert_eq!(e.sending_seconds, 50.0 * 36.0);
    }

    #[test]
    fn quiet_hours_hold_the_rest_until_morning() {
        // 12 hours of sending from 10:00: 11 hours until 21:00, then the last hour from 08:00.
        let e = estimate(&Outlook {
            per_hour: 100,
            quota_free_now: 0,
            messages: 1_200,
            needing_quota: 1_200,
            ..outlook()
        });
        assert!(e.held_by_quiet_hours);
        assert_eq!(e.completes_at, dar(8, 9, 0));
        // Accepted during the night: nothing goes before 08:00.
        let night = estimate(&Outlook {
            now: dar(7, 23, 0),
            ..outlook()
        });
        assert_eq!(
            night.completes_at,
            dar(8, 8, 0) + chrono::Duration::seconds(50)
        );
        // Messages that do not keep quiet hours (one-time codes) go through the night.
        let codes = estimate(&Outlook {
            now: dar(7, 23, 0),
            quiet: None,
            ..outlook()
        });
        assert_eq!(
            codes.completes_at,
            dar(7, 23, 0) + chrono::Duration::seconds(50)
        );
    }
}
