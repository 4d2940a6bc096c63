//! Giving a charged message's credits back.

use sqlx::{Connection, PgConnection};

use super::posting::{Posting, post};
use super::{Applied, EntryKind, LedgerError};
use crate::domain::{CompanyId, MessageId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub message: MessageId,
    pub company: CompanyId,
    pub credits: i64,
    pub entry_id: i64,
}

/// Returns what `message` was charged, exactly once whoever asks and however often (later calls
/// are replays). A message that was never charged gives `NotCharged`.
pub async fn refund(
    conn: &mut PgConnection,
    message: MessageId,
    reason: &str,
    actor: &str,
) -> Result<Applied<Refunded>, LedgerError> {
    let mut tx = conn.begin().await?;
    // Locking the committed hold serialises concurrent refunds of the same message.
    let charge: Option<(CompanyId, i64)> =
        sqlx::query_as("SELECT company_id, charged FROM holds WHERE message_id = $1 AND status = 'committed' FOR UPDATE")
            .bind(message)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((company, charged)) = charge else {
        return Err(LedgerError::NotCharged(message));
    };
    let existing: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, available_delta FROM ledger_entries WHERE message_id = $1 AND kind = 'refund'",
    )
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((entry_id, credits)) = existing {
        return Ok(Applied::replayed(Refunded {
            message,
            company,
            credits,
            entry_id,
        }));
    }
    let entry_id = post(
        &mut tx,
        Posting {
            company,
            kind: EntryKind::Refund,
            available_delta: charged,
            reserved_delta: 0,
            hold: None,
            message: Some(message),
            payment: None,
            adjustment: None,
            actor,
            reason: Some(reason),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::first(Refunded {
        message,
        company,
        credits: charged,
        entry_id,
    }))
}
