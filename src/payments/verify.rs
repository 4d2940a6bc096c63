//! `VerifyPurchase`: ask the provider whether the money arrived, and credit only if it did, in
//! full, in the right currency. Callbacks and events only say "look now"; what we credit on is
//! the provider's answer to our own authenticated request. Safe to run any number of times: the
//! payment row is locked while it changes, and crediting is idempotent on the payment.

use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use super::store::{self, Payment};
use super::{Method, PaymentError, PaymentProviders, Status};
use crate::domain::{Currency, Money, PaymentId};
use crate::faults;
use crate::ledger;
use crate::providers::mpesa::StkQuery;

/// What a verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The company has the credits (now, or from an earlier run when `replay`).
    Credited { credits: i64, replay: bool },
    /// The payment ended without money (now or before).
    Ended(Status),
    /// No answer yet. `recheck_in`: look again then (an M-Pesa push still being processed);
    /// `None`: wait for a signal (an operator, a Stripe event).
    Waiting { recheck_in: Option<Duration> },
}

pub async fn verify(
    pool: &PgPool,
    providers: &PaymentProviders,
    id: PaymentId,
) -> Result<Verified, PaymentError> {
    let p = store::find(pool, id)
        .await?
        .ok_or(PaymentError::NotFound(id))?;
    match p.status {
        Status::Credited | Status::Refunded => Ok(Verified::Credited {
            credits: p.credits_due(),
            replay: true,
        }),
        Status::Failed | Status::Cancelled | Status::Expired => Ok(Verified::Ended(p.status)),
        Status::Paid => {
            let mut tx = pool.begin().await?;
            let mut p = store::lock(&mut tx, id).await?;
            let v = credit(&mut tx, &mut p, "verify_purchase").await?;
            tx.commit().await?;
            Ok(v)
        }
        Status::Initiated | Status::Pending => match p.method {
            Method::BankTransfer => Ok(Verified::Waiting { recheck_in: None }),
            Method::Mpesa if p.is_vodacom() => super::vodacom::verify(pool, providers, p).await,
            Method::Mpesa => verify_mpesa(pool, providers, p).await,
            Method::Card => verify_card(pool, providers, p).await,
        },
    }
}

