//! `SendSms { message_id }` (DESIGN.md section 5): quiet hours and rate limits -> reserve -> sending -> Twilio ->
//! commit (sent) or release (failed). Running it twice never sends twice and never charges
//! twice: the message row says how far it got, and a send whose answer never came is
//! reconciled against Twilio's message list before anything is resent.

use std::time::{Duration, Instant};

use apalis::prelude::{Attempt, Data};
use chrono_tz::Tz;
use copcca_jobs::{Job, SendSms};
use sqlx::PgPool;

use super::Deps;
use crate::db;
use crate::db::group_commit::{GroupCommit, GroupError, together_or_alone};
use crate::domain::{CompanyId, Credits, E164, MessageId, QuietHours};
use crate::ledger::{self, BeginSend, FinishSend, Finished, Hold, LedgerError};
use crate::messages::store::{self, ForSending, SendingRules};
use crate::messages::{Message, MessageStatus, opt_outs};
use crate::metrics;
use crate::providers::twilio::{OPERATOR_ALERT_ERRORS, TwilioError, TwilioMessage, UNSUBSCRIBED};
use crate::queue::JobError;
use crate::ratelimit::{Decision, Quota};
use crate::telemetry::{self, Subject};

/// The send job's two batched ledger steps (group commit; see `group_commit`).
#[derive(Clone)]
pub struct SendSteps {
    pub begin: GroupCommit<BeginSend, ledger::Begun>,
    pub finish: GroupCommit<FinishSend, ledger::Finished>,
}

impl SendSteps {
    pub fn start(pool: &PgPool) -> Self {
        SendSteps {
            begin: ledger_step("send_begin", pool, |pool, items| async move {
                ledger::begin_sends(&pool, &items).await
            }),
            finish: ledger_step("send_finish", pool, |pool, items| async move {
                ledger::finish_sends(&pool, &items).await
            }),
        }
    }
}

/// One send step's runner: every waiting item in one statement, or each alone if PostgreSQL
/// refused the statement for something an item can cause (`together_or_alone`). Up to 64
/// messages per statement, one statement at a time: while it runs the next batch forms
/// (measured: 8-9 messages per batch and ~1.4x the messages/s of three at a time, whose batches
/// were half the size).
fn ledger_step<I, T, F, Fut>(
    step: &'static str,
    pool: &PgPool,
    statement: F,
) -> GroupCommit<I, Result<T, LedgerError>>
where
    I: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(PgPool, Vec<I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Result<T, LedgerError>>, sqlx::Error>> + Send + 'static,
{
    const BATCH: usize = 64;
    const IN_FLIGHT: usize = 1;
    let pool = pool.clone();
    GroupCommit::start(step, BATCH, IN_FLIGHT, move |items| {
        let (pool, statement) = (pool.clone(), statement.clone());
        async move {
            let run = |items: Vec<I>| statement(pool.clone(), items);
            together_or_alone(items, run, |e| Err(LedgerError::Database(e))).await
        }
    })
}

pub async fn send_sms(job: SendSms, attempt: Attempt, deps: Data<Deps>) -> Result<(), JobError> {
    let id = MessageId(job.message_id);
    telemetry::record_subject(Subject::Message(id));
    let ForSending {
        message,
        rules,
        attempt_age,
    } = load(&deps, id).await?;
    match message.status {
        MessageStatus::Queued => {}
        // A previous run sent it and got no answer (or died): find out before sending again.
        MessageStatus::Sending => {
            // That run may still be waiting for Twilio (this is a redelivery, or the
            // reconciler's job): give it the time its attempt can take before looking. A run
            // starts its request within one `longest_send` of its claim (see `send_sms` below),
            // the request ends within another, and the third is for writing its outcome.
            let in_flight = deps.gateway.longest_send() * 3;
            let age = attempt_age.0.unwrap_or(in_flight);
            if age < in_flight {
                return Err(JobError::Snooze(in_flight - age));
            }
            if adopt_unanswered(&deps, &message).await? {
                return Ok(());
            }
        }
        _ => return Ok(()), // already settled by an earlier run
    }
    wait_for_its_turn(&deps, &message, &rules).await?;
    let claiming = Instant::now();
    let claim = uuid::Uuid::now_v7();
    let Some(hold) = reserve(&deps, &message, claim).await? else {
        return Ok(());
    };
    // Another run resumes this attempt once it is older than three `longest_send`s, trusting
    // that the request started within the first. A claim that took longer (lock waits, a
    // starved process) sends nothing: the message stays `sending`, and a later run resumes it.
    if claiming.elapsed() >= deps.gateway.longest_send() {
        metrics::send_interruption("claim_too_late");
        return Err(JobError::retry(format!(
            "claimed message {} too late to send within its attempt's window",
            message.id
        )));
    }
    let outcome = deps
        .gateway
        .send(&E164::from_stored(message.to.clone()), &message.body)
        .await;
    let run = Run {
        message: &message,
        hold: &hold,
        claim,
    };
    settle(&deps, run, outcome, attempt.current() as u32).await
}

/// A run's claimed attempt at sending a message: what writing its outcome needs.
#[derive(Clone, Copy)]
struct Run<'a> {
    message: &'a Message,
    hold: &'a Hold,
    /// The attempt's id, recorded on the message with the claim: a retry or a failure is
    /// written only while it is still the message's latest (no other run took the send over).
    claim: uuid::Uuid,
}

