//! Delivery reports (Twilio's status callbacks, Beem's and Africa's Talking's reports): move the
//! message forward and ask for a refund when it failed (or was undelivered and the company's
//! policy refunds that). A report moves only a message sent through the route it came from.

use copcca_jobs::{Refund, RefundReason};
use sqlx::PgPool;

use super::MessageStatus;
use super::store::apply_report;
use crate::faults;
use crate::inbox;
use crate::providers::bulk::{DeliveryReport, DeliveryState};
use crate::providers::{africastalking, beem};
use crate::queue::Queues;
use crate::routing::RouteName;

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

/// One delivery report, in our terms.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The route it came from (`messages.provider`).
    pub provider: &'a str,
    pub provider_id: &'a str,
    /// The status it reports; `None`: one we do not track (nothing changes).
    pub next: Option<MessageStatus>,
    pub error_code: Option<&'a str>,
}

impl<'a> Report<'a> {
    /// A report of a route whose provider posts them unsigned (Beem, Africa's Talking).
    pub fn from_bulk(route: RouteName, report: &'a DeliveryReport) -> Self {
        let (next, error_code) = match &report.state {
            DeliveryState::Delivered => (Some(MessageStatus::Delivered), None),
            // The provider took it and the network did not deliver it.
            DeliveryState::Failed { reason } if report.is_final => {
                (Some(MessageStatus::Undelivered), Some(reason.as_str()))
            }
            DeliveryState::Failed { .. } | DeliveryState::Pending => (None, None),
        };
        Report {
            provider: route.as_str(),
            provider_id: &report.provider_id,
            next,
            error_code,
        }
    }
}

/// Reads a report body of `route`, whose provider posts them unsigned (`None`: not one of its
/// reports; Twilio's are read by their webhook, which checks their signature first).
pub fn parse_bulk(route: RouteName, body: &[u8]) -> Option<DeliveryReport> {
    match route {
        RouteName::Beem => beem::parse_report(body).ok(),
        RouteName::Africastalking => africastalking::parse_report(body).ok(),
        RouteName::Twilio => None,
    }
}

/// Reports of `provider` stored at least `older_than` ago and not applied, whose message can
/// take them now (it has their provider id and is past `sending`), oldest first; and those
/// stored before reports named their subject (0033), which are tried as they come.
pub async fn pending(
    pool: &PgPool,
    provider: &str,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.id, e.payload FROM webhook_events e
         WHERE e.provider = $1 AND e.accepted AND e.processed_at IS NULL
           AND e.received_at <= now() - make_interval(secs => $2)
           AND (e.subject IS NULL OR EXISTS (
                SELECT 1 FROM messages m WHERE m.provider_id = e.subject AND m.provider = $1
                   AND m.status NOT IN ('queued', 'sending')))
         ORDER BY e.id LIMIT $3",
    )
    .bind(provider)
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Sets aside (as processed) the reports of `provider` that named no message of ours for
/// `kept`: by then a sent message without its report has been marked unconfirmed. One whose
/// message has its id now (an operator settled a held send with it) is left to be applied. How
/// many.
pub async fn set_aside_unmatched(
    pool: &PgPool,
    provider: &str,
    kept: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE webhook_events e SET processed_at = now()
         WHERE e.provider = $1 AND e.accepted AND e.processed_at IS NULL
           AND e.received_at < now() - make_interval(secs => $2)
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.provider_id = e.subject)",
    )
    .bind(provider)
    .bind(kept.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}

/// Applies `report`, stored as webhook event `event`.
pub async fn apply(
    pool: &PgPool,
    queues: &Queues,
    event: i64,
    report: Report<'_>,
) -> Result<ReportOutcome, sqlx::Error> {
    let Report {
        provider,
        provider_id: sid,
        next,
        error_code,
    } = report;
    let Some(next) = next else {
        let mut conn = pool.acquire().await?;
        inbox::mark_processed(&mut conn, event).await?;
        return Ok(ReportOutcome::Ignored);
    };
    let mut tx = pool.begin().await?;
    // A message that has the SID but is not charged yet (`store::record_late_sid`) waits for
    // its charge like one that has no SID yet: the report is applied once it is `sent`.
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE provider_id = $1 AND provider = $2
                         AND status NOT IN ('queued', 'sending'))",
    )
    .bind(sid)
    .bind(provider)
    .fetch_one(&mut *tx)
    .await?;
    if !known {
        return Ok(ReportOutcome::Pending);
    }
    let moved = apply_report(&mut tx, provider, sid, next, error_code).await?;
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
