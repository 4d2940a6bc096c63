//! The gate: a message waits for its turn (snoozes), it never fails for it.

use std::time::Duration;

use super::Sending;
use crate::domain::QuietHours;
use crate::messages::Message;
use crate::messages::store::SendingRules;
use crate::metrics;
use crate::pacing::{JoinQuota, LEASE_MARGIN, Turn};
use crate::queue::{JobError, JobResultExt};
use crate::ratelimit::Quota;

/// How soon a send held back by a credentials pause tries again.
pub(super) const PAUSED_RETRY: Duration = Duration::from_secs(10);

/// Not while the provider refuses our credentials (`providers::pause`); then quiet hours in
/// the company's time zone (unless the message opted out, like a one-time code), then the
/// company's hourly quota, then its fair turn at the sender (`pacing`), all fleet-wide. Returns
/// the message's slot: the run claims the message, then waits for the slot and sends.
pub(super) async fn wait_for_its_turn(
    s: &Sending<'_>,
    message: &Message,
    rules: &SendingRules,
) -> Result<Slot, JobError> {
    while_credentials_refused(s).await?;
    if message.respect_quiet_hours {
        let tz = rules.timezone.tz();
        let now = (s.clock)();
        let quiet = QuietHours {
            tz,
            start: rules.quiet_hours_start,
            end: rules.quiet_hours_end,
        };
        if let Some(until) = quiet.hold_until(now) {
            return Err(JobError::Snooze((until - now).to_std().unwrap_or_default()));
        }
    }
    let sender = s.gateway.rate_key();
    let segments = message.segments.max(1) as u32;
    // Only a send without a ticket takes from the quota, as it joins: a run that comes back for
    // its slot (or a retry whose slot went by within the last minute) was counted then.
    let quota_key = s.limiter.budget_key(&super::quota::key(message.company_id));
    let quota = JoinQuota {
        key: &quota_key,
        quota: Quota::per_hour(rules.sms_per_hour as u32),
    };
    // Each answer is read against the moment its question left: a slow reply makes the slot
    // nearer, never later than the schedule meant.
    let sender = sender.as_str();
    let ask = || async move {
        let asked = tokio::time::Instant::now();
        let turn = s
            .pacer
            .ask(
                sender,
                s.pace,
                message.company_id,
                message.id,
                segments,
                quota,
            )
            .await
            .retry()?;
        Ok::<_, JobError>((asked, turn))
    };
    let (mut asked, mut turn) = ask().await?;
    // A turn within a horizon is waited for here, not through the queue: a trip through a busy
    // queue can take longer than the slot's grace, and a run that keeps missing its slot would
    // waste one each time.
    let near = Duration::from_millis(s.pace.horizon_ms);
    for _ in 0..NEAR_ASKS {
        let Turn::Later(after) = turn else { break };
        if after > near {
            break;
        }
        tokio::time::sleep(after).await;
        (asked, turn) = ask().await?;
    }
    match turn {
        Turn::Go(ms) => Ok(Slot {
            at: if ms >= 0 {
                asked + Duration::from_millis(ms as u64)
            } else {
                asked
                    .checked_sub(Duration::from_millis(ms.unsigned_abs()))
                    .unwrap_or(asked)
            },
        }),
        Turn::Later(after) | Turn::OverQuota(after) => Err(JobError::Snooze(after)),
    }
}

/// How many times a run asks again for a turn within a horizon before it snoozes instead.
const NEAR_ASKS: usize = 8;

/// A send's slot at its sender: the request leaves at [`Slot::at`], not before, and not more
/// than the pace's `late_ms` after.
pub(super) struct Slot {
    at: tokio::time::Instant,
}

impl Slot {
    /// Waits for the slot (at most the pace's horizon: farther slots were snoozed for).
    pub(super) async fn reached(&self) {
        tokio::time::sleep_until(self.at).await;
    }

    /// The last moment a request may leave in this slot.
    fn deadline(&self, s: &Sending<'_>) -> tokio::time::Instant {
        self.at + Duration::from_millis(s.pace.late_ms)
    }
}

/// Once the slot is reached, a lease on one of the account's requests in flight. `None` when
/// the slot went by first (the claim took longer, no lease came free, or the lease's own round
/// trip was slow): nothing is sent, the message goes back to the queue as after a 429, and its
/// run takes the head of the sender's schedule, so the request never leaves late enough to put
/// the cap + 1th request in a second.
pub(super) async fn lease(
    s: &Sending<'_>,
    message: &Message,
    slot: &Slot,
) -> Result<Option<Lease>, JobError> {
    let lease = in_time(s, message, slot.deadline(s)).await?;
    if lease.is_none() {
        metrics::send_interruption("slot_missed");
    }
    Ok(lease)
}

/// The lease, if it can be held before `deadline`.
async fn in_time(
    s: &Sending<'_>,
    message: &Message,
    deadline: tokio::time::Instant,
) -> Result<Option<Lease>, JobError> {
    let late = || tokio::time::Instant::now() > deadline;
    if late() {
        return Ok(None);
    }
    let Some(account) = s.gateway.account().filter(|_| s.gateway.leases_requests()) else {
        return Ok(Some(Lease::none()));
    };
    let lease = Lease {
        account: Some(account.to_string()),
        id: message.id.to_string(),
    };
    let hold = s.gateway.longest_send() + LEASE_MARGIN;
    let taken = s
        .pacer
        .wait_for_lease(account, &lease.id, s.max_in_flight, hold, deadline)
        .await
        .retry()?;
    if !taken {
        return Ok(None);
    }
    if late() {
        lease.release(s).await;
        return Ok(None);
    }
    Ok(Some(lease))
}

/// A request's place among the account's requests in flight; given back with
/// [`Lease::release`] once the answer came (or after its hold, if the worker died).
pub(super) struct Lease {
    account: Option<String>,
    id: String,
}

impl Lease {
    fn none() -> Self {
        Lease {
            account: None,
            id: String::new(),
        }
    }

    pub(super) async fn release(self, s: &Sending<'_>) {
        if let Some(account) = self.account {
            s.pacer.give_back_lease(&account, &self.id).await;
        }
    }
}

/// Snoozes while sending through this account is paused for these very credentials. One run of
/// the fleet per `pause::PROBE_EVERY` checks them with the provider, and lifts the pause when
/// they work again.
async fn while_credentials_refused(s: &Sending<'_>) -> Result<(), JobError> {
    let (Some(account), Some(credentials)) = (s.gateway.account(), s.gateway.credentials()) else {
        return Ok(());
    };
    if s.pauses
        .holding(account, credentials)
        .await
        .retry()?
        .is_none()
    {
        return Ok(());
    }
    if s.pauses.take_probe(account).await.retry()? {
        match s.gateway.check_credentials().await {
            Ok(()) => {
                s.pauses.lift(account, credentials).await.retry()?;
                tracing::warn!(%account, "the provider accepts our credentials again: sending resumes");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "the provider still refuses our credentials")
            }
        }
    }
    Err(JobError::Snooze(PAUSED_RETRY))
}
