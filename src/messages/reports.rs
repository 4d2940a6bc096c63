//! Delivery reports (Twilio status callbacks): move the message forward and ask for a refund
//! when it failed (or was undelivered and the company's policy refunds that).

use copcca_jobs::{Refund, RefundReason};
use sqlx::PgPool;

use super::MessageStatus;
use super::store::apply_report;
use crate::faults;
use crate::inbox;
use crate::queue::Queues;

/// What a stored report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The message moved to the reported status.
    Applied(MessageStatus),
    /// Stale, repeated or out of order: the message is already further along.
    Ignored,
    /// No charged message has this provider id yet (the report beat our own commit, or the
    /// message learnt its SID late and is not charged yet): kept for the reconciler to apply
    /// later.
    Pending,
}

/// Applies the report stored as webhook event `event` (`sid`, Twilio `status`, `error_code`).
pub async fn apply(
    pool: &PgPool,
    queues: &Queues,
    event: i64,
    sid: &str,
    status: &str,
    error_code: Option<&str>,
) -> Result<ReportOutcome, sqlx::Error> {
    let Some(next) = MessageStatus::from_twilio(status) else {
        let mut conn = pool.acquire().await?;
        inbox::mark_processed(&mut conn, event).await?;
        return Ok(ReportOutcome::Ignored);
    };
    let mut tx = pool.begin().await?;
    // A message that has the SID but is not charged yet (`store::record_late_sid`) waits for
    // its charge like one that has no SID yet: the report is applied once it is `sent`.
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE provider_id = $1
                         AND status NOT IN ('queued', 'sending'))",
    )
    .bind(sid)
    .fetch_one(&mut *tx)
    .await?;
    if !known {
        return Ok(ReportOutcome::Pending);
    }
    let moved = apply_report(&mut tx, sid, next, error_code).await?;
    inbox::mark_processed(&mut tx, event).await?;
    let refund = match moved {
        Some((id, company, _)) => {
            let refund_undelivered: bool =
                sqlx::query_scalar("SELECT refund_undelivered FROM companies WHERE id = $1")
                    .bind(company)
                    .fetch_one(&mut *tx)
                    .await?;
            match next {
                MessageStatus::Failed => Some((id, RefundReason::Failed)),
                MessageStatus::Undelivered if refund_undelivered => {
                    Some((id, RefundReason::Undelivered))
                }
                _ => None,
            }
        }
        None => None,
    };
    tx.commit().await?;
    faults::point!(faults::CALLBACK_AFTER_STORE);
    if let Some((id, reason)) = refund
        && let Err(e) = queues
            .enqueue(&Refund {
                message_id: id.0,
                reason,
            })
            .await
    {
        // The reconciler finds failed messages still charged and enqueues their refund.
        tracing::warn!(message = %id, error = %e, "refund enqueue failed; the reconciler will retry");
    }
    Ok(if moved.is_some() {
        ReportOutcome::Applied(next)
    } else {
        ReportOutcome::Ignored
    })
}
