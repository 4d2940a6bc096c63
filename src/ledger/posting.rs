//! The one place credits move: update the materialised balance and append the entry, atomically.

use sqlx::PgConnection;

use super::{EntryKind, LedgerError};
use crate::domain::{CompanyId, HoldId, MessageId, PaymentId};

/// A movement of credits between a company's `available` and `reserved` buckets (or in and out).
pub(super) struct Posting<'a> {
    pub company: CompanyId,
    pub kind: EntryKind,
    pub available_delta: i64,
    pub reserved_delta: i64,
    pub hold: Option<HoldId>,
    pub message: Option<MessageId>,
    pub payment: Option<PaymentId>,
    pub adjustment: Option<uuid::Uuid>,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
}

/// Applies `p` to the balance row and appends its entry in one statement. The balance update is
/// conditional, so a posting that would take either bucket below zero changes nothing and gives
/// `InsufficientCredits`; concurrent postings serialise on the balance row.
pub(super) async fn post(conn: &mut PgConnection, p: Posting<'_>) -> Result<i64, LedgerError> {
    let id: Option<i64> = sqlx::query_scalar(
        "WITH b AS (
             UPDATE balances SET
                 available = available + $2,
                 reserved = reserved + $3,
                 total_purchased = total_purchased
                     + CASE WHEN $4 IN ('purchase', 'purchase_reversal') THEN $2 ELSE 0 END,
                 total_sent = total_sent + CASE WHEN $4 = 'commit' THEN -($2 + $3) ELSE 0 END,
                 total_refunded = total_refunded + CASE WHEN $4 = 'refund' THEN $2 ELSE 0 END,
                 total_adjusted = total_adjusted + CASE WHEN $4 = 'adjustment' THEN $2 ELSE 0 END,
                 updated_at = now()
             WHERE company_id = $1 AND available + $2 >= 0 AND reserved + $3 >= 0
             RETURNING company_id)
         INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, hold_id,
                                     message_id, payment_id, adjustment_id, actor, reason)
         SELECT company_id, $4, $2, $3, $5, $6, $7, $8, $9, $10 FROM b
         RETURNING id",
    )
    .bind(p.company)
    .bind(p.available_delta)
    .bind(p.reserved_delta)
    .bind(p.kind.as_str())
    .bind(p.hold)
    .bind(p.message)
    .bind(p.payment)
    .bind(p.adjustment)
    .bind(p.actor)
    .bind(p.reason)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = id {
        return Ok(id);
    }
    let available: Option<i64> =
        sqlx::query_scalar("SELECT available FROM balances WHERE company_id = $1")
            .bind(p.company)
            .fetch_optional(&mut *conn)
            .await?;
    match available {
        None => Err(LedgerError::UnknownCompany(p.company)),
        Some(available) => Err(LedgerError::InsufficientCredits {
            needed: -p.available_delta,
            available,
        }),
    }
}
