//! The operator's word on a send held as unanswered (`POST /admin/messages/{id}/resolve`). A
//! held send got no usable answer and its provider could not tell (Beem and Africa's Talking
//! cannot be asked; Twilio's list did not show it yet). The operator, having looked in the
//! provider's console, settles it: the provider has it (its id given: charged, exactly as when
//! a delivery report names it, never sent again), or it never had it (failed, its credits
//! released; the CRM may ask again).

use copcca_jobs::SendSms;
use sqlx::PgPool;

use super::store::{self, LateSid};
use crate::domain::MessageId;
use crate::ledger::{self, LedgerError};
use crate::queue::Queues;

/// What the operator found at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The provider has it, under this id.
    Sent { provider_id: String },
    /// The provider never had it.
    NotSent,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no message {0}")]
    NotFound(MessageId),
    #[error("message {0} is not held as unanswered")]
    NotHeld(MessageId),
    #[error(
        "message {0} is being sent again now (its attempt may still be in flight); look again in a few minutes"
    )]
    InFlight(MessageId),
    #[error("another message already has provider id {0}")]
    ProviderIdInUse(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Settles held message `id` as `resolution` says. `in_flight`: how long an attempt may still
/// be in flight (three of the longest send of any route): a held Twilio send past its deadline
/// is sent again, and while that attempt may be out, the operator's word would race it.
pub async fn resolve(
    pool: &PgPool,
    queues: &Queues,
    id: MessageId,
    resolution: &Resolution,
    in_flight: std::time::Duration,
) -> Result<(), ResolveError> {
    let mut tx = pool.begin().await?;
    // Locked: a send job of the message waits, then finds it settled.
    let held: Option<(bool, bool)> = sqlx::query_as(
        "SELECT status = 'sending' AND unanswered_since IS NOT NULL AND provider_id IS NULL,
                COALESCE(send_attempt_started_at > now() - make_interval(secs => $2), false)
         FROM messages WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .bind(in_flight.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;
    match held {
        None => return Err(ResolveError::NotFound(id)),
        Some((false, _)) => return Err(ResolveError::NotHeld(id)),
        Some((true, true)) => return Err(ResolveError::InFlight(id)),
        Some((true, false)) => {}
    }
    match resolution {
        Resolution::Sent { provider_id } => {
            if store::record_late_sid(&mut tx, id, provider_id).await? != LateSid::Adopted {
                return Err(ResolveError::ProviderIdInUse(provider_id.clone()));
            }
            // Its delivery report may have come long ago and been set aside (no message had
            // this id then, `reports::set_aside_unmatched`): taken up again, so a failure is
            // applied (and refunded) once the message is charged.
            sqlx::query(
                "UPDATE webhook_events SET processed_at = NULL
                 WHERE accepted AND subject = $1 AND processed_at IS NOT NULL",
            )
            .bind(provider_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            // Its send job charges it. Should this enqueue fail, the reconciler's look at
            // stale sends finds the message with its provider id and does the same.
            let key = format!("send_sms:{id}:late_sid:{provider_id}");
            if let Err(e) = queues.enqueue_as(&SendSms { message_id: id.0 }, &key).await {
                tracing::warn!(message = %id, error = %e, "could not enqueue its charge; the reconciler will");
            }
        }
        Resolution::NotSent => {
            if let Some(hold) = ledger::active_hold(&mut *tx, id).await? {
                ledger::release(&mut tx, hold.id).await?;
            }
            let why = "the provider never had it (resolved by the operator)";
            store::mark_failed(&mut tx, id, "not_sent", why, None).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
