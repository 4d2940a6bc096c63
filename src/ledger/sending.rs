//! The send job's two ledger steps, the only way credits are reserved and charged: reserve and
//! mark the message `sending` (`begin_sends`, SQL `send_begin_many`, migrations/0018); charge
//! and mark it `sent` (`finish_sends`, SQL `send_finish_many`, migrations/0014). The send
//! workers call them for many messages at once (group commit); a single reservation or charge is
//! a batch of one. One statement runs every item, so a batch costs one round trip and one
//! commit; each item has exactly the effect (and the idempotency) it would have alone, and an
//! item's refusal does not touch the others. A database error fails the whole batch, and every
//! caller retries. The functions lock every row they touch first, in one order, so concurrent
//! batches do not deadlock on each other. Given a connection inside the caller's transaction,
//! a batch is part of it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::holds::Outcome;
use super::{Applied, Hold, LedgerError};
use crate::domain::{CompanyId, Credits, HoldId, MessageId};

/// Reserve `credits` of `company` for `message` and mark it `sending`. Within a batch, items
/// take credits in order, as one call after another would.
#[derive(Debug, Clone)]
pub struct BeginSend {
    pub company: CompanyId,
    pub message: MessageId,
    pub credits: Credits,
    /// How long the hold may stay open before the reconciler looks at it.
    pub ttl: Duration,
    /// The message's `send_attempt_started_at` as this run read it. The step claims the send
    /// attempt only if no other run has started one since; otherwise the other run sends.
    pub seen: Option<DateTime<Utc>>,
    /// This run's attempt, recorded on the message with the claim: writing the attempt's outcome
    /// is fenced on it (`messages::store::requeue_attempt`, `lock_attempt`).
    pub attempt: uuid::Uuid,
    /// The provider account the attempt goes through (a Twilio account SID), recorded on the
    /// message: an unanswered send is looked up at that account.
    pub account: Option<String>,
}

/// `Ok(None)`: nothing to send, nothing written: the message is no longer queued or sending
/// (an earlier run settled it: sent, failed...), or another run claimed the attempt after this
/// one read it. `Ok(Some)`: the hold, and the message is now `sending` with this run's attempt;
/// a replay when the message already had an active hold (no credits move). A released hold does
/// not count, so a message whose hold was released reserves afresh. Otherwise why not:
/// `InsufficientCredits` (with what the company had left at the item's turn; nothing written),
/// `UnknownMessage` (no such message of this company), `AlreadyCharged` (its hold is committed
/// while the message is still queued or sending).
pub type Begun = Result<Option<Applied<Hold>>, LedgerError>;

/// Charge `charge` credits on `hold` and mark its message `sent` with the provider's record.
#[derive(Debug, Clone)]
pub struct FinishSend {
    pub hold: HoldId,
    pub charge: Credits,
    pub provider: String,
    pub provider_id: String,
    pub segments: i32,
    /// Credits the provider's segment count implied beyond the hold (recorded, not charged).
    pub uncharged: i64,
    pub price: Option<Decimal>,
    pub price_currency: Option<String>,
}

/// The hold, committed: charged `charge` (1..=its credits), the rest returned to `available`; an
/// expired hold can still be committed. A replay when it was already committed for the same
/// amount (no credits move). Otherwise `HoldCommitted` (for another amount), `HoldReleased`,
/// `CommitOutOfRange` or `UnknownHold`. The message is marked `sent` on a first commit and on a
/// replay, if it is still queued or sending.
pub type Finished = Result<Applied<Hold>, LedgerError>;

/// Runs `items` in one statement; the answers are in the order of `items`.
pub async fn begin_sends(
    conn: &mut PgConnection,
    items: &[BeginSend],
) -> Result<Vec<Begun>, sqlx::Error> {
    let rows: Vec<Outcome> =
        sqlx::query_as("SELECT * FROM send_begin_many($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(items.iter().map(|_| HoldId::new()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.company).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.message).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.credits.get()).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.ttl.as_secs_f64())
                    .collect::<Vec<_>>(),
            )
            .bind(items.iter().map(|i| i.seen).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.attempt).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.account.as_deref())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *conn)
            .await?;
    answers(items, rows, |item, out| match out.outcome.as_str() {
        "settled" | "taken" => Ok(None),
        _ => out
            .reserved(item.company, item.message, item.credits)
            .map(Some),
    })
}

/// Runs `items` in one statement; the answers are in the order of `items`.
pub async fn finish_sends(
    conn: &mut PgConnection,
    items: &[FinishSend],
) -> Result<Vec<Finished>, sqlx::Error> {
    let rows: Vec<Outcome> =
        sqlx::query_as("SELECT * FROM send_finish_many($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(items.iter().map(|i| i.hold).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.charge.get()).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.provider.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.provider_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(items.iter().map(|i| i.segments).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.uncharged).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.price).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.price_currency.as_deref())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *conn)
            .await?;
    answers(items, rows, |item, out| {
        out.committed(item.hold, item.charge)
    })
}

/// One answer per item, in order (the functions return one row per item, ordered by position).
fn answers<T, A>(
    items: &[T],
    rows: Vec<Outcome>,
    answer: impl Fn(&T, Outcome) -> A,
) -> Result<Vec<A>, sqlx::Error> {
    if rows.len() != items.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a send step answered {} rows for {} items",
            rows.len(),
            items.len()
        )));
    }
    Ok(items.iter().zip(rows).map(|(i, o)| answer(i, o)).collect())
}
