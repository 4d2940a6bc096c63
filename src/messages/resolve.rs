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
    #[error("another message already has provider id {0}")]
    ProviderIdInUse(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Settles held message `id` as `resolution` says.
pub async fn resolve(
    pool: &PgPool,
    queues: &Queues,
    id: MessageId,
    resolution: &Resolution,
) -> Result<(), ResolveError> {
    let mut tx = pool.begin().await?;
    // Locked: a send job of the message waits, then finds it settled.
    let held: Option<bool> = sqlx::query_scalar(
        "SELECT status = 'sending' AND unanswered_since IS NOT NULL AND provider_id IS NULL
         FROM messages WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match held {
        None => return Err(ResolveError::NotFound(id)),
        Some(false) => return Err(ResolveError::NotHeld(id)),
        Some(true) => {}
    }
    match resolution {
        Resolution::Sent { provider_id } => {
            if store::record_late_sid(&mut tx, id, provider_id).await? != LateSid::Adopted {
                return Err(ResolveError::ProviderIdInUse(provider_id.clone()));
            }
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
