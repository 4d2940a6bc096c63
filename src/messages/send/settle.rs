//! Settling an attempt by the provider's answer: charge + `sent`; release + `failed`; back to
//! `queued` for a retry (the hold stays); or stay `sending` when the answer never came.
//!
//! A run whose attempt another run has taken over (it stalled past the attempt's window)
//! writes nothing: the outcome is that run's to write (the attempt fence,
//! `store::requeue_attempt`, `store::lock_attempt`).

use std::time::Duration;

use copcca_jobs::{Job, SendSms};

use super::Sending;
use crate::db;
use crate::db::group_commit::GroupError;
use crate::domain::{CompanyId, Credits, E164, MessageId};
use crate::faults;
use crate::ledger::{self, FinishSend, Finished, Hold, LedgerError};
use crate::messages::{Message, opt_outs, store};
use crate::metrics;
use crate::providers::answer::{SendError, Sent};
use crate::queue::{JobError, JobResultExt};

/// A run's claimed attempt at sending a message: what writing its outcome needs.
pub(super) struct Run<'m> {
    pub(super) message: &'m Message,
    pub(super) hold: Hold,
    /// The attempt's id, recorded on the message with the claim: a retry or a failure is
    /// written only while it is still the message's latest (no other run took the send over).
    pub(super) attempt: uuid::Uuid,
}

/// How soon a message whose only route refused our account tries it again.
const MISCONFIGURED_RETRY: Duration = Duration::from_secs(60);

pub(super) async fn settle(
    s: &Sending<'_>,
    run: Run<'_>,
    outcome: Result<Sent, SendError>,
    attempt: u32,
) -> Result<(), JobError> {
    let message = run.message;
    let provider = s.gateway.name();
    match outcome {
        Ok(sent) => accepted(s, message, &run.hold, &sent).await,
        Err(SendError::Refused {
            code,
            text,
            opted_out,
            operator_alert,
        }) => {
            if opted_out {
                opt_out(s, message.company_id, &message.to, &code).await?;
            }
            if operator_alert {
                tracing::error!(alert = true, provider, %code, %text, "operator action needed: the provider refused our account or sender");
            }
            release_and_fail(s, &run, &code, &text).await.map(drop)
        }
        Err(SendError::CredentialsRefused(reason)) => {
            credentials_refused(s, &reason).await?;
            if !back_to_queued(s, &run).await? {
                return Ok(());
            }
            Err(JobError::Snooze(super::gate::PAUSED_RETRY))
        }
        // The route is down until an operator acts (its circuit is open): the next attempt
        // takes the next route of the message's rule at once, or, with none, comes back later.
        Err(SendError::Misconfigured(reason)) => {
            tracing::error!(alert = true, provider, %reason, "operator action needed: the provider refused our account or sender; its route is closed");
            if !back_to_queued(s, &run).await? {
                return Ok(());
            }
            Err(JobError::Snooze(if s.failover {
                Duration::from_secs(1)
            } else {
                MISCONFIGURED_RETRY
            }))
        }
        Err(SendError::RateLimited { retry_after }) => {
            if !back_to_queued(s, &run).await? {
                return Ok(());
            }
            Err(JobError::Snooze(
                retry_after.unwrap_or(Duration::from_secs(1)),
            ))
        }
        Err(e @ (SendError::Unavailable(_) | SendError::NotSent(_))) => {
            if attempt >= SendSms::MAX_ATTEMPTS {
                if !release_and_fail(s, &run, "provider_unavailable", &e.to_string()).await? {
                    return Ok(());
                }
                return Err(JobError::fail(format!(
                    "gave up after {attempt} attempts: {e}"
                )));
            }
            if !back_to_queued(s, &run).await? {
                return Ok(());
            }
            Err(JobError::retry(e))
        }
        // The provider may have the message: stay `sending`; the next run (or the reconciler)
        // asks the provider, or waits for its delivery report, before anything is resent.
        Err(e @ SendError::Ambiguous { .. }) => {
            tracing::warn!(message = %message.id, provider, error = %e, "no usable answer from the provider; will reconcile");
            Err(JobError::retry(e))
        }
    }
}

