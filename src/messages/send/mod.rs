//! Sending one message (DESIGN.md section 5): the flow the `SendSms` job runs, step by step.
//!
//! previous attempt? (asked of the account it went through) -> route (the first open one of the
//! message's rule) -> gate (quiet hours, the company's quota, its fair slot at the sender) -> claim
//! (opted out? reserve + `sending`) -> the slot -> a lease in flight -> the provider -> settle (charge + `sent`, or release + `failed`, or back to `queued` for a retry,
//! or stay `sending` when the answer never came).
//!
//! Running it twice never sends twice and never charges twice: the message row says how far it
//! got, every claim is a compare-and-set on the message's latest attempt, every outcome is
//! written only while the run's attempt is still the latest, and a send whose answer never came
//! is looked up at the provider before anything is sent again.

mod claim;
mod gate;
mod previous;
mod quota;
mod route;
mod settle;
mod steps;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub use quota::{QuotaError, QuotaRestart, key as quota_key, quota_changed};
pub use steps::SendSteps;

use super::store::{self, ForSending};
use crate::domain::MessageId;
use crate::faults;
use crate::pacing::{Pace, Pacer};
use crate::providers::SmsGateway;
use crate::providers::answer::SendError;
use crate::providers::pause::AuthPauses;
use crate::queue::JobError;
use crate::ratelimit::RateLimiter;
use crate::routing::{Circuits, RoutePaces, SmsRoutes, Tables};

/// What sending a message needs.
#[derive(Clone, Copy)]
pub struct Sending<'a> {
    pub pool: &'a PgPool,
    /// Every route's account in force (one snapshot for the run).
    pub routes: &'a SmsRoutes,
    /// The operator's routing table.
    pub tables: &'a Tables,
    /// Every route's circuit, fleet-wide.
    pub circuits: &'a Circuits,
    /// The account of this attempt's route: at first the Twilio route's, then the one the
    /// previous attempt went through, then the one chosen for this attempt.
    pub gateway: &'a SmsGateway,
    /// Whether the message's rule offers another route should this one be down.
    pub failover: bool,
    /// Fleet-wide pauses of accounts whose credentials the provider refused.
    pub pauses: &'a AuthPauses,
    /// How long an unanswered send that the provider's list does not show waits before it is
    /// sent again (`TwilioTiming::resend_unanswered_after`).
    pub resend_unanswered_after: Duration,
    /// Companies' hourly quotas, fleet-wide.
    pub limiter: &'a RateLimiter,
    /// Fair, paced turns at the provider's sender and its account's requests in flight.
    pub pacer: &'a Pacer,
    /// Each route's slots at its sender (from its per-second cap).
    pub paces: &'a RoutePaces,
    /// This attempt's route's (at first the Twilio route's).
    pub pace: Pace,
    /// Requests in flight to the provider account at most, fleet-wide.
    pub max_in_flight: u32,
    /// How long a reservation may stay open before the reconciler looks at it.
    pub hold_ttl: Duration,
    /// The time quiet hours are judged by.
    pub clock: &'a (dyn Fn() -> DateTime<Utc> + Send + Sync),
    /// The first read, the claim and the charge, each grouped across concurrent sends.
    pub steps: &'a SendSteps,
}

/// Runs attempt `attempt` (1-based, as the queue counts) of sending message `id`. `Ok` when the
/// message needs nothing more from this job; otherwise what the queue should do with it.
pub async fn send(s: &Sending<'_>, id: MessageId, attempt: u32) -> Result<(), JobError> {
    let ForSending {
        message,
        rules,
        attempt_age,
    } = s
        .steps
        .read
        .run(id)
        .await
        .map_err(JobError::retry)?
        .map_err(JobError::retry)?
        .ok_or_else(|| JobError::fail(format!("no message {id}")))?;
    // What became of an earlier attempt only the account it went through can say.
    let recorded = Sending {
        gateway: s.routes.for_attempt(message.provider_account.as_deref()),
        ..*s
    };
    if previous::settled(&recorded, &message, &rules, attempt_age).await? {
        return Ok(());
    }
    let route = route::choose(s, &message).await?;
    let s = &Sending {
        gateway: route.gateway,
        failover: route.watched,
        pace: s.paces.get(route.gateway.route()),
        ..*s
    };
    let slot = gate::wait_for_its_turn(s, &message, &rules).await?;
    let Some(run) = claim::claim(s, &message, &rules).await? else {
        return Ok(());
    };
    faults::point!(faults::SEND_AFTER_CLAIM);
    // A Redis error here is not an answer from the provider: the request never left, so the
    // message goes back to `queued` (settle), not on to the lookup of an unanswered send.
    let lease = lease_in_a_slot(s, &message, &rules, slot).await;
    let outcome = match lease {
        Err(e) => Err(SendError::NotSent(format!("no lease in flight: {e}"))),
        Ok(Some(lease))
            if !s.gateway.can_be_asked() && !leaving(s, &message, run.attempt).await =>
        {
            lease.release(s).await;
            Err(SendError::NotSent(
                "the attempt was taken over before its request left".into(),
            ))
        }
        Ok(Some(lease)) => {
            let outcome = (s.gateway)
                .send(message.id, &message.to, &message.body, s.pacer)
                .await;
            lease.release(s).await;
            let label = outcome.as_ref().map_or_else(SendError::label, |_| "sent");
            crate::metrics::route_send(s.gateway.name(), label);
            if route.watched {
                route::report(s, &outcome).await;
            }
            outcome
        }
        // Nothing was sent: as after Twilio's 429, back to the queue, to come again at once for
        // the head of the schedule.
        Ok(None) => Err(SendError::RateLimited {
            retry_after: Some(Duration::ZERO),
        }),
    };
    faults::point!(faults::SEND_AFTER_PROVIDER_ANSWER);
    settle::settle(s, run, outcome, attempt).await
}

/// Records that `attempt`'s request is leaving (for a route that cannot be asked about a send);
/// `false` when another run has taken the message over, or the record could not be written:
/// either way nothing may be sent.
async fn leaving(s: &Sending<'_>, message: &store::Message, attempt: uuid::Uuid) -> bool {
    store::mark_request_leaving(s.pool, message.id, attempt)
        .await
        .inspect_err(|e| tracing::warn!(message = %message.id, error = %e, "departure not recorded; not sent"))
        .unwrap_or(false)
}

/// Waits for `slot` and takes a lease in it. A claimed run that misses its slot asks for the
/// next one while its claim is young (its request must start within one `longest_send` of the
/// claim, see `claim`), instead of the trip back through the queue: that trip costs a requeue
/// and a new claim, two writes per miss, and under load those writes made the next slot late
/// too, until most runs only missed slots (measured: a 10,000-message batch falling from about
/// 40 to 2-8 messages a second). `None` when no slot could be had in time: back to the queue.
async fn lease_in_a_slot(
    s: &Sending<'_>,
    message: &store::Message,
    rules: &store::SendingRules,
    mut slot: gate::Slot,
) -> Result<Option<gate::Lease>, JobError> {
    let claimed = std::time::Instant::now();
    loop {
        slot.reached().await;
        match gate::lease(s, message, &slot).await {
            Ok(None) if claimed.elapsed() < s.gateway.longest_send() / 4 => {
                match gate::wait_for_its_turn(s, message, rules).await {
                    Ok(next) => slot = next,
                    Err(_) => return Ok(None),
                }
            }
            other => return other,
        }
    }
}
