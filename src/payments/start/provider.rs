//! Asking the provider to start a purchase written as `initiated` (an STK Push, a Checkout
//! Session) and recording its answer through a database restart; a provider's refusal to start
//! it fails the payment with its code.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::super::store::{self, Payment};
use super::super::{PaymentError, PaymentProviders, Status};
use super::{CHECKOUT_WINDOW, StartError};
use crate::accounts::Company;
use crate::domain::{Currency, E164, PaymentId};
use crate::providers::mpesa::{DarajaError, StkAccepted, StkPush};
use crate::providers::stripe::{CheckoutRequest, CheckoutSession, StripeError};

/// Inline attempts for a provider error that left no trace (no prompt sent, no session made).
const START_ATTEMPTS: u32 = 3;

pub(super) async fn start_mpesa(
    pool: &PgPool,
    providers: &PaymentProviders,
    payment: Payment,
    phone: E164,
    callback: &url::Url,
) -> Result<Payment, StartError> {
    let client = providers.mpesa.as_ref().expect("checked configured");
    let amount: i64 = payment.amount.trunc().try_into().unwrap_or(i64::MAX);
    let reference = format!("SMS{}", &payment.id.0.simple().to_string()[24..]);
    let push = StkPush {
        amount,
        msisdn: phone.digits(),
        callback_url: callback,
        account_reference: &reference,
        description: "SMS credits",
    };
    // Only errors that left no prompt on the phone are retried.
    let outcome = retried(
        "STK Push",
        payment.id,
        || client.stk_push(&push),
        DarajaError::is_transient,
    )
    .await;
    record_patiently(payment.id, || record_push(pool, payment.id, &outcome)).await
}

/// Writes what Daraja answered to the push (the CheckoutRequestID, or the failure) on the
/// payment, in one transaction.
async fn record_push(
    pool: &PgPool,
    id: PaymentId,
    outcome: &Result<StkAccepted, DarajaError>,
) -> Result<Payment, StartError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    let result = match outcome {
        Ok(accepted) => {
            sqlx::query("UPDATE payments SET provider_ref = $2 WHERE id = $1")
                .bind(p.id)
                .bind(&accepted.checkout_request_id)
                .execute(&mut *tx)
                .await?;
            p.provider_ref = Some(accepted.checkout_request_id.clone());
            if p.status == Status::Initiated {
                store::set_status(
                    &mut tx,
                    &mut p,
                    Status::Pending,
                    "mpesa",
                    serde_json::json!({
                        "checkout_request_id": accepted.checkout_request_id,
                        "merchant_request_id": accepted.merchant_request_id,
                    }),
                )
                .await?;
            }
            Ok(p)
        }
        Err(DarajaError::Ambiguous(_)) => {
            // The prompt may have reached the phone: never push again. The callback finds the
            // payment by its token; otherwise the sweep expires it.
            tracing::warn!(payment = %p.id, "STK Push sent without an answer; waiting for the callback");
            Ok(p)
        }
        Err(e) => {
            let detail = format!("M-Pesa did not start the payment: {e}");
            let code = if e.is_transient() {
                "mpesa_unavailable"
            } else {
                "mpesa_rejected"
            };
            not_started(&mut tx, p, "mpesa", code, detail, e.is_transient()).await
        }
    };
    tx.commit().await?;
    result
}