/// The provider took the message: charge it (by the provider's segment count, never more than
/// was reserved; any excess is recorded as uncharged) and mark it `sent`, together (in a batch
/// with other jobs' charges).
pub(super) async fn accepted(
    s: &Sending<'_>,
    message: &Message,
    hold: &Hold,
    sent: &Sent,
) -> Result<(), JobError> {
    let segments = sent
        .segments
        .filter(|n| *n > 0)
        .map_or(message.segments, |n| n as i32);
    let per_segment = (message.credits.get() / i64::from(message.segments.max(1))).max(1);
    let actual = i64::from(segments) * per_segment;
    let charge = actual.min(hold.credits.get());
    let finish = FinishSend {
        hold: hold.id,
        charge: Credits::new(charge).fail()?,
        provider: s.gateway.name().to_string(),
        provider_id: sent.provider_id.clone(),
        segments,
        uncharged: actual - charge,
        price: sent.price,
        price_currency: sent.price_currency.clone(),
    };
    let finished = charge_patiently(message.id, || s.steps.finish.run(finish.clone())).await?;
    match finished {
        Ok(_) => {
            faults::point!(faults::SEND_AFTER_CHARGE);
            Ok(())
        }
        // The provider took it, but the hold is gone: released by a run that had taken the send
        // over and failed it, or by the reconciler once the message was back in the queue. Keep
        // the id on the message, never send it again: its next run reserves again and charges
        // it, or a failed message records the credits as uncharged.
        Err(LedgerError::HoldReleased(_)) => {
            let mut conn = s.pool.acquire().await?;
            let late = store::record_late_sid(&mut conn, message.id, &sent.provider_id).await?;
            tracing::warn!(message = %message.id, provider_id = %sent.provider_id, ?late, "the provider took a message whose hold was released");
            metrics::send_interruption("success_after_release");
            match late {
                store::LateSid::Adopted => Err(JobError::retry(format!(
                    "message {} is charged again for its send {}",
                    message.id, sent.provider_id
                ))),
                store::LateSid::Unbilled | store::LateSid::Known => Ok(()),
            }
        }
        Err(e) => Err(JobError::retry(e)),
    }
}

/// The provider refused our credentials: pause sending through this account fleet-wide (it
/// resumes by itself once credentials work, see `providers::pause`).
async fn credentials_refused(s: &Sending<'_>, reason: &str) -> Result<(), JobError> {
    let (Some(account), Some(credentials)) = (s.gateway.account(), s.gateway.credentials()) else {
        return Ok(());
    };
    tracing::error!(alert = true, provider = s.gateway.name(), %account, %reason,
        "operator action needed: the provider refused our credentials; sending through this account is paused until they work (rotate them in settings)");
    s.pauses.pause(account, credentials, reason).await.retry()?;
    Ok(())
}

/// Runs the charge step of a message the provider has taken until it answers with anything but
/// a transient database error (a lock timeout, a lost connection, a deadlock or serialization
/// failure), as `db::patiently` tries. This run holds the SID: without these tries, a later run
/// would have to find the message again by listing the provider's. The step's answer, a
/// business outcome (the hold already committed or released) or an error that would recur (a
/// constraint, a raised exception), is returned as it is.
async fn charge_patiently<F, Fut>(message: MessageId, charge: F) -> Result<Finished, JobError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Finished, GroupError>>,
{
    let transient = |answer: &Result<Finished, GroupError>| match answer {
        Ok(Err(LedgerError::Database(e))) if db::transient(e) => Some(e.to_string()),
        Err(GroupError::Database(e)) if db::transient(e) => Some(e.to_string()),
        _ => None,
    };
    let answer = db::patiently(charge, transient, |error| {
        tracing::warn!(%message, %error, "charging a sent message failed; trying again");
        metrics::send_interruption("charge_retried");
    })
    .await;
    match answer {
        // Still failing after the tries: the job is retried, not the ledger's answer taken.
        Ok(Err(LedgerError::Database(e))) if db::transient(&e) => Err(JobError::retry(e)),
        Ok(answer) => Ok(answer),
        Err(e) => Err(JobError::retry(e)),
    }
}

