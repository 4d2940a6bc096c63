//! Two-phase charging: reserve credits for a message, then commit (charge) or release them.
//! Each is one call of a SQL function (migrations/0008), so one round trip: atomic alone, or
//! part of the caller's transaction when given one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Applied, Hold, LedgerError};
use crate::domain::{CompanyId, Credits, HoldId, MessageId};

/// Holds `credits` of `company`'s available credits for `message` until `ttl` from now.
///
/// Idempotent on the message: while the message has an active hold, that hold is returned
/// (`replay`); once it is charged, `AlreadyCharged`. A released hold does not count, so a message
/// whose hold was released may reserve again. Fails with `InsufficientCredits` and changes nothing
/// when the balance cannot cover it.
pub async fn reserve(
    conn: &mut PgConnection,
    company: CompanyId,
    message: MessageId,
    credits: Credits,
    ttl: Duration,
) -> Result<Applied<Hold>, LedgerError> {
    if credits.is_zero() {
        return Err(LedgerError::NothingToReserve);
    }
    let out: Outcome = sqlx::query_as("SELECT * FROM ledger_reserve($1, $2, $3, $4, $5)")
        .bind(HoldId::new())
        .bind(company)
        .bind(message)
        .bind(credits.get())
        .bind(ttl.as_secs_f64())
        .fetch_one(&mut *conn)
        .await?;
    out.reserved(company, message, credits)
}

impl Outcome {
    /// What `ledger_reserve` (or `send_begin`) said, for `message`.
    pub(super) fn reserved(
        self,
        company: CompanyId,
        message: MessageId,
        credits: Credits,
    ) -> Result<Applied<Hold>, LedgerError> {
        let out = self;
        match out.outcome.as_str() {
            "reserved" => Ok(Applied::first(out.hold()?)),
            "replay" => Ok(Applied::replayed(out.hold()?)),
            "already_charged" => Err(LedgerError::AlreadyCharged {
                message,
                hold: out.hold()?.id,
            }),
            "unknown_message" => Err(LedgerError::UnknownMessage(message)),
            "insufficient" => match out.available {
                Some(available) => Err(LedgerError::InsufficientCredits {
                    needed: credits.get(),
                    available,
                }),
                None => Err(LedgerError::UnknownCompany(company)),
            },
            other => Err(out.unexpected(other)),
        }
    }
}

/// Turns the hold into a charge of `actual` credits (1..=reserved) and returns the rest.
///
/// Idempotent: committing again with the same `actual` is a replay; with another amount it is
/// `HoldCommitted`. A released hold cannot be committed (`HoldReleased`). An expired hold can.
pub async fn commit(
    conn: &mut PgConnection,
    hold: HoldId,
    actual: Credits,
) -> Result<Applied<Hold>, LedgerError> {
    let out: Outcome = sqlx::query_as("SELECT * FROM ledger_commit($1, $2)")
        .bind(hold)
        .bind(actual.get())
        .fetch_one(&mut *conn)
        .await?;
    out.committed(hold, actual)
}

impl Outcome {
    /// What `ledger_commit` (or `send_finish`) said about committing `actual` on `hold`.
    pub(super) fn committed(
        self,
        hold: HoldId,
        actual: Credits,
    ) -> Result<Applied<Hold>, LedgerError> {
        let out = self;
        match out.outcome.as_str() {
            "committed" => Ok(Applied::first(out.hold()?)),
            "replay" => Ok(Applied::replayed(out.hold()?)),
            "hold_committed" => Err(LedgerError::HoldCommitted {
                hold,
                charged: out.charged.unwrap_or_default(),
            }),
            "hold_released" => Err(LedgerError::HoldReleased(hold)),
            "out_of_range" => Err(LedgerError::CommitOutOfRange {
                actual: actual.get(),
                reserved: out.credits.unwrap_or_default(),
            }),
            "unknown_hold" => Err(LedgerError::UnknownHold(hold)),
            other => Err(out.unexpected(other)),
        }
    }
}

/// Voids the hold and returns its credits. Idempotent; a committed hold is `HoldCommitted`
/// (a charged message gets its credits back through `refund`).
pub async fn release(conn: &mut PgConnection, hold: HoldId) -> Result<Applied<Hold>, LedgerError> {
    let out: Outcome = sqlx::query_as("SELECT * FROM ledger_release($1)")
        .bind(hold)
        .fetch_one(&mut *conn)
        .await?;
    match out.outcome.as_str() {
        "released" => Ok(Applied::first(out.hold()?)),
        "replay" => Ok(Applied::replayed(out.hold()?)),
        "hold_committed" => Err(LedgerError::HoldCommitted {
            hold,
            charged: out.charged.unwrap_or_default(),
        }),
        "unknown_hold" => Err(LedgerError::UnknownHold(hold)),
        other => Err(out.unexpected(other)),
    }
}

/// A row of type `ledger_hold_outcome`: the outcome and, when there is one, the hold.
#[derive(sqlx::FromRow)]
pub(super) struct Outcome {
    pub(super) outcome: String,
    id: Option<HoldId>,
    company_id: Option<CompanyId>,
    message_id: Option<MessageId>,
    credits: Option<i64>,
    status: Option<String>,
    charged: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
    available: Option<i64>,
}

impl Outcome {
    fn hold(&self) -> Result<Hold, LedgerError> {
        let missing = || self.unexpected("a hold with missing fields");
        Ok(Hold {
            id: self.id.ok_or_else(missing)?,
            company_id: self.company_id.ok_or_else(missing)?,
            message_id: self.message_id.ok_or_else(missing)?,
            credits: self
                .credits
                .and_then(|c| Credits::new(c).ok())
                .ok_or_else(missing)?,
            status: self
                .status
                .clone()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(missing)?,
            charged: self.charged,
            expires_at: self.expires_at.ok_or_else(missing)?,
            created_at: self.created_at.ok_or_else(missing)?,
        })
    }

    pub(super) fn unexpected(&self, what: &str) -> LedgerError {
        LedgerError::Database(sqlx::Error::Protocol(format!(
            "ledger function returned {what} ({})",
            self.outcome
        )))
    }
}