pub(super) async fn start_card(
    pool: &PgPool,
    providers: &PaymentProviders,
    payment: Payment,
    company: &Company,
) -> Result<Payment, StartError> {
    let client = providers.stripe.as_ref().expect("checked configured");
    let currency: Currency = payment
        .currency
        .parse()
        .expect("stored currencies are known");
    let amount_minor = crate::domain::Money::new(payment.amount, currency)
        .to_minor_units()
        .ok_or_else(|| {
            StartError::Invalid(vec![("currency", "price has sub-minor digits".into())])
        })?;
    let key = format!("checkout:{}", payment.id);
    let currency_wire = currency.code().to_ascii_lowercase();
    let product = format!("{} SMS credits", payment.credits);
    // From the payment, not the clock: a replay (`resume_unstarted`) must send Stripe the same
    // parameters under the same idempotency key, or Stripe refuses it.
    let expires_at =
        payment.created_at + chrono::Duration::from_std(CHECKOUT_WINDOW).expect("small");
    let req = CheckoutRequest {
        idempotency_key: &key,
        payment_id: payment.id.0,
        company_id: company.id.0,
        amount_minor,
        currency: &currency_wire,
        product_name: &product,
        success_url: &providers.checkout_success_url,
        cancel_url: &providers.checkout_cancel_url,
        expires_at: Some(expires_at.timestamp()),
    };
    // The same Idempotency-Key makes a retry return the first session, never a second.
    let outcome = retried(
        "Checkout Session",
        payment.id,
        || client.create_checkout_session(&req),
        StripeError::is_retryable,
    )
    .await;
    record_patiently(payment.id, || record_session(pool, payment.id, &outcome)).await
}

/// Writes what Stripe answered (the Checkout Session, or the failure) on the payment, in one
/// transaction.
async fn record_session(
    pool: &PgPool,
    id: PaymentId,
    outcome: &Result<CheckoutSession, StripeError>,
) -> Result<Payment, StartError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    let result = match outcome {
        Ok(session) => {
            sqlx::query("UPDATE payments SET provider_ref = $2, checkout_url = $3 WHERE id = $1")
                .bind(p.id)
                .bind(&session.id)
                .bind(&session.url)
                .execute(&mut *tx)
                .await?;
            p.provider_ref = Some(session.id.clone());
            p.checkout_url = session.url.clone();
            // Only from `initiated`: a rerun after a commit whose answer was lost, or a
            // replay that got here first, finds it `pending` (or further) already.
            if p.status == Status::Initiated {
                store::set_status(
                    &mut tx,
                    &mut p,
                    Status::Pending,
                    "stripe",
                    serde_json::json!({ "session": session.id }),
                )
                .await?;
            }
            Ok(p)
        }
        Err(e) => {
            let retryable = e.is_retryable();
            let code = if retryable {
                "stripe_unavailable"
            } else {
                "stripe_rejected"
            };
            let detail = format!("Stripe did not create the checkout: {e}");
            not_started(&mut tx, p, "stripe", code, detail, retryable).await
        }
    };
    tx.commit().await?;
    result
}

/// The provider refused to start the payment: it fails, and the caller hears why (`code`), and
/// whether asking again later may work.
async fn not_started(
    tx: &mut PgConnection,
    mut p: Payment,
    provider: &str,
    code: &'static str,
    detail: String,
    retryable: bool,
) -> Result<Payment, StartError> {
    store::end(tx, &mut p, Status::Failed, &detail, provider).await?;
    Err(StartError::Provider {
        payment: Box::new(p),
        code,
        detail,
        retryable,
    })
}

/// Records a provider's answer on the payment through a database restart (`db::patiently`): the
/// prompt is on the phone or the session exists, and a buyer's replay could not ask again for
/// an M-Pesa push.
async fn record_patiently<F, Fut>(payment: PaymentId, record: F) -> Result<Payment, StartError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Payment, StartError>>,
{
    let transient = |answer: &Result<Payment, StartError>| match answer {
        Err(StartError::Database(e) | StartError::Payment(PaymentError::Database(e)))
            if crate::db::transient(e) =>
        {
            Some(e.to_string())
        }
        _ => None,
    };
    crate::db::patiently(record, transient, |error| {
        tracing::warn!(%payment, %error, "recording the provider's answer failed; trying again");
    })
    .await
}

/// Calls the provider up to `START_ATTEMPTS` times while `retryable` says the error is safe to
/// retry, with a short pause between attempts (the caller is waiting for the answer).
async fn retried<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    payment: PaymentId,
    call: impl Fn() -> F,
    retryable: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if retryable(&e) && attempt < START_ATTEMPTS => {
                tracing::warn!(%payment, error = %e, attempt, "{what} not started; trying again");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}
