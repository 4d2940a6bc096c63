//! Reading the ledger.

use sqlx::PgPool;

use super::{Balance, Entry, Hold, LedgerError};
use crate::domain::CompanyId;

/// The company's balance; `UnknownCompany` if it has none.
pub async fn balance(pool: &PgPool, company: CompanyId) -> Result<Balance, LedgerError> {
    sqlx::query_as(
        "SELECT company_id, available, reserved, total_purchased, total_sent, total_refunded, total_adjusted
         FROM balances WHERE company_id = $1",
    )
    .bind(company)
    .fetch_optional(pool)
    .await?
    .ok_or(LedgerError::UnknownCompany(company))
}

/// A page of the company's entries, newest first, strictly older than `before` when given.
pub async fn entries(
    pool: &PgPool,
    company: CompanyId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, kind, available_delta, reserved_delta, hold_id, message_id, payment_id, reason, actor, created_at
         FROM ledger_entries
         WHERE company_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(company)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Active holds past their expiry, oldest first: for the reconciler, which decides each one from
/// its message's outcome.
pub async fn expired_holds(pool: &PgPool, limit: i64) -> Result<Vec<Hold>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, company_id, message_id, credits, status, charged, expires_at, created_at
         FROM holds WHERE status = 'active' AND expires_at <= now()
         ORDER BY expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The message's active hold, if any.
pub async fn active_hold(
    db: impl sqlx::PgExecutor<'_>,
    message: crate::domain::MessageId,
) -> Result<Option<Hold>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, company_id, message_id, credits, status, charged, expires_at, created_at
         FROM holds WHERE message_id = $1 AND status = 'active'",
    )
    .bind(message)
    .fetch_optional(db)
    .await?)
}