async fn load(deps: &Deps, id: MessageId) -> Result<ForSending, JobError> {
    store::find_for_sending(&deps.pool, id)
        .await
        .map_err(JobError::retry)?
        .ok_or_else(|| JobError::fail(format!("no message {id}")))
}

/// Quiet hours in the company's time zone (unless the message opted out, like a one-time
/// code), then the company's hourly quota and the account's per-second rate, both fleet-wide.
/// A held or limited message waits (snooze); it never fails for it.
async fn wait_for_its_turn(
    deps: &Deps,
    message: &Message,
    rules: &SendingRules,
) -> Result<(), JobError> {
    if message.respect_quiet_hours {
        let tz: Tz = rules
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Africa::Dar_es_Salaam);
        let now = (deps.clock)();
        let quiet = QuietHours {
            tz,
            start: rules.quiet_hours_start,
            end: rules.quiet_hours_end,
        };
        if let Some(until) = quiet.hold_until(now) {
            return Err(JobError::Snooze((until - now).to_std().unwrap_or_default()));
        }
    }
    let company_key = format!("company:{}", message.company_id);
    let account_key = deps.gateway.rate_key();
    let limits = [
        (
            company_key.as_str(),
            Quota::per_hour(rules.sms_per_hour as u32),
        ),
        (account_key.as_str(), deps.account_rate),
    ];
    match deps
        .limiter
        .check_all(&limits, 1)
        .await
        .map_err(JobError::retry)?
    {
        Decision::Allowed => Ok(()),
        Decision::Wait(d) => Err(JobError::Snooze(d)),
    }
}

/// Reserves the message's credits and marks it `sending`, together (in a batch with other jobs'
/// reservations), claiming the send attempt. `None` when there is nothing to send: settled by an
/// earlier run, claimed by another run since this one read the message (that run sends it), or
/// insufficient credits (the message fails, nothing charged, no retry).
async fn reserve(
    deps: &Deps,
    message: &Message,
    claim: uuid::Uuid,
) -> Result<Option<Hold>, JobError> {
    let credits = Credits::new(message.credits).map_err(JobError::fail)?;
    let begun = deps
        .steps
        .begin
        .run(BeginSend {
            company: message.company_id,
            message: message.id,
            credits,
            ttl: deps.hold_ttl,
            seen: message.send_attempt_started_at,
            attempt: claim,
        })
        .await
        .map_err(JobError::retry)?;
    match begun {
        Ok(Some(hold)) => Ok(Some(hold.value)),
        Ok(None) | Err(LedgerError::AlreadyCharged { .. }) => Ok(None),
        Err(LedgerError::InsufficientCredits { needed, available }) => {
            let detail = format!("{needed} credits needed, {available} available");
            fail(deps, message.id, "insufficient_credits", &detail, None).await?;
            Ok(None)
        }
        Err(e) => Err(JobError::retry(e)),
    }
}

