//! Two-phase charging: reserve credits for a message, then commit (charge) or release them.

use std::time::Duration;

use sqlx::{Acquire, PgConnection, Postgres};

use super::posting::{Posting, post};
use super::{Applied, EntryKind, Hold, HoldStatus, LedgerError};
use crate::domain::{CompanyId, Credits, HoldId, MessageId};

const HOLD_COLUMNS: &str =
    "id, company_id, message_id, credits, status, charged, expires_at, created_at";
const ACTOR: &str = "ledger";

/// Holds `credits` of `company`'s available credits for `message` until `ttl` from now.
///
/// Idempotent on the message: while the message has an active hold, that hold is returned
/// (`replay`); once it is charged, `AlreadyCharged`. A released hold does not count, so a message
/// whose hold was released may reserve again. Fails with `InsufficientCredits` and changes nothing
/// when the balance cannot cover it.
pub async fn reserve<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    company: CompanyId,
    message: MessageId,
    credits: Credits,
    ttl: Duration,
) -> Result<Applied<Hold>, LedgerError> {
    if credits.is_zero() {
        return Err(LedgerError::NothingToReserve);
    }
    let mut tx = db.begin().await?;
    let inserted: Option<Hold> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO holds (id, company_id, message_id, credits, expires_at)
         SELECT $1, m.company_id, m.id, $4, now() + make_interval(secs => $5)
         FROM messages m WHERE m.id = $3 AND m.company_id = $2
         ON CONFLICT (message_id) WHERE status IN ('active', 'committed') DO NOTHING
         RETURNING {HOLD_COLUMNS}"
    )))
    .bind(HoldId::new())
    .bind(company)
    .bind(message)
    .bind(credits.get())
    .bind(ttl.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;

    let Some(hold) = inserted else {
        // Either the message already has a live hold, or it is not this company's message.
        let live = live_hold(&mut tx, message).await?;
        return match live {
            Some(h) if h.company_id != company => Err(LedgerError::UnknownMessage(message)),
            Some(h) if h.status == HoldStatus::Active => Ok(Applied::replayed(h)),
            Some(h) => Err(LedgerError::AlreadyCharged {
                message,
                hold: h.id,
            }),
            None => Err(LedgerError::UnknownMessage(message)),
        };
    };
    post(
        &mut tx,
        Posting {
            company,
            kind: EntryKind::Reserve,
            available_delta: -credits.get(),
            reserved_delta: credits.get(),
            hold: Some(hold.id),
            message: Some(message),
            payment: None,
            adjustment: None,
            actor: ACTOR,
            reason: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::first(hold))
}

/// Turns the hold into a charge of `actual` credits (1..=reserved) and returns the rest.
///
/// Idempotent: committing again with the same `actual` is a replay; with another amount it is
/// `HoldCommitted`. A released hold cannot be committed (`HoldReleased`).
pub async fn commit<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    hold: HoldId,
    actual: Credits,
) -> Result<Applied<Hold>, LedgerError> {
    let mut tx = db.begin().await?;
    let h = lock_hold(&mut tx, hold).await?;
    match h.status {
        HoldStatus::Committed if h.charged == Some(actual.get()) => {
            return Ok(Applied::replayed(h));
        }
        HoldStatus::Committed => {
            return Err(LedgerError::HoldCommitted {
                hold,
                charged: h.charged.unwrap_or_default(),
            });
        }
        HoldStatus::Released => return Err(LedgerError::HoldReleased(hold)),
        HoldStatus::Active => {}
    }
    if actual.is_zero() || actual > h.credits {
        return Err(LedgerError::CommitOutOfRange {
            actual: actual.get(),
            reserved: h.credits.get(),
        });
    }
    let committed = resolve(&mut tx, hold, HoldStatus::Committed, Some(actual.get())).await?;
    post(
        &mut tx,
        Posting {
            company: h.company_id,
            kind: EntryKind::Commit,
            available_delta: h.credits.get() - actual.get(),
            reserved_delta: -h.credits.get(),
            hold: Some(hold),
            message: Some(h.message_id),
            payment: None,
            adjustment: None,
            actor: ACTOR,
            reason: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::first(committed))
}

/// Voids the hold and returns its credits. Idempotent; a committed hold is `HoldCommitted`
/// (a charged message gets its credits back through `refund`).
pub async fn release<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    hold: HoldId,
) -> Result<Applied<Hold>, LedgerError> {
    let mut tx = db.begin().await?;
    let h = lock_hold(&mut tx, hold).await?;
    match h.status {
        HoldStatus::Released => return Ok(Applied::replayed(h)),
        HoldStatus::Committed => {
            return Err(LedgerError::HoldCommitted {
                hold,
                charged: h.charged.unwrap_or_default(),
            });
        }
        HoldStatus::Active => {}
    }
    let released = resolve(&mut tx, hold, HoldStatus::Released, None).await?;
    post(
        &mut tx,
        Posting {
            company: h.company_id,
            kind: EntryKind::Release,
            available_delta: h.credits.get(),
            reserved_delta: -h.credits.get(),
            hold: Some(hold),
            message: Some(h.message_id),
            payment: None,
            adjustment: None,
            actor: ACTOR,
            reason: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::first(released))
}

async fn live_hold(
    conn: &mut PgConnection,
    message: MessageId,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE message_id = $1 AND status IN ('active', 'committed')"
    )))
    .bind(message)
    .fetch_optional(conn)
    .await
}

async fn lock_hold(conn: &mut PgConnection, hold: HoldId) -> Result<Hold, LedgerError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1 FOR UPDATE"
    )))
    .bind(hold)
    .fetch_optional(conn)
    .await?
    .ok_or(LedgerError::UnknownHold(hold))
}

async fn resolve(
    conn: &mut PgConnection,
    hold: HoldId,
    status: HoldStatus,
    charged: Option<i64>,
) -> Result<Hold, sqlx::Error> {
    let status = match status {
        HoldStatus::Active => "active",
        HoldStatus::Committed => "committed",
        HoldStatus::Released => "released",
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE holds SET status = $2, charged = $3, resolved_at = now() WHERE id = $1 RETURNING {HOLD_COLUMNS}"
    )))
    .bind(hold)
    .bind(status)
    .bind(charged)
    .fetch_one(conn)
    .await
}
