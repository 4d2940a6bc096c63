//! `POST /webhooks/stripe`: the signature is checked on the raw bytes before anything is parsed,
//! each event is stored once (by its id; Stripe delivers at least once, in any order), and then:
//! - `checkout.session.completed` / `async_payment_succeeded` enqueue `VerifyPurchase` (again
//!   when Stripe redelivers one while its payment is open), which re-reads the session and
//!   credits only a paid one with the right amount and currency; one that says it is paid is
//!   noted on the payment, so the reconciler checks it if the job is lost;
//! - `async_payment_failed` and `expired` end the payment (no money: safe to take as said);
//! - `charge.refunded` records the money refunded (for the revenue report) and takes the
//!   refunded share of the credits back, as far as the balance allows, recording any shortfall
//!   and alerting the operator;
//! - `charge.dispute.*` open and close card disputes (`disputes`).

use copcca_jobs::VerifyPurchase;
use rust_decimal::Decimal;
use sqlx::PgPool;

use super::store::{self, Payment};
use super::{PaymentError, PaymentProviders, Status, disputes, refunds, reversal};
use crate::domain::PaymentId;
use crate::faults;
use crate::inbox;
use crate::providers::stripe::{Event, from_minor_units, signature};
use crate::queue::Queues;

/// Seconds a signed timestamp may be away from now (Stripe's own default tolerance).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeOutcome {
    /// Stored and acted on.
    Accepted,
    /// This event id came before.
    Duplicate,
    /// Stored, but about nothing of ours (another integration's session, an event type we do
    /// not use).
    Ignored,
    /// Refused and logged; nothing changed. The reason is a metric label.
    Rejected(&'static str),
}