async fn settle(
    deps: &Deps,
    run: Run<'_>,
    outcome: Result<TwilioMessage, TwilioError>,
    attempt: u32,
) -> Result<(), JobError> {
    let message = run.message;
    match outcome {
        Ok(sent) => accepted(deps, message, run.hold, &sent).await,
        Err(TwilioError::Refused {
            code,
            message: text,
            ..
        }) => {
            if code == UNSUBSCRIBED {
                opt_out(deps, message.company_id, &message.to).await?;
            }
            if OPERATOR_ALERT_ERRORS.contains(&code) {
                tracing::error!(alert = true, code, %text, "operator action needed: Twilio refused our account or sender");
            }
            release_and_fail(deps, run, &code.to_string(), &text)
                .await
                .map(drop)
        }
        // In the next three arms, a run whose attempt another run has taken over (it stalled
        // for longer than the attempt's window) leaves the message to that run and ends.
        Err(TwilioError::RateLimited { retry_after }) => {
            if !back_to_queued(deps, run).await? {
                return Ok(());
            }
            Err(JobError::Snooze(
                retry_after.unwrap_or(Duration::from_secs(1)),
            ))
        }
        Err(e @ (TwilioError::Server { .. } | TwilioError::NotSent(_))) => {
            if attempt >= SendSms::MAX_ATTEMPTS {
                if !release_and_fail(deps, run, "provider_unavailable", &e.to_string()).await? {
                    return Ok(());
                }
                return Err(JobError::fail(format!(
                    "gave up after {attempt} attempts: {e}"
                )));
            }
            if !back_to_queued(deps, run).await? {
                return Ok(());
            }
            Err(JobError::retry(e))
        }
        // Twilio may have the message: stay `sending`; the next run (or the reconciler) asks
        // Twilio before anything is resent.
        Err(e @ TwilioError::Ambiguous(_)) => {
            tracing::warn!(message = %message.id, error = %e, "no answer from Twilio; will reconcile");
            Err(JobError::retry(e))
        }
    }
}

/// The provider took the message: charge it (by the provider's segment count, never more than
/// was reserved; any excess is recorded as uncharged) and mark it `sent`, together (in a batch
/// with other jobs' charges).
async fn accepted(
    deps: &Deps,
    message: &Message,
    hold: &Hold,
    sent: &TwilioMessage,
) -> Result<(), JobError> {
    let segments = sent
        .num_segments
        .filter(|n| *n > 0)
        .map_or(message.segments, |n| n as i32);
    let per_segment = (message.credits / i64::from(message.segments.max(1))).max(1);
    let actual = i64::from(segments) * per_segment;
    let charge = actual.min(hold.credits.get());
    let finish = FinishSend {
        hold: hold.id,
        charge: Credits::new(charge).map_err(JobError::fail)?,
        provider: deps.gateway.name().to_string(),
        provider_id: sent.sid.clone(),
        segments,
        uncharged: actual - charge,
        price: sent.price.map(|p| p.abs()),
        price_currency: sent.price_unit.clone(),
    };
    let finished = charge_patiently(message.id, || deps.steps.finish.run(finish.clone())).await?;
    finished.map(drop).map_err(JobError::retry)
}