async fn verify_mpesa(
    pool: &PgPool,
    providers: &PaymentProviders,
    p: Payment,
) -> Result<Verified, PaymentError> {
    let expired = p.past_expiry();
    let Some(checkout) = p.provider_ref.clone() else {
        // The push was never confirmed and no callback has named it: nothing to ask about.
        return if expired {
            end(pool, p.id, Status::Expired, "no answer from M-Pesa in time").await
        } else {
            Ok(Verified::Waiting {
                recheck_in: Some(providers.mpesa_recheck),
            })
        };
    };
    let client = providers
        .mpesa
        .as_ref()
        .ok_or_else(|| PaymentError::Provider {
            retryable: true,
            detail: "M-Pesa is not configured in this process".into(),
        })?;
    let answer = match client.stk_query(&checkout).await {
        Ok(a) => a,
        Err(e) if expired => {
            return expire_unconfirmed(
                pool,
                p.id,
                &format!("STK Push Query failed at expiry: {e}"),
                "M-Pesa could not confirm it in time",
            )
            .await;
        }
        Err(e) => {
            return Err(PaymentError::Provider {
                retryable: e.is_transient(),
                detail: format!("STK Push Query: {e}"),
            });
        }
    };
    faults::point!(faults::PURCHASE_AFTER_CONFIRM);
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, p.id).await?;
    let v = match answer {
        StkQuery::Pending if expired => {
            end_locked(
                &mut tx,
                &mut p,
                Status::Expired,
                "M-Pesa still processing at expiry",
            )
            .await?
        }
        StkQuery::Pending => Verified::Waiting {
            recheck_in: Some(providers.mpesa_recheck),
        },
        StkQuery::Completed { result_code: 0, .. } => {
            if !p.status.is_open() {
                return settled(p);
            }
            if let Some(got) = p.callback_amount.filter(|got| *got != p.amount) {
                let reason = format!(
                    "amount mismatch: M-Pesa reported {got} {}, the payment asked {} {}",
                    p.currency, p.amount, p.currency
                );
                store::flag(&mut tx, &mut p, &reason).await?;
                end_locked(&mut tx, &mut p, Status::Failed, &reason).await?
            } else {
                let receipt = p.callback_receipt.clone();
                let amount = p.callback_amount.unwrap_or(p.amount);
                pay_and_credit(&mut tx, &mut p, receipt.as_deref(), amount, "mpesa").await?
            }
        }
        StkQuery::Completed {
            result_code,
            result_desc,
        } => {
            let to = match result_code {
                1032 => Status::Cancelled,
                1037 | 1019 => Status::Expired,
                _ => Status::Failed,
            };
            end_locked(
                &mut tx,
                &mut p,
                to,
                &format!("M-Pesa result {result_code}: {result_desc}"),
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(v)
}

async fn verify_card(
    pool: &PgPool,
    providers: &PaymentProviders,
    p: Payment,
) -> Result<Verified, PaymentError> {
    let Some(session_id) = p.provider_ref.clone() else {
        return if p.past_expiry() {
            end(
                pool,
                p.id,
                Status::Expired,
                "no Checkout Session was created",
            )
            .await
        } else {
            Ok(Verified::Waiting { recheck_in: None })
        };
    };
    let client = providers
        .stripe
        .as_ref()
        .ok_or_else(|| PaymentError::Provider {
            retryable: true,
            detail: "Stripe is not configured in this process".into(),
        })?;
    let session = match client.retrieve_checkout_session(&session_id).await {
        Ok(session) => session,
        // Refused for good (a revoked key, a session of another Stripe account) once the
        // payment's time is up: end it for the operator to look at, rather than asking again,
        // and failing again, on every sweep. A passing error is retried as before.
        Err(e) if !e.is_retryable() && p.past_expiry() => {
            return expire_unconfirmed(
                pool,
                p.id,
                &format!("Checkout Session {session_id} unreadable at expiry: {e}"),
                "Stripe could not confirm it in time",
            )
            .await;
        }
        Err(e) => {
            return Err(PaymentError::Provider {
                retryable: e.is_retryable(),
                detail: format!("retrieving Checkout Session {session_id}: {e}"),
            });
        }
    };
    faults::point!(faults::PURCHASE_AFTER_CONFIRM);
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, p.id).await?;
    if !p.status.is_open() {
        return settled(p);
    }
    let v = match (session.status.as_str(), session.payment_status.as_str()) {
        (_, "paid") => {
            let currency: Currency = p
                .currency
                .parse()
                .map_err(|_| PaymentError::Invalid(format!("stored currency {:?}", p.currency)))?;
            let expected = Money::new(p.amount, currency).to_minor_units();
            let same_currency = session
                .currency
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(&p.currency));
            if expected.is_some() && session.amount_total == expected && same_currency {
                let receipt = session
                    .payment_intent
                    .clone()
                    .unwrap_or_else(|| session.id.clone());
                if let Some(pi) = &session.payment_intent {
                    sqlx::query("UPDATE payments SET payment_intent = $2 WHERE id = $1")
                        .bind(p.id)
                        .bind(pi)
                        .execute(&mut *tx)
                        .await?;
                    p.payment_intent = Some(pi.clone());
                }
                let amount = p.amount;
                pay_and_credit(&mut tx, &mut p, Some(&receipt), amount, "stripe").await?
            } else {
                let reason = format!(
                    "amount mismatch: Stripe session {} shows {:?} {:?}, the payment asked {} {}",
                    session.id, session.amount_total, session.currency, p.amount, p.currency
                );
                store::flag(&mut tx, &mut p, &reason).await?;
                end_locked(&mut tx, &mut p, Status::Failed, &reason).await?
            }
        }
        ("expired", _) => {
            end_locked(&mut tx, &mut p, Status::Expired, "Checkout Session expired").await?
        }
        // Open, or complete with a delayed method still unpaid: Stripe's next event says more.
        _ => Verified::Waiting { recheck_in: None },
    };
    tx.commit().await?;
    Ok(v)
}

