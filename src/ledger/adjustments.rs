//! Operator adjustments: credits given or taken by hand, with a reason and an actor.

use sqlx::{Connection, PgConnection};

use super::posting::{Posting, post};
use super::{Applied, EntryKind, LedgerError};
use crate::domain::{CompanyId, CreditDelta};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjusted {
    pub adjustment_id: uuid::Uuid,
    pub company: CompanyId,
    pub delta: i64,
    pub entry_id: i64,
}

/// Adds (or, when negative, removes) credits. `adjustment_id` is the caller's idempotency key:
/// the same id again is a replay, the same id with other values is `AdjustmentConflict`. A removal
/// larger than the available credits is `InsufficientCredits` and changes nothing.
pub async fn adjust(
    conn: &mut PgConnection,
    adjustment_id: uuid::Uuid,
    company: CompanyId,
    delta: CreditDelta,
    reason: &str,
    actor: &str,
) -> Result<Applied<Adjusted>, LedgerError> {
    let mut tx = conn.begin().await?;
    // Lock the balance first so two calls with the same id cannot both pass the check below.
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT available FROM balances WHERE company_id = $1 FOR UPDATE")
            .bind(company)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(LedgerError::UnknownCompany(company));
    }
    let existing: Option<(i64, CompanyId, i64)> = sqlx::query_as(
        "SELECT id, company_id, available_delta FROM ledger_entries WHERE adjustment_id = $1 AND kind = 'adjustment'",
    )
    .bind(adjustment_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((entry_id, c, d)) = existing {
        return if c == company && d == delta.get() {
            Ok(Applied::replayed(Adjusted {
                adjustment_id,
                company,
                delta: d,
                entry_id,
            }))
        } else {
            Err(LedgerError::AdjustmentConflict(adjustment_id))
        };
    }
    let entry_id = post(
        &mut tx,
        Posting {
            company,
            kind: EntryKind::Adjustment,
            available_delta: delta.get(),
            reserved_delta: 0,
            hold: None,
            message: None,
            payment: None,
            adjustment: Some(adjustment_id),
            actor,
            reason: Some(reason),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::first(Adjusted {
        adjustment_id,
        company,
        delta: delta.get(),
        entry_id,
    }))
}
