//! What a credited purchase owes back, one figure for all its claims: the share of its credits
//! refunded so far (`payments.credits_refund_share`, only ever growing) plus the shares of its
//! card disputes that are open or lost (`payment_disputes`), never more than it credited. Every
//! change of a claim ends with [`settle`], which moves the payment's reversal to that figure
//! (`ledger::reverse_purchase`: taking back as far as the balance allows, or giving back when a
//! dispute is won), so the claims' order never matters and a claim is never counted twice.

use sqlx::PgConnection;

use super::store::{self, Payment};
use super::{PaymentError, Status};
use crate::ledger::{self, Reversed};

/// Raises the purchase's refunded share to `credits` (a refund's cumulative share: a smaller or
/// repeated one changes nothing). The caller holds the payment's lock and then calls [`settle`].
pub(super) async fn claim_refund(
    tx: &mut PgConnection,
    p: &Payment,
    credits: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET credits_refund_share = GREATEST(credits_refund_share, $2) WHERE id = $1",
    )
    .bind(p.id)
    .bind(credits.max(0))
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves a credited (or refunded) purchase's reversal to what its claims add up to now, flagging
/// any credits that could not be taken back; `None` for a payment not credited (its claims are
/// settled when it is). The caller holds the payment's lock.
pub(super) async fn settle(
    tx: &mut PgConnection,
    p: &mut Payment,
    actor: &str,
    reason: &str,
) -> Result<Option<Reversed>, PaymentError> {
    if !matches!(p.status, Status::Credited | Status::Refunded) {
        return Ok(None);
    }
    let target: i64 = sqlx::query_scalar(
        "SELECT LEAST(COALESCE(p.credits_granted, p.credits), p.credits_refund_share
                      + COALESCE((SELECT sum(d.credits_share) FROM payment_disputes d
                                  WHERE d.payment_id = p.id AND d.outcome IN ('open', 'lost')), 0))::bigint
         FROM payments p WHERE p.id = $1",
    )
    .bind(p.id)
    .fetch_one(&mut *tx)
    .await?;
    let r = ledger::reverse_purchase(tx, p.id, target, actor, reason)
        .await?
        .value;
    p.credits_reversed = r.total_reversed;
    p.reversal_shortfall = r.total_shortfall;
    if r.shortfall > 0 {
        store::flag(
            tx,
            p,
            &format!(
                "{reason}: shortfall of {} credits (already spent, not taken back); {} in total",
                r.shortfall, r.total_shortfall
            ),
        )
        .await?;
    }
    Ok(Some(r))
}
