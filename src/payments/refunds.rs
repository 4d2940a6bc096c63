//! Money paid back for a payment (`payment_refunds`, one row per increase), which the revenue
//! report subtracts from what was received. Credits taken back are the ledger's business
//! ([`crate::ledger::reverse_purchase`]); this is the money.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::PaymentError;
use super::store::Payment;

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
    let recorded: Decimal = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0) FROM payment_refunds
         WHERE payment_id = $1 AND currency = $2",
    )
    .bind(p.id)
    .bind(currency)
    .fetch_one(&mut *tx)
    .await?;
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
