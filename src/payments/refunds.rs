//! Money paid back for a payment (`payment_refunds`, one row per increase), which the revenue
//! report subtracts from what was received. Credits taken back are the ledger's business
//! ([`crate::ledger::reverse_purchase`]); this is the money.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::PaymentError;
use super::store::Payment;

/// The reason on the ledger entry that takes a refunded purchase's credits back.
pub const REFUNDED: &str = "payment refunded by the provider";

/// Brings the money refunded for `p` in `currency` up to `total` (a provider's cumulative
/// figure, such as Stripe's `amount_refunded`) and returns what was added: nothing when `total`
/// is already recorded, so a redelivered or out-of-order notice adds nothing. The caller holds
/// the payment's row lock.
pub async fn record_total(
    tx: &mut PgConnection,
    p: &Payment,
    total: Decimal,
    currency: &str,
    source: &str,
    actor: &str,
) -> Result<Decimal, PaymentError> {
    let recorded = recorded(tx, p, currency).await?;
    let added = total - recorded;
    if added <= Decimal::ZERO {
        return Ok(Decimal::ZERO);
    }
    sqlx::query(
        "INSERT INTO payment_refunds (payment_id, company_id, amount, currency, source, actor)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(p.id)
    .bind(p.company_id)
    .bind(added)
    .bind(currency)
    .bind(source)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(added)
}

/// The money recorded as refunded for `p` in `currency` so far (refunds only, not disputes lost).
async fn recorded(
    tx: &mut PgConnection,
    p: &Payment,
    currency: &str,
) -> Result<Decimal, PaymentError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0) FROM payment_refunds
         WHERE payment_id = $1 AND currency = $2 AND kind = 'refund'",
    )
    .bind(p.id)
    .bind(currency)
    .fetch_one(&mut *tx)
    .await?)
}

/// Records `amount` of `p` lost to dispute `dispute` (once: the caller closes the dispute in the
/// same transaction).
pub async fn record_dispute_lost(
    tx: &mut PgConnection,
    p: &Payment,
    amount: Decimal,
    currency: &str,
    dispute: &str,
    actor: &str,
) -> Result<(), PaymentError> {
    if amount <= Decimal::ZERO {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO payment_refunds (payment_id, company_id, amount, currency, source, actor, kind)
         VALUES ($1, $2, $3, $4, $5, $6, 'dispute_lost')",
    )
    .bind(p.id)
    .bind(p.company_id)
    .bind(amount)
    .bind(currency)
    .bind(format!("stripe:{dispute}"))
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Why an operator's refund of a purchase did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("payment {0} is {1}: only a credited purchase can be refunded")]
    NotRefundable(crate::domain::PaymentId, &'static str),
    /// This method's money goes back another way.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The provider refused, or its answer was lost (`unknown`: the payment is flagged; check
    /// with the provider before asking again).
    #[error("{detail}")]
    Provider { detail: String, unknown: bool },
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// `POST /admin/purchases/{id}/refund`: gives a credited purchase's money back through its
/// provider (a Vodacom M-Pesa reversal, a Stripe refund) and takes its unspent credits back as
/// `charge.refunded` does (`ledger::reverse_purchase`: never below zero; a shortfall recorded and flagged). The
/// payment is locked throughout, so a second request waits and then finds it `refunded`.
pub async fn refund_purchase(
    pool: &sqlx::PgPool,
    providers: &super::PaymentProviders,
    id: crate::domain::PaymentId,
    actor: &str,
) -> Result<Payment, RefundError> {
    use super::{Method, Status, store};
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if p.status != Status::Credited {
        return Err(RefundError::NotRefundable(id, p.status.as_str()));
    }
    let source = match p.method {
        Method::Mpesa if p.is_vodacom() => match super::vodacom::reverse(providers, &p).await {
            Ok(reversal) => format!("vodacom:{reversal}"),
            Err(e) => {
                if let RefundError::Provider {
                    unknown: true,
                    detail,
                } = &e
                {
                    store::flag(&mut tx, &mut p, detail).await?;
                    tx.commit().await?;
                }
                return Err(e);
            }
        },
        Method::Card => format!("stripe:{}", super::stripe::refund(providers, &p).await?),
        _ => {
            return Err(RefundError::Unsupported(
                "this payment's money goes back outside the service (Daraja, bank); take its credits back with an adjustment",
            ));
        }
    };
    let currency = p.currency.clone();
    record_total(&mut tx, &p, p.amount, &currency, &source, actor).await?;
    super::reversal::claim_refund(&mut tx, &p, p.credits_due()).await?;
    let Some(r) = super::reversal::settle(&mut tx, &mut p, actor, REFUNDED).await? else {
        return Err(RefundError::NotRefundable(id, p.status.as_str()));
    };
    store::set_status(
        &mut tx,
        &mut p,
        Status::Refunded,
        actor,
        serde_json::json!({
            "refund": source,
            "credits_reversed": r.total_reversed,
            "shortfall": r.total_shortfall,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}