pub async fn handle_stripe_event(
    pool: &PgPool,
    queues: &Queues,
    providers: &PaymentProviders,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<StripeOutcome, PaymentError> {
    let payload = String::from_utf8_lossy(body);
    let Some(secret) = providers.stripe_webhook_secret.as_ref() else {
        return reject(pool, body, "not_configured").await;
    };
    let Some(header) = signature_header else {
        return reject(pool, body, "missing_signature").await;
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = signature::verify(header, body, secret.expose(), now, TOLERANCE_SECS) {
        return reject(pool, body, e.reason()).await;
    }
    let Ok(event) = serde_json::from_slice::<Event>(body) else {
        return reject(pool, body, "malformed").await;
    };

    let mut tx = pool.begin().await?;
    let Some(stored) = inbox::accept(&mut tx, "stripe", &event.id, &payload).await? else {
        // Stripe sends an event again until it gets a 2xx: the process that stored it may
        // have stopped before enqueueing the check, and the reconciler looks at an open card
        // payment only once its session has expired. Enqueue it again while the payment is
        // open (a check still waiting is not doubled; a second one changes nothing).
        if is_paid_completion(&event)
            && let Some(p) = session_payment(&mut tx, &event).await?
            && p.status.is_open()
        {
            tx.rollback().await?;
            enqueue_check(queues, p.id, &event.id).await;
        }
        return Ok(StripeOutcome::Duplicate);
    };
    let outcome = match event.kind.as_str() {
        _ if is_paid_completion(&event) => match session_payment(&mut tx, &event).await? {
            Some(p) => {
                if says_paid(&event) {
                    store::note_said_paid(&mut tx, p.id).await?;
                }
                // Named now, so that a dispute about its charge finds the payment even before
                // the check has credited it.
                if let Some(pi) = event.checkout_session().and_then(|s| s.payment_intent) {
                    store::note_payment_intent(&mut tx, p.id, &pi).await?;
                }
                inbox::mark_processed(&mut tx, stored).await?;
                tx.commit().await?;
                faults::point!(faults::PURCHASE_AFTER_CALLBACK);
                enqueue_check(queues, p.id, &event.id).await;
                return Ok(StripeOutcome::Accepted);
            }
            None => StripeOutcome::Ignored,
        },
        "checkout.session.async_payment_failed" | "checkout.session.expired" => {
            match session_payment(&mut tx, &event).await? {
                Some(mut p) => {
                    let (to, reason) = if event.kind.ends_with("expired") {
                        (Status::Expired, "Checkout Session expired")
                    } else {
                        (Status::Failed, "the delayed payment failed")
                    };
                    store::end(&mut tx, &mut p, to, reason, "stripe_webhook").await?;
                    StripeOutcome::Accepted
                }
                None => StripeOutcome::Ignored,
            }
        }
        "charge.refunded" => refunded(&mut tx, &event).await?,
        kind if kind.starts_with("charge.dispute.") => match event.dispute() {
            Some(d) if disputes::on_event(&mut tx, &d).await? => StripeOutcome::Accepted,
            _ => StripeOutcome::Ignored,
        },
        _ => StripeOutcome::Ignored,
    };
    inbox::mark_processed(&mut tx, stored).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// An event that says a session may be paid: its payment is to be checked.
fn is_paid_completion(event: &Event) -> bool {
    matches!(
        event.kind.as_str(),
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
    )
}

/// A paid completion whose session says the money is in (a delayed method's `completed` comes
/// unpaid, and its `async_payment_succeeded` later).
fn says_paid(event: &Event) -> bool {
    event.kind == "checkout.session.async_payment_succeeded"
        || event
            .checkout_session()
            .is_some_and(|s| s.payment_status == "paid")
}

/// Enqueues the check of `payment` that event `event_id` asked for, after the event is stored.
async fn enqueue_check(queues: &Queues, payment: PaymentId, event_id: &str) {
    let job = VerifyPurchase {
        payment_id: payment.0,
        trigger: format!("stripe:{event_id}"),
    };
    if let Err(e) = queues.enqueue(&job).await {
        tracing::error!(%payment, error = %e, "verify job not enqueued; Stripe's redelivery or the sweep will pick it up");
    }
}

/// The payment a session event is about, locked: named by `client_reference_id` and holding
/// that very session (a forged reference to another payment's id does not match).
async fn session_payment(
    tx: &mut sqlx::PgConnection,
    event: &Event,
) -> Result<Option<Payment>, PaymentError> {
    let Some(session) = event.checkout_session() else {
        return Ok(None);
    };
    let Some(id) = session
        .client_reference_id
        .as_deref()
        .and_then(|r| r.parse::<PaymentId>().ok())
    else {
        return Ok(None);
    };
    match store::lock(tx, id).await {
        Ok(p) if p.provider_ref.as_deref() == Some(session.id.as_str()) => Ok(Some(p)),
        Ok(_) | Err(PaymentError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A (partial or full) refund of a card payment: take back the refunded share of its credits.
async fn refunded(
    tx: &mut sqlx::PgConnection,
    event: &Event,
) -> Result<StripeOutcome, PaymentError> {
    let Some(charge) = event.charge() else {
        return Ok(StripeOutcome::Ignored);
    };
    let by_metadata = charge
        .metadata
        .get("payment_id")
        .and_then(|s| s.parse::<PaymentId>().ok());
    let Some(mut p) = charge_payment(tx, charge.payment_intent.as_deref(), by_metadata).await?
    else {
        return Ok(StripeOutcome::Ignored);
    };
    if !matches!(p.status, Status::Credited | Status::Refunded) {
        // Refunded before we credited it: nothing to take back, and it must not be credited.
        if p.status.is_open() {
            store::end(
                tx,
                &mut p,
                Status::Failed,
                "refunded by Stripe before it was credited",
                "stripe_webhook",
            )
            .await?;
        }
        return Ok(StripeOutcome::Accepted);
    }
    // The money, for the revenue report: Stripe's cumulative amount, in its minor units.
    let currency = charge.currency.to_ascii_uppercase();
    match from_minor_units(charge.amount_refunded, &currency) {
        Ok(total) => {
            let source = format!("stripe:{}", charge.id);
            refunds::record_total(tx, &p, total, &currency, &source, "stripe_webhook").await?;
        }
        Err(e) => store::flag(tx, &mut p, &format!("refunded amount not recorded: {e}")).await?,
    }
    let share = share_of_credits(
        p.credits_due(),
        Decimal::from(charge.amount),
        Decimal::from(charge.amount_refunded),
        charge.refunded,
    );
    reversal::claim_refund(tx, &p, share).await?;
    let r = reversal::settle(tx, &mut p, "stripe_webhook", refunds::REFUNDED)
        .await?
        .ok_or(PaymentError::Invalid(
            "a refunded payment that is not credited".into(),
        ))?;
    if charge.refunded && p.status == Status::Credited {
        store::set_status(
            tx,
            &mut p,
            Status::Refunded,
            "stripe_webhook",
            serde_json::json!({
                "charge": charge.id,
                "credits_reversed": r.total_reversed,
                "shortfall": r.total_shortfall,
            }),
        )
        .await?;
    }
    Ok(StripeOutcome::Accepted)
}

/// The payment a card charge is about, locked: by its PaymentIntent (which we recorded when
/// the payment was credited), else by the `payment_id` the charge's metadata names; none when
/// the two disagree (a charge of another integration, or a forged reference).
pub(super) async fn charge_payment(
    tx: &mut sqlx::PgConnection,
    payment_intent: Option<&str>,
    by_metadata: Option<PaymentId>,
) -> Result<Option<Payment>, PaymentError> {
    let id: Option<PaymentId> = match payment_intent {
        Some(pi) => sqlx::query_scalar("SELECT id FROM payments WHERE payment_intent = $1")
            .bind(pi)
            .fetch_optional(&mut *tx)
            .await?
            .or(by_metadata),
        None => by_metadata,
    };
    let Some(id) = id else {
        return Ok(None);
    };
    let p = match store::lock(tx, id).await {
        Ok(p) => p,
        Err(PaymentError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if payment_intent.is_some()
        && p.payment_intent.is_some()
        && payment_intent != p.payment_intent.as_deref()
    {
        return Ok(None);
    }
    Ok(Some(p))
}

/// Credits that correspond to `part` of a payment of `whole` (a refund, a dispute; in the same
/// units): all of them for `full` or `part >= whole`, otherwise the proportional share rounded
/// down (the company keeps any fraction).
pub(super) fn share_of_credits(credits: i64, whole: Decimal, part: Decimal, full: bool) -> i64 {
    if full || (whole > Decimal::ZERO && part >= whole) {
        return credits;
    }
    if whole <= Decimal::ZERO {
        return 0;
    }
    let share = Decimal::from(credits) * part.max(Decimal::ZERO) / whole;
    share.floor().try_into().unwrap_or(0)
}

async fn reject(
    pool: &PgPool,
    body: &[u8],
    reason: &'static str,
) -> Result<StripeOutcome, PaymentError> {
    crate::metrics::webhook_rejected("stripe", reason);
    inbox::reject(pool, "stripe", body, reason).await?;
    Ok(StripeOutcome::Rejected(reason))
}

/// Refunds what is left of a card payment's charge through Stripe (`POST /v1/refunds`, keyed
/// `refund:{payment}` so a retried request never refunds twice); the refund's id. Its
/// `charge.refunded` event then finds the credits already taken back and changes nothing.
pub(super) async fn refund(
    providers: &PaymentProviders,
    p: &Payment,
) -> Result<String, super::refunds::RefundError> {
    use super::refunds::RefundError;
    let failed = |detail: String| RefundError::Provider {
        detail,
        unknown: false,
    };
    let client = providers
        .stripe
        .as_ref()
        .ok_or_else(|| failed("Stripe is not configured in this process".into()))?;
    let pi = p
        .payment_intent
        .as_deref()
        .ok_or_else(|| failed("the payment has no Stripe PaymentIntent".into()))?;
    client
        .create_refund(pi, &format!("refund:{}", p.id))
        .await
        .map(|r| r.id)
        .map_err(|e| failed(format!("Stripe did not refund {pi}: {e}")))
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::share_of_credits;

    fn share(credits: i64, whole: i64, part: i64, full: bool) -> i64 {
        share_of_credits(credits, Decimal::from(whole), Decimal::from(part), full)
    }

    #[test]
    fn refunded_share_of_the_credits() {
        assert_eq!(share(1000, 2_500_000, 2_500_000, true), 1000);
        assert_eq!(share(1000, 2_500_000, 1_250_000, false), 500);
        assert_eq!(share(1000, 3, 1, false), 333);
        assert_eq!(share(1000, 2_500_000, 0, false), 0);
        assert_eq!(share(1000, 0, 0, false), 0);
        assert_eq!(
            share(1000, 25_000, 30_000, false),
            1000,
            "more than paid is all"
        );
    }
}
