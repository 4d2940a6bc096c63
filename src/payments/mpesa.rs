//! The M-Pesa STK callback. Safaricom signs nothing, so the callback is a hint: it must come to
//! the payment's own unguessable URL, name the push we started, and then `VerifyPurchase` asks
//! Daraja itself (STK Push Query) before a single credit moves.

use copcca_jobs::VerifyPurchase;
use sqlx::PgPool;

use super::start::token_hash;
use super::store::{self, Payment};
use super::{Method, PaymentError, Status};
use crate::faults;
use crate::inbox;
use crate::providers::mpesa::StkCallback;
use crate::queue::Queues;

/// What became of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Stored, and the payment will be verified.
    Accepted,
    /// The same result for the same push came before: nothing more to do.
    Duplicate,
    /// Refused and logged; nothing about any payment changed. The reason is a metric label.
    Rejected(&'static str),
}

/// Records a callback that came to `/webhooks/mpesa/{token}`.
pub async fn record_mpesa_callback(
    pool: &PgPool,
    queues: &Queues,
    token: &str,
    body: &[u8],
) -> Result<CallbackOutcome, PaymentError> {
    let payload = String::from_utf8_lossy(body);
    let Some(id) = by_token(pool, token).await? else {
        return reject(pool, body, "unknown_token").await;
    };
    let Ok(callback) = StkCallback::parse(body) else {
        return reject(pool, body, "malformed").await;
    };

    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if p.method != Method::Mpesa {
        drop(tx);
        return reject(pool, body, "not_mpesa").await;
    }
    if p.provider_ref
        .as_deref()
        .is_some_and(|r| r != callback.checkout_request_id)
    {
        drop(tx);
        return reject(pool, body, "checkout_mismatch").await;
    }
    let key = format!("{}:{}", callback.checkout_request_id, callback.result_code);
    let Some(event) = inbox::accept(&mut tx, "mpesa", &key, &payload).await? else {
        return Ok(CallbackOutcome::Duplicate);
    };
    if p.status.is_open() {
        adopt(&mut tx, &mut p, &callback).await?;
    } else if callback.is_success() && !matches!(p.status, Status::Paid | Status::Credited) {
        // Money reported for a payment that already ended (the sweep gave up on it): never
        // credited automatically, always put in front of the operator.
        let reason = format!(
            "M-Pesa reports payment {} after the payment ended {}",
            callback.receipt.as_deref().unwrap_or("(no receipt)"),
            p.status.as_str()
        );
        store::flag(&mut tx, &mut p, &reason).await?;
    }
    inbox::mark_processed(&mut tx, event).await?;
    tx.commit().await?;
    faults::point!(faults::PURCHASE_AFTER_CALLBACK);

    // After the commit: the job reads what was stored. Should Redis refuse, the sweep finds the
    // payment (open, with a callback) and enqueues the check itself.
    let job = VerifyPurchase {
        payment_id: id.0,
        trigger: format!("mpesa_callback:{key}"),
    };
    if let Err(e) = queues.enqueue(&job).await {
        tracing::error!(payment = %id, error = %e, "verify job not enqueued; the sweep will pick it up");
    }
    Ok(CallbackOutcome::Accepted)
}

/// The payment whose secret callback URL ends in `token`. Looked up by the token's SHA-256: the
/// database compares digests, so response timing says nothing about how much of a guessed
/// token was right.
pub(super) async fn by_token(
    pool: &PgPool,
    token: &str,
) -> Result<Option<crate::domain::PaymentId>, sqlx::Error> {
    if token.len() > 128 {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT id FROM payments WHERE callback_token_hash = $1")
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await
}

/// Keeps what the callback said (for the check to compare) and, when the push's own answer
/// was lost, learns its CheckoutRequestID from the callback.
async fn adopt(
    tx: &mut sqlx::PgConnection,
    p: &mut Payment,
    cb: &StkCallback,
) -> Result<(), PaymentError> {
    sqlx::query(
        "UPDATE payments SET provider_ref = COALESCE(provider_ref, $2), callback_result_code = $3,
             callback_result_desc = $4, callback_amount = $5, callback_receipt = $6, callback_at = now(),
             updated_at = now()
         WHERE id = $1",
    )
    .bind(p.id)
    .bind(&cb.checkout_request_id)
    .bind(i32::try_from(cb.result_code).unwrap_or(i32::MAX))
    .bind(&cb.result_desc)
    .bind(cb.amount)
    .bind(&cb.receipt)
    .execute(&mut *tx)
    .await?;
    if p.provider_ref.is_none() {
        p.provider_ref = Some(cb.checkout_request_id.clone());
    }
    if p.status == Status::Initiated {
        store::set_status(
            tx,
            p,
            Status::Pending,
            "mpesa_callback",
            serde_json::json!({ "checkout_request_id": cb.checkout_request_id }),
        )
        .await?;
    }
    Ok(())
}

async fn reject(
    pool: &PgPool,
    body: &[u8],
    reason: &'static str,
) -> Result<CallbackOutcome, PaymentError> {
    reject_as(pool, "mpesa", body, reason).await
}

/// Records a refused callback of `provider` (a metric, the inbox) and says so.
pub(super) async fn reject_as(
    pool: &PgPool,
    provider: &str,
    body: &[u8],
    reason: &'static str,
) -> Result<CallbackOutcome, PaymentError> {
    crate::metrics::webhook_rejected(provider, reason);
    inbox::reject(pool, provider, body, reason).await?;
    Ok(CallbackOutcome::Rejected(reason))
}