/// Releases the hold and fails the message, if the run's attempt is still the message's latest;
/// false (nothing written) if another run has taken the send over.
async fn release_and_fail(
    s: &Sending<'_>,
    run: &Run<'_>,
    code: &str,
    text: &str,
) -> Result<bool, JobError> {
    let mut tx = s.pool.begin().await?;
    // The message's lock first, as the batched send steps take it (message, hold, balance), so
    // this and a batch holding the same message cannot deadlock.
    if !store::lock_attempt(&mut tx, run.message.id, run.attempt).await? {
        taken_over(run.message.id);
        return Ok(false);
    }
    ledger::release(&mut tx, run.hold.id).await.retry()?;
    store::mark_failed(&mut tx, run.message.id, code, text, Some(s.gateway.name())).await?;
    tx.commit().await?;
    Ok(true)
}

/// Back to `queued`, keeping the hold, for a later attempt (nothing reached the provider);
/// false (nothing written) if another run has taken the send over.
async fn back_to_queued(s: &Sending<'_>, run: &Run<'_>) -> Result<bool, JobError> {
    let mut conn = s.pool.acquire().await?;
    let ours = store::requeue_attempt(&mut conn, run.message.id, run.attempt).await?;
    if !ours {
        taken_over(run.message.id);
    }
    Ok(ours)
}

/// This run stalled past its attempt's window and another run resumed the send: the outcome is
/// that run's to write.
fn taken_over(message: MessageId) {
    metrics::send_interruption("taken_over");
    tracing::warn!(%message, "another run took this send over; leaving it the outcome");
}

async fn opt_out(
    s: &Sending<'_>,
    company: CompanyId,
    phone: &E164,
    code: &str,
) -> Result<(), JobError> {
    let source = format!("{}_{code}", s.gateway.name());
    opt_outs::add(s.pool, company, phone, &source).await?;
    Ok(())
}
#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::db::testing::Refused;
    use crate::domain::HoldId;

    /// A charge step that gives these answers in turn; returns what `charge_patiently` made of
    /// them and how many it asked for.
    async fn charge_with(
        answers: Vec<Result<Finished, GroupError>>,
    ) -> (Result<Finished, JobError>, usize) {
        let answers = Mutex::new(VecDeque::from(answers));
        let asked = Mutex::new(0);
        let result = charge_patiently(MessageId(uuid::Uuid::nil()), || {
            *asked.lock().unwrap() += 1;
            let answer = answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("asked once too often");
            async move { answer }
        })
        .await;
        (result, asked.into_inner().unwrap())
    }

    fn item_error(code: &'static str) -> Result<Finished, GroupError> {
        Ok(Err(LedgerError::Database(Refused::error(code))))
    }

    fn batch_error(code: &'static str) -> Result<Finished, GroupError> {
        Err(GroupError::Database(std::sync::Arc::new(Refused::error(
            code,
        ))))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_tried_again_until_the_step_answers() {
        let released = Ok(Err(LedgerError::HoldReleased(HoldId(uuid::Uuid::nil()))));
        let (result, asked) =
            charge_with(vec![item_error("40001"), batch_error("55P03"), released]).await;
        assert!(matches!(result, Ok(Err(LedgerError::HoldReleased(_)))));
        assert_eq!(asked, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_that_would_recur_is_not_tried_again() {
        let (result, asked) = charge_with(vec![item_error("23505")]).await;
        assert!(matches!(result, Ok(Err(LedgerError::Database(_)))));
        assert_eq!(asked, 1);
        let (result, asked) = charge_with(vec![batch_error("P0001")]).await;
        assert!(matches!(result, Err(JobError::Retry(_))));
        assert_eq!(asked, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_run_gives_up_after_five_tries_over_about_four_seconds() {
        let started = tokio::time::Instant::now();
        let (result, asked) = charge_with((0..5).map(|_| item_error("55P03")).collect()).await;
        assert!(matches!(result, Err(JobError::Retry(_))));
        assert_eq!(asked, 5);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(250 + 500 + 1000 + 2000)
        );
    }
}