/// Runs the charge step of a message Twilio has taken until it answers with anything but a
/// transient database error (a lock timeout, a lost connection, a deadlock or serialization
/// failure), at most five times, 250 ms doubling to 2 s apart. This run holds the SID: without
/// these tries, a later run would have to find the message again by listing Twilio's. The
/// step's answer, a business outcome (the hold already committed or released) or an error that
/// would recur (a constraint, a raised exception), is returned as it is.
async fn charge_patiently<F, Fut>(message: MessageId, charge: F) -> Result<Finished, JobError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Finished, GroupError>>,
{
    let mut pause = Duration::from_millis(250);
    loop {
        let error = match charge().await {
            Ok(Err(LedgerError::Database(e))) if db::transient(&e) => e.to_string(),
            Err(GroupError::Database(e)) if db::transient(&e) => e.to_string(),
            Ok(answer) => return Ok(answer),
            Err(e) => return Err(JobError::retry(e)),
        };
        if pause > Duration::from_secs(2) {
            return Err(JobError::retry(error));
        }
        tracing::warn!(%message, %error, "charging a sent message failed; trying again");
        metrics::send_interruption("charge_retried");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// A `sending` message whose send got no answer: if Twilio has a message to the same number
/// with the same body since the attempt began, it is ours: adopt it instead of sending again.
async fn adopt_unanswered(deps: &Deps, message: &Message) -> Result<bool, JobError> {
    let since = message
        .send_attempt_started_at
        .unwrap_or(message.created_at)
        - chrono::Duration::minutes(1);
    let to = E164::from_stored(message.to.clone());
    let found = deps
        .gateway
        .messages_to(&to, since)
        .await
        .map_err(JobError::retry)?;
    let Some(ours) = found
        .into_iter()
        .find(|m| m.body.as_deref() == Some(message.body.as_str()))
    else {
        return Ok(false);
    };
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id::text FROM messages WHERE provider_id = $1")
            .bind(&ours.sid)
            .fetch_optional(&deps.pool)
            .await
            .map_err(JobError::retry)?;
    if taken.is_some() {
        return Ok(false); // that one belongs to an identical message already reconciled
    }
    let hold = match ledger::active_hold(&deps.pool, message.id)
        .await
        .map_err(JobError::retry)?
    {
        Some(h) => h,
        None => return Ok(false),
    };
    tracing::info!(message = %message.id, sid = %ours.sid, "adopted a message Twilio accepted without answering us");
    accepted(deps, message, &hold, &ours).await?;
    Ok(true)
}

/// Releases the hold and fails the message, if the run's attempt is still the message's latest;
/// false (nothing written) if another run has taken the send over.
async fn release_and_fail(
    deps: &Deps,
    run: Run<'_>,
    code: &str,
    text: &str,
) -> Result<bool, JobError> {
    let mut tx = deps.pool.begin().await.map_err(JobError::retry)?;
    // The message's lock first, as the batched send steps take it (message, hold, balance), so
    // this and a batch holding the same message cannot deadlock.
    if !store::lock_attempt(&mut tx, run.message.id, run.claim)
        .await
        .map_err(JobError::retry)?
    {
        taken_over(run.message.id);
        return Ok(false);
    }
    ledger::release(&mut tx, run.hold.id)
        .await
        .map_err(JobError::retry)?;
    store::mark_failed(
        &mut tx,
        run.message.id,
        code,
        text,
        Some(deps.gateway.name()),
    )
    .await
    .map_err(JobError::retry)?;
    tx.commit().await.map_err(JobError::retry)?;
    Ok(true)
}

async fn fail(
    deps: &Deps,
    id: MessageId,
    code: &str,
    text: &str,
    provider: Option<&str>,
) -> Result<(), JobError> {
    let mut conn = deps.pool.acquire().await.map_err(JobError::retry)?;
    store::mark_failed(&mut conn, id, code, text, provider)
        .await
        .map_err(JobError::retry)?;
    Ok(())
}

/// Back to `queued`, keeping the hold, for a later attempt (nothing reached Twilio); false
/// (nothing written) if another run has taken the send over.
async fn back_to_queued(deps: &Deps, run: Run<'_>) -> Result<bool, JobError> {
    let mut conn = deps.pool.acquire().await.map_err(JobError::retry)?;
    let ours = store::requeue_attempt(&mut conn, run.message.id, run.claim)
        .await
        .map_err(JobError::retry)?;
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

async fn opt_out(deps: &Deps, company: CompanyId, phone: &str) -> Result<(), JobError> {
    opt_outs::add(
        &deps.pool,
        company,
        &E164::from_stored(phone.to_string()),
        "twilio_21610",
    )
    .await?;
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
