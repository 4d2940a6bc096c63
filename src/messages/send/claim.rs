//! The claim: reserve the message's credits and mark it `sending` in one step, claiming the
//! send attempt (a compare-and-set on the message's latest attempt; migrations/0015).

use std::time::Instant;

use super::Sending;
use super::settle::{self, Run};
use crate::ledger::{BeginSend, LedgerError};
use crate::messages::{Message, store};
use crate::metrics;
use crate::queue::{JobError, JobResultExt};

/// This run's claimed attempt, or `None` when there is nothing to send: settled by an earlier
/// run, claimed by another run since this one read the message (that run sends it), or
/// insufficient credits (the message fails, nothing charged, no retry).
///
/// Another run resumes this attempt once it is older than three `longest_send`s, trusting that
/// the request started within the first. A claim that took longer (lock waits, a starved
/// process) sends nothing: the message goes back to `queued`, and a later run sends it.
pub(super) async fn claim<'m>(
    s: &Sending<'_>,
    message: &'m Message,
) -> Result<Option<Run<'m>>, JobError> {
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
            settle::fail(s, message.id, "insufficient_credits", &detail, None).await?;
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
