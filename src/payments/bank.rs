//! Bank transfers: the company pays into our account quoting the payment's reference, and an
//! operator who sees the money arrive approves the payment with the amount and the bank's own
//! reference (or rejects it). Approval makes the payment `paid`; `VerifyPurchase` credits it.

use rust_decimal::Decimal;
use sqlx::PgPool;

use super::store::{self, Payment};
use super::{Method, PaymentError, Status};
use crate::domain::PaymentId;
use crate::faults;

pub use crate::config::BankAccount as BankDetails;

/// What the operator saw arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub amount: Decimal,
    pub currency: String,
    /// The bank's reference of the incoming transfer: one transfer pays one payment.
    pub bank_reference: String,
    /// Credits to grant instead of the package's: required to accept an under-payment.
    pub credits: Option<i64>,
}

/// Approves a pending transfer. Approving it again with the same bank reference changes
/// nothing and returns it (so the operator may safely retry); a different reference, another
/// payment's reference, the wrong currency, or less than the price without explicit credits
/// are refused and change nothing.
pub async fn approve_transfer(
    pool: &PgPool,
    id: PaymentId,
    approval: &Approval,
    actor: &str,
) -> Result<Payment, PaymentError> {
    let bank_reference = approval.bank_reference.trim();
    if bank_reference.is_empty() || bank_reference.len() > 100 {
        return Err(PaymentError::Invalid(
            "bank_reference must be 1 to 100 characters".into(),
        ));
    }
    if approval.amount <= Decimal::ZERO {
        return Err(PaymentError::Invalid("amount must be positive".into()));
    }
    if approval.credits.is_some_and(|c| c <= 0) {
        return Err(PaymentError::Invalid("credits must be positive".into()));
    }
    let receipt = format!("bank:{bank_reference}");
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if p.method != Method::BankTransfer {
        return Err(PaymentError::Invalid(format!(
            "payment {id} is a {} payment, not a bank transfer",
            p.method.as_str()
        )));
    }
    if matches!(p.status, Status::Paid | Status::Credited | Status::Refunded) {
        return if p.receipt.as_deref() == Some(receipt.as_str()) {
            Ok(p)
        } else {
            Err(PaymentError::Invalid(format!(
                "payment {id} was already approved with another bank reference"
            )))
        };
    }
    if !p.status.is_open() {
        return Err(PaymentError::Transition {
            id,
            from: p.status.as_str(),
            to: Status::Paid.as_str(),
        });
    }
    if !approval.currency.eq_ignore_ascii_case(&p.currency) {
        return Err(PaymentError::Invalid(format!(
            "the transfer was asked in {}, not {}",
            p.currency, approval.currency
        )));
    }
    if approval.amount < p.amount && approval.credits.is_none() {
        return Err(PaymentError::Invalid(format!(
            "under-payment: {} {} received of {} {}; state the credits to grant explicitly",
            approval.amount, p.currency, p.amount, p.currency
        )));
    }
    let used: Option<PaymentId> = sqlx::query_scalar("SELECT id FROM payments WHERE receipt = $1")
        .bind(&receipt)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(other) = used {
        return Err(PaymentError::Invalid(format!(
            "bank reference {bank_reference:?} already paid payment {other}"
        )));
    }
    sqlx::query(
        "UPDATE payments SET amount_received = $2, bank_reference = $3, receipt = $4, credits_granted = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(approval.amount)
    .bind(bank_reference)
    .bind(&receipt)
    .bind(approval.credits)
    .execute(&mut *tx)
    .await?;
    let currency = p.currency.clone();
    store::set_status(
        &mut tx,
        &mut p,
        Status::Paid,
        actor,
        serde_json::json!({
            "amount": approval.amount.to_string(),
            "currency": currency,
            "bank_reference": bank_reference,
            "credits": approval.credits,
        }),
    )
    .await?;
    // One transaction: the approval's one write. The credit follows (the caller enqueues
    // `VerifyPurchase`, or the CLI runs it).
    tx.commit().await?;
    faults::point!(faults::BANK_BETWEEN_WRITES);
    store::find(pool, id)
        .await?
        .ok_or(PaymentError::NotFound(id))
}

/// Rejects a transfer that will not be honoured (no money came, the wrong amount was sent
/// back). Rejecting an already rejected one is a no-op; a paid one cannot be rejected.
pub async fn reject_transfer(
    pool: &PgPool,
    id: PaymentId,
    reason: &str,
    actor: &str,
) -> Result<Payment, PaymentError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(PaymentError::Invalid(
            "reason must be 1 to 500 characters".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if p.method != Method::BankTransfer {
        return Err(PaymentError::Invalid(format!(
            "payment {id} is not a bank transfer"
        )));
    }
    if p.status == Status::Failed {
        return Ok(p);
    }
    if !p.status.is_open() {
        return Err(PaymentError::Transition {
            id,
            from: p.status.as_str(),
            to: Status::Failed.as_str(),
        });
    }
    store::end(
        &mut tx,
        &mut p,
        Status::Failed,
        &format!("rejected by the operator: {reason}"),
        actor,
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}
