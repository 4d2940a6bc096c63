//! The credit ledger (DESIGN.md section 3): two-phase charging with holds, purchases, refunds,
//! operator adjustments and an audit of every invariant.
//!
//! Guarantees, for every function here:
//! - **Transactional.** Each call takes a connection: alone it runs in its own transaction; on a
//!   connection inside the caller's transaction (`&mut *tx`) it is part of it (one statement, or
//!   a savepoint of it for those of several), so it combines with a status change of the message
//!   or payment and either all of it happens or none. (A concrete `&mut PgConnection` rather
//!   than sqlx's generic `Acquire` keeps the callers' futures `Send`, which apalis handlers
//!   need.)
//! - **Idempotent on its business key** (payment, hold, message, adjustment id): repeating a call
//!   returns the first outcome with `replay: true` and moves no credits.
//! - **Safe under concurrent callers**: balance changes are conditional updates of one row, and
//!   resolutions lock the hold; unique indexes back every "at most once" in the schema.
//! - **Append-only**: entries are never updated or deleted (a trigger refuses it); a refund or a
//!   reversal is a new entry. The materialised balance and the entries change in one statement:
//!   `ledger_post` for single operations; the send path's batch functions (`sending`) write the
//!   same entries for many holds and change each balance row once by their sum.
//! - **One round trip on the hot path**: reserve and commit are the send job's batch steps
//!   (`begin_sends` -> SQL `send_begin_many`, `finish_sends` -> `send_finish_many`; one call per
//!   batch, a single message being a batch of one), release is one call of `ledger_release`.
//!   They return their outcome instead of raising, so a refusal writes nothing and never aborts
//!   the caller's transaction. Which migration holds each SQL function's current definition:
//!   migrations/README.md.

mod adjustments;
mod audit;
mod holds;
mod posting;
mod purchases;
mod queries;
mod refunds;
mod sending;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{CompanyId, Credits, HoldId, MessageId, PaymentId};

pub use adjustments::{Adjusted, adjust};
pub use audit::{
    AuditReport, Checkpoint, Scope, Violation, audit, audit_and_checkpoint, latest_checkpoint,
};
pub use holds::release;
pub use purchases::{Credited, Reversed, credit_purchase, reverse_purchase};
pub use queries::{active_hold, balance, entries, expired_holds};
pub use refunds::{Refunded, refund};
pub use sending::{BeginSend, Begun, FinishSend, Finished, begin_sends, finish_sends};

/// The result of an idempotent operation: `replay` is true when it had already happened and this
/// call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<T> {
    pub value: T,
    pub replay: bool,
}

impl<T> Applied<T> {
    fn first(value: T) -> Self {
        Applied {
            value,
            replay: false,
        }
    }

    fn replayed(value: T) -> Self {
        Applied {
            value,
            replay: true,
        }
    }
}

/// A company's credits: the materialised sum of its ledger entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Balance {
    pub company_id: CompanyId,
    /// Credits that can be spent now.
    #[sqlx(try_from = "i64")]
    pub available: Credits,
    /// Credits held for messages in flight.
    #[sqlx(try_from = "i64")]
    pub reserved: Credits,
    pub total_purchased: i64,
    /// Credits charged for messages.
    pub total_sent: i64,
    pub total_refunded: i64,
    /// Net operator adjustments (may be negative).
    pub total_adjusted: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Active,
    Committed,
    Released,
}

impl TryFrom<String> for HoldStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "active" => Ok(HoldStatus::Active),
            "committed" => Ok(HoldStatus::Committed),
            "released" => Ok(HoldStatus::Released),
            _ => Err(format!("unknown hold status {s:?}")),
        }
    }
}

/// Credits reserved for one message until it is committed (charged) or released.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Hold {
    pub id: HoldId,
    pub company_id: CompanyId,
    pub message_id: MessageId,
    #[sqlx(try_from = "i64")]
    pub credits: Credits,
    #[sqlx(try_from = "String")]
    pub status: HoldStatus,
    /// Set once committed: what the message actually cost.
    pub charged: Option<i64>,
    /// After this the hold is a candidate for the reconciler, which releases it only once the
    /// message's outcome is known; an expired hold can still be committed.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Kinds of ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Purchase,
    Reserve,
    Commit,
    Release,
    Refund,
    Adjustment,
    PurchaseReversal,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Purchase => "purchase",
            EntryKind::Reserve => "reserve",
            EntryKind::Commit => "commit",
            EntryKind::Release => "release",
            EntryKind::Refund => "refund",
            EntryKind::Adjustment => "adjustment",
            EntryKind::PurchaseReversal => "purchase_reversal",
        }
    }
}

impl TryFrom<String> for EntryKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [
            EntryKind::Purchase,
            EntryKind::Reserve,
            EntryKind::Commit,
            EntryKind::Release,
            EntryKind::Refund,
            EntryKind::Adjustment,
            EntryKind::PurchaseReversal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown entry kind {s:?}"))
    }
}

/// One append-only ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Entry {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub kind: EntryKind,
    /// Change of the available credits.
    pub available_delta: i64,
    /// Change of the reserved credits.
    pub reserved_delta: i64,
    pub hold_id: Option<HoldId>,
    pub message_id: Option<MessageId>,
    pub payment_id: Option<PaymentId>,
    pub reason: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// Why a ledger operation was refused. Database errors are the only ones worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient credits: {needed} needed, {available} available")]
    InsufficientCredits { needed: i64, available: i64 },
    #[error("unknown company {0}")]
    UnknownCompany(CompanyId),
    #[error("unknown message {0} for this company")]
    UnknownMessage(MessageId),
    #[error("unknown hold {0}")]
    UnknownHold(HoldId),
    #[error("unknown payment {0}")]
    UnknownPayment(PaymentId),
    #[error("message {message} is already charged (hold {hold})")]
    AlreadyCharged { message: MessageId, hold: HoldId },
    #[error("hold {0} was released")]
    HoldReleased(HoldId),
    #[error("hold {hold} was already committed for {charged} credits")]
    HoldCommitted { hold: HoldId, charged: i64 },
    #[error("cannot commit {actual} credits on a hold of {reserved}")]
    CommitOutOfRange { actual: i64, reserved: i64 },
    #[error("reserve needs a positive number of credits")]
    NothingToReserve,
    #[error("message {0} was never charged, so there is nothing to refund")]
    NotCharged(MessageId),
    #[error("payment {payment} is {status}, not paid")]
    PaymentNotPaid { payment: PaymentId, status: String },
    #[error("adjustment {0} was already recorded with different values")]
    AdjustmentConflict(uuid::Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
