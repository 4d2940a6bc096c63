//! Card disputes (chargebacks), from Stripe's `charge.dispute.*` events.
//!
//! A dispute is a claim on its purchase's credits (`reversal`): its share of them (the disputed
//! amount's share of the payment) is held back while it is open, given back when it is won (or an
//! inquiry closes without a chargeback, `warning_closed`), and stays taken when it is lost, when
//! the disputed money is also recorded as lost (the revenue report nets it out). The first event
//! of a dispute opens it, whichever it is (Stripe delivers in any order); an open dispute on a
//! payment not credited yet is settled when the payment is. The payment is flagged, and the
//! company counts as disputed while it has an open or lost dispute (the status page and
//! `GET /admin/companies` show it).
//!
//! `payment_disputes` holds one row per dispute, written under the payment's row lock, so each
//! step happens once however often and in whatever order the events come.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::store::{self, Payment};
use super::stripe::{charge_payment, share_of_credits};
use super::{PaymentError, reversal};
use crate::providers::stripe::{Dispute, from_minor_units};

const ACTOR: &str = "stripe_webhook";

/// Acts on a dispute event; `false` when the dispute is not about a payment of ours.
pub(super) async fn on_event(tx: &mut PgConnection, d: &Dispute) -> Result<bool, PaymentError> {
    let Some(mut p) = charge_payment(tx, d.payment_intent.as_deref(), None).await? else {
        tracing::warn!(dispute = %d.id, payment_intent = ?d.payment_intent, "a dispute about no payment of ours");
        return Ok(false);
    };
    // Stripe's latest status is kept only while the dispute is open: a late `created` does not
    // write over the closing one's.
    let outcome: Option<String> = sqlx::query_scalar(
        "UPDATE payment_disputes SET stripe_status = CASE WHEN outcome = 'open' THEN $2 ELSE stripe_status END
         WHERE id = $1 RETURNING outcome",
    )
    .bind(&d.id)
    .bind(&d.status)
    .fetch_optional(&mut *tx)
    .await?;
    let open = match outcome {
        None => {
            open(tx, &mut p, d).await?;
            true
        }
        Some(outcome) => outcome == "open",
    };
    if open && (d.is_won() || d.is_lost()) {
        close(tx, &mut p, d).await?;
    }
    Ok(true)
}

/// Records the dispute as a claim on the disputed share of the credits, and settles it.
async fn open(tx: &mut PgConnection, p: &mut Payment, d: &Dispute) -> Result<(), PaymentError> {
    let currency = d.currency.to_ascii_uppercase();
    let amount = from_minor_units(d.amount, &currency).ok();
    // A dispute in another currency than the payment's cannot be shared out: all of it.
    let share = match amount {
        Some(a) if currency == p.currency => share_of_credits(p.credits_due(), p.amount, a, false),
        _ => p.credits_due(),
    };
    sqlx::query(
        "INSERT INTO payment_disputes (id, payment_id, company_id, charge, amount, currency, reason,
                                       stripe_status, credits_share)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(p.id)
    .bind(p.company_id)
    .bind(&d.charge)
    .bind(amount.unwrap_or(p.amount))
    .bind(&currency)
    .bind(&d.reason)
    .bind(&d.status)
    .bind(share)
    .execute(&mut *tx)
    .await?;
    let what = format!("card dispute {} opened ({})", d.id, d.reason);
    store::flag(tx, p, &format!("{what}: {share} credits held back")).await?;
    // A shortfall's flag names the dispute too.
    reversal::settle(tx, p, ACTOR, &what).await?;
    Ok(())
}

/// Closes an open dispute by Stripe's verdict.
async fn close(tx: &mut PgConnection, p: &mut Payment, d: &Dispute) -> Result<(), PaymentError> {
    let (amount, currency): (Decimal, String) = sqlx::query_as(
        "UPDATE payment_disputes SET outcome = $2, stripe_status = $3, closed_at = now()
         WHERE id = $1 RETURNING amount, currency",
    )
    .bind(&d.id)
    .bind(if d.is_won() { "won" } else { "lost" })
    .bind(&d.status)
    .fetch_one(&mut *tx)
    .await?;
    if d.is_lost() {
        super::refunds::record_dispute_lost(tx, p, amount, &currency, &d.id, ACTOR).await?;
    }
    store::flag(tx, p, &format!("card dispute {} closed {}", d.id, d.status)).await?;
    reversal::settle(tx, p, ACTOR, "card dispute closed").await?;
    Ok(())
}
