//! The first step: what became of this message's previous attempt, if any.

use super::Sending;
use super::settle;
use crate::ledger;
use crate::messages::store::{self, AttemptAge};
use crate::messages::{Message, MessageStatus};
use crate::queue::{JobError, JobResultExt};

/// Whether the message needs nothing more from this run: an earlier run settled it, or sent it
/// without hearing back and the provider has it (adopted now). A `queued` message, or a
/// `sending` one the provider does not have, goes on to be sent. An attempt still in its window
/// snoozes: its run may yet be waiting for the provider's answer.
pub(super) async fn settled(
    s: &Sending<'_>,
    message: &Message,
    attempt_age: AttemptAge,
) -> Result<bool, JobError> {
    match message.status {
        MessageStatus::Queued => Ok(false),
        MessageStatus::Sending => {
            // This is a redelivery, or the reconciler's job. A run starts its request within
            // one `longest_send` of its claim (see `claim`), the request ends within another,
            // and the third is for writing its outcome.
            let in_flight = s.gateway.longest_send() * 3;
            let age = attempt_age.0.unwrap_or(in_flight);
            if age < in_flight {
                return Err(JobError::Snooze(in_flight - age));
            }
            adopt_unanswered(s, message).await
        }
        _ => Ok(true),
    }
}

/// A `sending` message whose send got no answer: if the provider has a message to the same
/// number with the same body since the attempt began, it is ours: adopt it instead of sending
/// again.
async fn adopt_unanswered(s: &Sending<'_>, message: &Message) -> Result<bool, JobError> {
    let since = message
        .send_attempt_started_at
        .unwrap_or(message.created_at)
        - chrono::Duration::minutes(1);
    let found = s.gateway.messages_to(&message.to, since).await.retry()?;
    let Some(ours) = found
        .into_iter()
        .find(|m| m.body.as_deref() == Some(message.body.as_str()))
    else {
        return Ok(false);
    };
    if store::owner_of_provider_id(s.pool, &ours.sid)
        .await?
        .is_some()
    {
        return Ok(false); // that one belongs to an identical message already reconciled
    }
    let Some(hold) = ledger::active_hold(s.pool, message.id).await? else {
        return Ok(false);
    };
    tracing::info!(message = %message.id, sid = %ours.sid, "adopted a message Twilio accepted without answering us");
    settle::accepted(s, message, &hold, &ours).await?;
    Ok(true)
}
