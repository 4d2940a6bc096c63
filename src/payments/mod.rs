//! Buying credits (DESIGN.md section 6): a payment row per purchase, moved forward only, by
//! M-Pesa STK Push, Stripe Checkout or an operator-approved bank transfer.
//!
//! Money is believed only when the provider says so to a request we made: an M-Pesa callback
//! and a Stripe event are hints that enqueue `VerifyPurchase`, which asks the provider (STK Push
//! Query, a re-read Checkout Session) and credits through [`crate::ledger::credit_purchase`],
//! idempotent on the payment. Every status change is recorded in `payment_events` with its actor.

mod bank;
mod disputes;
mod mpesa;
pub mod packages;
mod providers;
pub mod refunds;
mod reversal;
mod start;
mod store;
mod stripe;
mod verify;
mod vodacom;

pub use bank::{Approval, BankDetails, approve_transfer, reject_transfer};
pub use mpesa::{CallbackOutcome, record_mpesa_callback};
pub use providers::{Offered, PaymentProviders, vodacom_client};
pub use refunds::{RefundError, refund_purchase};
pub use start::{PurchaseRequest, StartError, Started, start_purchase};
pub use store::{
    Payment, PaymentEvent, due_for_check, events, find, find_for_company, list_for_company,
};
pub use stripe::{StripeOutcome, handle_stripe_event};
pub use verify::{Verified, verify};
pub use vodacom::{
    conversation_id as vodacom_conversation_id, enqueue_start, record_vodacom_result,
};

use serde::{Deserialize, Serialize};

/// How a purchase is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// M-Pesa: Vodacom's OpenAPI for TZS (Tanzanian wallets), Safaricom Daraja's STK Push for
    /// KES (Kenyan wallets).
    Mpesa,
    /// A card through Stripe Checkout.
    Card,
    /// A bank transfer an operator approves.
    BankTransfer,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mpesa => "mpesa",
            Method::Card => "card",
            Method::BankTransfer => "bank_transfer",
        }
    }
}

impl TryFrom<String> for Method {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "mpesa" => Ok(Method::Mpesa),
            "card" => Ok(Method::Card),
            "bank_transfer" => Ok(Method::BankTransfer),
            _ => Err(format!("unknown payment method {s:?}")),
        }
    }
}

/// Where a payment is. It only moves forward, by the moves of [`TRANSITIONS`]: `initiated ->
/// pending -> paid -> credited` (`credited -> refunded` when the money goes back), or to one of
/// the ends `failed`, `cancelled`, `expired` before it is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Initiated,
    Pending,
    Paid,
    Credited,
    Failed,
    Cancelled,
    Expired,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiated => "initiated",
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Credited => "credited",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Refunded => "refunded",
        }
    }

    /// Whether `self -> to` is a move of [`TRANSITIONS`].
    pub fn can_move_to(self, to: Status) -> bool {
        TRANSITIONS.contains(&(self, to))
    }

    /// Still waiting for money (nothing credited, not ended).
    pub fn is_open(self) -> bool {
        matches!(self, Status::Initiated | Status::Pending)
    }
}

/// Every move a payment's status makes. All but one are written by `store::set_status`, under
/// the payment's row lock and with a `payment_events` row: the flows (start, M-Pesa callback,
/// Stripe events, bank approval, verification) ask it for a move. `paid -> credited` is written
/// by `ledger::credit_purchase`, in the statement that credits the company (one joint step).
pub const TRANSITIONS: [(Status, Status); 11] = {
    use Status::*;
    [
        (Initiated, Pending),
        (Initiated, Paid),
        (Initiated, Failed),
        (Initiated, Cancelled),
        (Initiated, Expired),
        (Pending, Paid),
        (Pending, Failed),
        (Pending, Cancelled),
        (Pending, Expired),
        (Paid, Credited),
        (Credited, Refunded),
    ]
};

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        use Status::*;
        [
            Initiated, Pending, Paid, Credited, Failed, Cancelled, Expired, Refunded,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

/// What went wrong moving a payment.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no payment {0}")]
    NotFound(crate::domain::PaymentId),
    #[error("payment {id} is {from}, it cannot become {to}")]
    Transition {
        id: crate::domain::PaymentId,
        from: &'static str,
        to: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    /// The provider could not answer the check; `retryable` when asking later may work.
    #[error("{detail}")]
    Provider { retryable: bool, detail: String },
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn only_forward_moves() {
        assert!(Initiated.can_move_to(Pending));
        assert!(Pending.can_move_to(Paid));
        assert!(Paid.can_move_to(Credited));
        assert!(Credited.can_move_to(Refunded));
        assert!(Pending.can_move_to(Cancelled));
        for end in [Failed, Cancelled, Expired, Refunded] {
            for to in [Initiated, Pending, Paid, Credited, Failed] {
                assert!(!end.can_move_to(to), "{end:?} -> {to:?}");
            }
        }
        assert!(!Paid.can_move_to(Pending));
        assert!(!Credited.can_move_to(Paid));
        assert!(
            !Paid.can_move_to(Failed),
            "money that arrived is credited, never failed"
        );
        assert!(
            !Pending.can_move_to(Credited),
            "crediting goes through paid"
        );
    }
}