/// The provider confirmed the money: record the proof, move to `paid` and credit. A receipt
/// already used by another payment means one payment is being passed off as two: the payment is
/// flagged and ended `failed` in the caller's transaction, so the flag is kept and no sweep asks
/// about it again; nothing is credited.
pub(super) async fn pay_and_credit(
    tx: &mut PgConnection,
    p: &mut Payment,
    receipt: Option<&str>,
    amount: Decimal,
    actor: &str,
) -> Result<Verified, PaymentError> {
    if let Some(r) = receipt {
        let other: Option<PaymentId> =
            sqlx::query_scalar("SELECT id FROM payments WHERE receipt = $1 AND id <> $2")
                .bind(r)
                .bind(p.id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(other) = other {
            let reason = format!("receipt {r} already credited payment {other}");
            store::flag(tx, p, &reason).await?;
            return end_locked(tx, p, Status::Failed, &reason).await;
        }
    }
    sqlx::query(
        "UPDATE payments SET receipt = COALESCE($2, receipt), amount_received = $3 WHERE id = $1",
    )
    .bind(p.id)
    .bind(receipt)
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    p.receipt = receipt.map(str::to_string).or(p.receipt.take());
    p.amount_received = Some(amount);
    store::set_status(
        tx,
        p,
        Status::Paid,
        actor,
        serde_json::json!({ "receipt": receipt, "amount": amount.to_string() }),
    )
    .await?;
    credit(tx, p, "verify_purchase").await
}

/// Credits a `paid` payment (idempotent on the payment).
async fn credit(
    tx: &mut PgConnection,
    p: &mut Payment,
    actor: &str,
) -> Result<Verified, PaymentError> {
    let applied = ledger::credit_purchase(tx, p.id, actor).await?;
    if !applied.replay {
        tracing::info!(payment = %p.id, company = %p.company_id, credits = applied.value.credits, "purchase credited");
    }
    p.status = Status::Credited;
    // A card dispute opened before the payment was credited holds its share back now.
    super::reversal::settle(tx, p, actor, "card payment disputed").await?;
    Ok(Verified::Credited {
        credits: applied.value.credits,
        replay: applied.replay,
    })
}

pub(super) async fn end(
    pool: &PgPool,
    id: PaymentId,
    to: Status,
    reason: &str,
) -> Result<Verified, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    let v = end_locked(&mut tx, &mut p, to, reason).await?;
    tx.commit().await?;
    Ok(v)
}

/// Ends a payment its provider could not confirm by its expiry, flagged for the operator (the
/// customer may have paid). A payment settled meanwhile by another run is left as it is, flag
/// included: the flag would be a false alarm, or would overwrite one that matters.
pub(super) async fn expire_unconfirmed(
    pool: &PgPool,
    id: PaymentId,
    flag: &str,
    reason: &str,
) -> Result<Verified, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if !p.status.is_open() {
        return settled(p);
    }
    store::flag(&mut tx, &mut p, flag).await?;
    let v = end_locked(&mut tx, &mut p, Status::Expired, reason).await?;
    tx.commit().await?;
    Ok(v)
}

pub(super) async fn end_locked(
    tx: &mut PgConnection,
    p: &mut Payment,
    to: Status,
    reason: &str,
) -> Result<Verified, PaymentError> {
    if !p.status.is_open() {
        return settled(p.clone());
    }
    store::end(tx, p, to, reason, "verify_purchase").await?;
    Ok(Verified::Ended(to))
}

/// What an already settled payment reads as (a concurrent run got there first).
pub(super) fn settled(p: Payment) -> Result<Verified, PaymentError> {
    Ok(match p.status {
        Status::Credited | Status::Refunded | Status::Paid => Verified::Credited {
            credits: p.credits_due(),
            replay: true,
        },
        s if s.is_open() => Verified::Waiting { recheck_in: None },
        s => Verified::Ended(s),
    })
}
