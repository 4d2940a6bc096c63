//! Single ledger operations move credits through the SQL function `ledger_post`
//! (migrations/0008): it updates the materialised balance and appends the entry together. (The
//! send path's batch functions, migrations/0014, write the same entries for many holds at once.)
//! This wraps it for the Rust callers.

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

/// Applies `p` and returns the entry id. A posting that would take either bucket below zero
/// changes nothing and gives `InsufficientCredits`; concurrent postings serialise on the
/// balance row.
pub(super) async fn post(conn: &mut PgConnection, p: Posting<'_>) -> Result<i64, LedgerError> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(p.company)
            .bind(p.kind.as_str())
            .bind(p.available_delta)
            .bind(p.reserved_delta)
            .bind(p.hold)
            .bind(p.message)
            .bind(p.payment)
            .bind(p.adjustment)
            .bind(p.actor)
            .bind(p.reason)
            .fetch_one(&mut *conn)
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
