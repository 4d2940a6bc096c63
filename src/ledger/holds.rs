//! Two-phase charging: a hold is reserved for a message, then committed (charged) or released.
//! Reserving and committing are the send job's steps (`sending`: `send_begin_many` and
//! `send_finish_many`, one item or many); this module reads their answers into holds and
//! outcomes, and releases a hold (`ledger_release`, migrations/0008), which the send job's
//! failure path and the reconciler do one hold at a time: one round trip, atomic alone, or part
//! of the caller's transaction when given one.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Applied, Hold, LedgerError};
use crate::domain::{CompanyId, Credits, HoldId, MessageId};

impl Outcome {
    /// What `send_begin_many` said about reserving `credits` of `company` for `message`.
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

    /// What `send_finish_many` said about committing `actual` on `hold`.
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

/// Voids the hold and returns its credits (SQL `ledger_release`). Idempotent; a committed hold is
/// `HoldCommitted` (a charged message gets its credits back through `refund`). Releasing leaves
/// the message's status alone.
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

/// A row of type `ledger_hold_outcome` (`ledger_release`), or one item's row of the send steps
/// (the same columns after its position `n`): the outcome and, when there is one, the hold.
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
