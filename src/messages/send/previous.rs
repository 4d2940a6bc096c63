//! The first step: what became of this message's previous attempt, if any.
//!
//! Nothing is ever sent again blindly. A send whose answer never came is looked up at the
//! account it went through; what the lookup cannot find is held, shown to the operator as
//! unanswered, and sent again only once `resend_unanswered_after` has passed since its attempt
//! began (by then Twilio has sent it or dropped it: its ValidityPeriod is shorter). A provider
//! id learnt late (a status callback names its message, or an answer came after the run that
//! asked had given up) is charged, never sent again.

use std::time::Duration;

use super::settle;
use super::{Sending, claim};
use crate::ledger;
use crate::messages::store::{self, AttemptAge, SendingRules};
use crate::messages::{Message, MessageStatus};
use crate::providers::SmsGateway;
use crate::providers::answer::Sent;
use crate::providers::twilio::TwilioMessage;
use crate::queue::{JobError, JobResultExt};

/// How soon an unanswered send is looked up again while it is held.
const LOOK_AGAIN: Duration = Duration::from_secs(120);

/// Whether the message needs nothing more from this run: an earlier run settled it, or sent it
/// without hearing back and the provider has it (adopted now). A `queued` message, or a
/// `sending` one the provider does not have past its deadline, goes on to be sent. An attempt
/// still in its window snoozes: its run may yet be waiting for the provider's answer.
pub(super) async fn settled(
    s: &Sending<'_>,
    message: &Message,
    rules: &SendingRules,
    attempt_age: AttemptAge,
) -> Result<bool, JobError> {
    match message.status {
        MessageStatus::Queued | MessageStatus::Sending if message.provider_id.is_some() => {
            charge_late_send(s, message, rules).await.map(|()| true)
        }
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
            adopt_unanswered(s, message, age).await
        }
        _ => Ok(true),
    }
}

/// The provider took this message, and we learnt its id after the run that sent it had given
/// up (`store::record_late_sid`): charge it for that send, reserving again if its hold was
/// released meanwhile.
async fn charge_late_send(
    s: &Sending<'_>,
    message: &Message,
    rules: &SendingRules,
) -> Result<(), JobError> {
    let sid = message.provider_id.clone().expect("checked by the caller");
    // The provider already has it: an opt-out since cannot unsend it.
    let rules = SendingRules {
        recipient_opted_out: false,
        ..rules.clone()
    };
    let Some(run) = claim::claim(s, message, &rules).await? else {
        return Ok(()); // settled meanwhile, or no credits left (the claim failed it)
    };
    tracing::info!(message = %message.id, %sid, "charging a send the provider took after its run gave up");
    let sent = Sent {
        provider_id: sid,
        segments: None,
        price: None,
        price_currency: None,
    };
    settle::accepted(s, message, &run.hold, &sent).await
}

/// A `sending` message whose send got no answer: look for it at the account it went through.
/// Of the messages there to the same number with the same body since the attempt began, the
/// oldest that no other message owns is ours (identical messages are interchangeable); adopt it
/// instead of sending again. Found nothing: hold until the deadline.
async fn adopt_unanswered(
    s: &Sending<'_>,
    message: &Message,
    age: Duration,
) -> Result<bool, JobError> {
    let asked_nowhere = message
        .provider_account
        .as_deref()
        .is_some_and(|a| !SmsGateway::route_of_account(a).can_be_asked());
    if asked_nowhere
        && !message.request_may_have_left()
        && let Some(attempt) = message.send_attempt_id
    {
        // Its run died (or stalled) between the claim and the request: nothing reached the
        // provider. The attempt is taken from that run first, so should it still live it can no
        // longer record its request leaving and send; then the message is sent again (on
        // whatever route is up). Recorded as leaving meanwhile: held as below.
        if store::take_over_unsent_attempt(s.pool, message.id, attempt).await? {
            tracing::info!(message = %message.id, "a send whose request never left: sending it");
            return Ok(false);
        }
    }
    if let Some(account) = &message.provider_account
        && Some(account.as_str()) != s.gateway.account()
    {
        // Only that account can say what became of it; the operator was refused the switch
        // while it had unresolved sends, so this follows a change in the environment.
        tracing::error!(alert = true, message = %message.id, %account,
            "an unanswered send went through another account than its route's in force; held, never resent");
        store::mark_unanswered(s.pool, message.id).await?;
        return Err(JobError::Snooze(LOOK_AGAIN * 5));
    }
    let since = message
        .send_attempt_started_at
        .unwrap_or(message.created_at)
        - chrono::Duration::minutes(1);
    let Some(listed) = s.gateway.messages_to(&message.to, since).await.retry()? else {
        // This provider cannot be asked (Beem, Africa's Talking): its delivery report, or an
        // operator, resolves the send. It is never sent again blindly, on any route.
        store::mark_unanswered(s.pool, message.id).await?;
        return Err(JobError::Snooze(LOOK_AGAIN));
    };
    let mut candidates: Vec<TwilioMessage> = listed
        .into_iter()
        .filter(|m| m.body.as_deref() == Some(message.body.as_str()))
        .collect();
    candidates.sort_by_key(|m| m.date_created);
    for candidate in candidates {
        if store::owner_of_provider_id(s.pool, &candidate.sid)
            .await?
            .is_some()
        {
            continue; // an identical message's, already reconciled or answered
        }
        let Some(hold) = ledger::active_hold(s.pool, message.id).await? else {
            return Ok(false);
        };
        tracing::info!(message = %message.id, sid = %candidate.sid, "adopted a message Twilio accepted without answering us");
        settle::accepted(s, message, &hold, &Sent::from(&candidate)).await?;
        return Ok(true);
    }
    if age < s.resend_unanswered_after {
        store::mark_unanswered(s.pool, message.id).await?;
        return Err(JobError::Snooze(
            (s.resend_unanswered_after - age).min(LOOK_AGAIN),
        ));
    }
    tracing::warn!(message = %message.id, "an unanswered send is still not at the provider past its deadline: sending it again");
    Ok(false)
}
