//! Card disputes (chargebacks), from Stripe's `charge.dispute.*` events.
//!
//! - Opened (`created`, or any dispute event seen first: Stripe delivers in any order): the
//!   disputed share of the purchase's credits is taken back as a refund's is
//!   (`ledger::reverse_purchase`: never below zero, the rest recorded as shortfall), the payment
//!   is flagged, and the company counts as disputed (the status page shows it).
//! - Closed `won` (or an inquiry closed without a chargeback, `warning_closed`): exactly what
//!   opening it took is given back and its shortfall forgiven (`ledger::restore_reversal`).
//! - Closed `lost`: the credits stay taken and the disputed money is recorded as refunded (the
//!   revenue report nets it out).
//!
//! `payment_disputes` holds one row per dispute, locked under the payment's row lock, so each
//! step happens once whatever the events' order or how often they come.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::store::{self, Payment};
use super::stripe::{charge_payment, share_of_credits};
use super::{PaymentError, Status, refunds};
use crate::ledger;
use crate::providers::stripe::{Dispute, from_minor_units};

const ACTOR: &str = "stripe_webhook";
const TAKEN: &str = "card payment disputed";
const RETURNED: &str = "card dispute won";

/// Acts on a dispute event; `false` when the dispute is not about a payment of ours.
pub(super) async fn on_event(tx: &mut PgConnection, d: &Dispute) -> Result<bool, PaymentError> {
    let Some(mut p) = charge_payment(tx, d.payment_intent.as_deref(), None).await? else {
        return Ok(false);
    };
    let outcome: Option<String> = sqlx::query_scalar(
        "UPDATE payment_disputes SET stripe_status = $2 WHERE id = $1 RETURNING outcome",
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

/// Records the dispute and takes back the disputed share of the credits.
async fn open(tx: &mut PgConnection, p: &mut Payment, d: &Dispute) -> Result<(), PaymentError> {
    let currency = d.currency.to_ascii_uppercase();
    let amount = from_minor_units(d.amount, &currency).ok();
    let (taken, shortfall) = if matches!(p.status, Status::Credited | Status::Refunded) {
        // A dispute in another currency than the payment's cannot be shared out: all of it.
        let share = match amount {
            Some(a) if currency == p.currency => {
                share_of_credits(p.credits_due(), p.amount, a, false)
            }
            _ => p.credits_due(),
        };
        let target = p.credits_reversed + p.reversal_shortfall + share;
        let r = ledger::reverse_purchase(tx, p.id, target, ACTOR, TAKEN)
            .await?
            .value;
        (r.taken, r.shortfall)
    } else {
        // Not credited: nothing to take back, and an open payment must not be credited now.
        if p.status.is_open() {
            store::end(
                tx,
                p,
                Status::Failed,
                "disputed before it was credited",
                ACTOR,
            )
            .await?;
        }
        (0, 0)
    };
    sqlx::query(
        "INSERT INTO payment_disputes (id, payment_id, company_id, charge, amount, currency, reason,
                                       stripe_status, credits_taken, credits_shortfall)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.id)
    .bind(p.id)
    .bind(p.company_id)
    .bind(&d.charge)
    .bind(amount.unwrap_or(p.amount))
    .bind(&currency)
    .bind(&d.reason)
    .bind(&d.status)
    .bind(taken)
    .bind(shortfall)
    .execute(&mut *tx)
    .await?;
    store::flag(
        tx,
        p,
        &format!(
            "card dispute {} opened ({}): {taken} credits taken back, {shortfall} already spent",
            d.id, d.reason
        ),
    )
    .await?;
    Ok(())
}

/// Closes an open dispute by Stripe's verdict.
async fn close(tx: &mut PgConnection, p: &mut Payment, d: &Dispute) -> Result<(), PaymentError> {
    let (taken, shortfall, amount, currency): (i64, i64, Decimal, String) = sqlx::query_as(
        "SELECT credits_taken, credits_shortfall, amount, currency FROM payment_disputes WHERE id = $1",
    )
    .bind(&d.id)
    .fetch_one(&mut *tx)
    .await?;
    let returned = if d.is_won() {
        ledger::restore_reversal(tx, p.id, taken, shortfall, ACTOR, RETURNED).await?
    } else {
        let recorded = refunds::recorded(tx, p, &currency).await?;
        let source = format!("stripe:{}", d.id);
        refunds::record_total(tx, p, recorded + amount, &currency, &source, ACTOR).await?;
        0
    };
    sqlx::query(
        "UPDATE payment_disputes SET outcome = $2, credits_returned = $3, closed_at = now()
         WHERE id = $1",
    )
    .bind(&d.id)
    .bind(if d.is_won() { "won" } else { "lost" })
    .bind(returned)
    .execute(&mut *tx)
    .await?;
    let verdict = if d.is_won() {
        format!("{returned} credits given back")
    } else {
        "the credits stay taken".into()
    };
    store::flag(
        tx,
        p,
        &format!("card dispute {} closed {}: {verdict}", d.id, d.status),
    )
    .await?;
    Ok(())
}
