//! The claim: reserve the message's credits and mark it `sending` in one step, claiming the
//! send attempt (a compare-and-set on the message's latest attempt; migrations/0015). A message
//! whose recipient has opted out since it was accepted, or whose company cannot pay for it, is
//! failed here instead, before anything reaches the provider.

use std::time::Instant;

use super::Sending;
use super::settle::Run;
use crate::ledger::{self, BeginSend, LedgerError};
use crate::messages::Message;
use crate::messages::store::{self, SendingRules};
use crate::metrics;
use crate::queue::{JobError, JobResultExt};

/// This run's claimed attempt, or `None` when there is nothing to send: settled by an earlier
/// run, claimed by another run since this one read the message (that run sends it), the
/// recipient opted out (the message fails, its hold if any released), or insufficient credits
/// (the message fails, nothing charged, no retry).
///
/// Another run resumes this attempt once it is older than three `longest_send`s, trusting that
/// the request started within the first. A claim that took longer (lock waits, a starved
/// process) sends nothing: the message goes back to `queued`, and a later run sends it.
pub(super) async fn claim<'m>(
    s: &Sending<'_>,
    message: &'m Message,
    rules: &SendingRules,
) -> Result<Option<Run<'m>>, JobError> {
    if rules.recipient_opted_out {
        let detail = format!("{} opted out after the message was accepted", message.to);
        fail_unclaimed(s, message, "opted_out", &detail).await?;
        return Ok(None);
    }
    let claiming = Instant::now();
    let attempt = uuid::Uuid::now_v7();
    let begun = s
        .steps
        .begin
        .run(BeginSend {
            company: message.company_id,
            message: message.id,
            credits: message.credits,
            ttl: s.hold_ttl,
            seen: message.send_attempt_started_at,
            attempt,
            account: s.gateway.account().map(str::to_string),
        })
        .await
        .retry()?;
    let hold = match begun {
        Ok(Some(hold)) => hold.value,
        Ok(None) | Err(LedgerError::AlreadyCharged { .. }) => return Ok(None),
        Err(LedgerError::InsufficientCredits { needed, available }) => {
            let detail = format!("{needed} credits needed, {available} available");
            fail_unclaimed(s, message, "insufficient_credits", &detail).await?;
            return Ok(None);
        }
        Err(e) => return Err(JobError::retry(e)),
    };
    if claiming.elapsed() >= s.gateway.longest_send() {
        metrics::send_interruption("claim_too_late");
        // Nothing left for the provider: back to the queue (the hold stays), so the next run
        // sends without first looking for an unanswered send (unless another run took over).
        let mut conn = s.pool.acquire().await?;
        store::requeue_attempt(&mut conn, message.id, attempt).await?;
        return Err(JobError::retry(format!(
            "claimed message {} too late to send within its attempt's window",
            message.id
        )));
    }
    Ok(Some(Run {
        message,
        hold,
        attempt,
    }))
}

/// Fails a message this run did not send, releasing its hold if it has one (a retry keeps the
/// hold while the message waits in `queued`), only if no other run has started an attempt since
/// this one read the message: the failure is decided on what this run read, and a run that has
/// claimed the message since (after a top-up, say) owns its outcome. Nothing is written then.
async fn fail_unclaimed(
    s: &Sending<'_>,
    message: &Message,
    code: &str,
    text: &str,
) -> Result<(), JobError> {
    // Read before the lock: a hold made since would come with a new attempt, which the fence
    // below refuses.
    let hold = ledger::active_hold(s.pool, message.id).await.retry()?;
    let mut tx = s.pool.begin().await?;
    // The message's lock first, as the send steps take it (message, hold, balance).
    if !store::lock_unclaimed(&mut tx, message.id, message.send_attempt_started_at).await? {
        metrics::send_interruption("taken_over");
        tracing::warn!(message = %message.id, code, "another run claimed this message; leaving it the outcome");
        return Ok(());
    }
    if let Some(hold) = hold {
        ledger::release(&mut tx, hold.id).await.retry()?;
    }
    store::mark_failed(&mut tx, message.id, code, text, None).await?;
    tx.commit().await?;
    Ok(())
}
