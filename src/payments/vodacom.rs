//! M-Pesa in Tanzania through Vodacom's OpenAPI. The purchase request only writes the payment
//! (`initiated`) and enqueues `VerifyPurchase`; the job makes the C2B call, which holds until the
//! customer enters the PIN or the prompt times out, and then the status query decides:
//!
//! 1. the job waits for a live session (a new one takes up to 30 s), then moves the payment to
//!    `pending` *before* the call: from then on it is never sent again, whatever happens;
//! 2. the C2B answer: INS-0 keeps the transaction id; INS-5 cancels, INS-4/6/2006/2051 fail the
//!    payment with the reason shown to the buyer; a configuration or field error fails it
//!    flagged for the operator; INS-16 or an unreachable platform (nothing charged) is tried
//!    again a few times in the job, then fails it; INS-1, INS-9, INS-10, INS-23 or no answer
//!    leave it `pending`, unknown;
//! 3. `queryTransactionStatus/` by our ThirdPartyConversationID (the payment id): `Completed`
//!    credits once (the transaction id is the receipt, unique across payments), `Cancelled` /
//!    `Expired` / `Failed` end it, `N/A` asks again with a growing delay while the payment is
//!    young and expires it, flagged, once its time is up; any other status ends it, logged.
//!
//! The asynchronous result, when the platform posts one, only makes the job query again.

use std::time::Duration;

use copcca_jobs::VerifyPurchase;
use sqlx::PgPool;

use super::CallbackOutcome;
use super::mpesa::{by_token, reject_as};
use super::store::{self, Payment};
use super::verify::{end, end_locked, expire_unconfirmed, pay_and_credit, settled};
use super::{PaymentError, PaymentProviders, Status, Verified};
use crate::domain::PaymentId;
use crate::faults;
use crate::inbox;
use crate::providers::vodacom::{
    AsyncResult, C2bAccepted, C2bPayment, InsClass, TxnStatus, VodacomClient, VodacomError,
};
use crate::queue::Queues;

/// Attempts of a C2B call the platform did not take (INS-16, unreachable): nothing was charged.
const C2B_ATTEMPTS: u32 = 3;
/// The longest wait between two status queries of a young payment.
const MAX_RECHECK: Duration = Duration::from_secs(60);

/// Enqueues the job that starts a Vodacom payment (its C2B call), for a payment not yet sent.
/// Should Redis refuse, the reconciler finds the open payment and enqueues its check itself.
pub async fn enqueue_start(queues: &Queues, payment: &Payment) {
    if !payment.is_vodacom() || payment.status != Status::Initiated {
        return;
    }
    let job = VerifyPurchase {
        payment_id: payment.id.0,
        trigger: "vodacom_start".into(),
    };
    if let Err(e) = queues.enqueue(&job).await {
        tracing::error!(payment = %payment.id, error = %e, "vodacom start job not enqueued; the reconciler will pick it up");
    }
}

/// Our `input_ThirdPartyConversationID` for a payment: its id, 32 hex digits.
pub fn conversation_id(id: PaymentId) -> String {
    id.0.simple().to_string()
}

pub(super) async fn verify(
    pool: &PgPool,
    providers: &PaymentProviders,
    p: Payment,
) -> Result<Verified, PaymentError> {
    let client = providers
        .vodacom
        .as_ref()
        .ok_or_else(|| PaymentError::Provider {
            retryable: true,
            detail: "Vodacom M-Pesa is not configured in this process".into(),
        })?;
    let p = if p.status == Status::Initiated {
        match send(pool, client, p).await? {
            Sent::Go(p) => *p,
            Sent::Done(v) => return Ok(v),
        }
    } else {
        p
    };
    confirm(pool, providers, client, p).await
}

enum Sent {
    /// Sent now or before: ask the status query.
    Go(Box<Payment>),
    /// Nothing more to do in this run.
    Done(Verified),
}

/// Step 1 and 2: the C2B call, once.
async fn send(pool: &PgPool, client: &VodacomClient, p: Payment) -> Result<Sent, PaymentError> {
    if p.past_expiry() {
        return end(pool, p.id, Status::Expired, "not sent to M-Pesa in time")
            .await
            .map(Sent::Done);
    }
    match client.ready().await {
        Ok(()) => {}
        Err(VodacomError::SessionNotLive(wait)) => {
            return Ok(Sent::Done(Verified::Waiting {
                recheck_in: Some(wait),
            }));
        }
        Err(e) => {
            return Err(PaymentError::Provider {
                retryable: true,
                detail: format!("Vodacom M-Pesa session: {e}"),
            });
        }
    }
    let Some(p) = mark_sent(pool, p.id).await? else {
        // Another run sent it (or settled it) first.
        let p = store::find(pool, p.id)
            .await?
            .ok_or(PaymentError::NotFound(p.id))?;
        return if p.status.is_open() {
            Ok(Sent::Go(Box::new(p)))
        } else {
            settled(p).map(Sent::Done)
        };
    };
    let phone = p.phone.clone().unwrap_or_default();
    let conversation = conversation_id(p.id);
    let reference = format!("SMS{}", &conversation[16..]);
    let request = C2bPayment {
        amount: p.amount,
        msisdn: phone.trim_start_matches('+'),
        third_party_conversation_id: &conversation,
        reference: &reference,
        description: "SMS credits",
    };
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match client.c2b(&request).await {
            Err(e) if e.is_transient() && attempt < C2B_ATTEMPTS => {
                tracing::warn!(payment = %p.id, error = %e, attempt, "M-Pesa did not take the payment; trying again");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            other => break other,
        }
    };
    faults::point!(faults::PURCHASE_AFTER_CONFIRM);
    record_c2b(pool, p, &outcome).await
}

/// Moves an `initiated` payment to `pending` before its C2B call; `None` when it is not
/// `initiated` any more.
async fn mark_sent(pool: &PgPool, id: PaymentId) -> Result<Option<Payment>, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if p.status != Status::Initiated {
        return Ok(None);
    }
    store::set_status(
        &mut tx,
        &mut p,
        Status::Pending,
        "vodacom",
        serde_json::json!({ "c2b": conversation_id(id) }),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(p))
}

/// Writes what the C2B call answered.
async fn record_c2b(
    pool: &PgPool,
    p: Payment,
    outcome: &Result<C2bAccepted, VodacomError>,
) -> Result<Sent, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, p.id).await?;
    let ended = match outcome {
        Ok(accepted) => {
            sqlx::query(
                "UPDATE payments SET provider_ref = COALESCE(provider_ref, $2), updated_at = now() WHERE id = $1",
            )
            .bind(p.id)
            .bind(&accepted.transaction_id)
            .execute(&mut *tx)
            .await?;
            p.provider_ref
                .get_or_insert(accepted.transaction_id.clone());
            None
        }
        Err(e) if e.is_unknown() => {
            tracing::warn!(payment = %p.id, error = %e, "M-Pesa payment outcome unknown; asking the status query, never sending again");
            None
        }
        Err(e) => {
            let (to, reason, flag) = refusal(e);
            if flag {
                store::flag(&mut tx, &mut p, &reason).await?;
            }
            Some(end_locked(&mut tx, &mut p, to, &reason).await?)
        }
    };
    tx.commit().await?;
    Ok(match ended {
        Some(v) => Sent::Done(v),
        None => Sent::Go(Box::new(p)),
    })
}

/// How a settled refusal ends the payment: its status, the reason shown, and whether the
/// operator must look (our configuration or request is wrong, or a code we do not know).
fn refusal(e: &VodacomError) -> (Status, String, bool) {
    let Some(fault) = e.fault() else {
        return (
            Status::Failed,
            format!("M-Pesa did not take the payment: {e}"),
            !e.is_transient(),
        );
    };
    let shown = format!("M-Pesa: {} ({})", fault.desc, fault.code);
    match fault.class() {
        InsClass::Declined if fault.code.eq_ignore_ascii_case("INS-5") => {
            (Status::Cancelled, shown, false)
        }
        InsClass::Declined => (Status::Failed, shown, false),
        InsClass::Busy => (Status::Failed, shown, false),
        _ => (
            Status::Failed,
            format!("Vodacom M-Pesa refused the payment: {fault}"),
            true,
        ),
    }
}

/// Step 3: the status query decides.
async fn confirm(
    pool: &PgPool,
    providers: &PaymentProviders,
    client: &VodacomClient,
    p: Payment,
) -> Result<Verified, PaymentError> {
    let expired = p.past_expiry();
    let answer = match client.query(&conversation_id(p.id)).await {
        Ok(a) => a,
        Err(e) if expired => {
            return expire_unconfirmed(
                pool,
                p.id,
                &format!("M-Pesa status query failed at expiry: {e}"),
                "M-Pesa could not confirm it in time",
            )
            .await;
        }
        Err(VodacomError::SessionNotLive(wait)) => {
            return Ok(Verified::Waiting {
                recheck_in: Some(wait),
            });
        }
        Err(e) => {
            return Err(PaymentError::Provider {
                retryable: e.is_transient(),
                detail: format!("M-Pesa status query: {e}"),
            });
        }
    };
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, p.id).await?;
    if !p.status.is_open() {
        return settled(p);
    }
    let v = match &answer.status {
        TxnStatus::Completed => {
            let said = answer.transaction_id.clone();
            match (&p.provider_ref, &said) {
                (Some(ours), Some(theirs)) if ours != theirs => {
                    let reason = format!(
                        "transaction mismatch: M-Pesa's payment call said {ours}, its status query {theirs}"
                    );
                    store::flag(&mut tx, &mut p, &reason).await?;
                    end_locked(&mut tx, &mut p, Status::Failed, &reason).await?
                }
                _ => {
                    let receipt = said.or_else(|| p.provider_ref.clone());
                    let amount = p.amount;
                    pay_and_credit(&mut tx, &mut p, receipt.as_deref(), amount, "vodacom").await?
                }
            }
        }
        TxnStatus::Cancelled => {
            end_locked(&mut tx, &mut p, Status::Cancelled, "M-Pesa: cancelled").await?
        }
        TxnStatus::Expired => {
            end_locked(
                &mut tx,
                &mut p,
                Status::Expired,
                "M-Pesa: the prompt expired",
            )
            .await?
        }
        TxnStatus::Failed => {
            end_locked(
                &mut tx,
                &mut p,
                Status::Failed,
                "M-Pesa: the payment failed",
            )
            .await?
        }
        TxnStatus::Other(status) => {
            tracing::error!(payment = %p.id, status, "M-Pesa status not understood; the payment is ended");
            let reason = format!("M-Pesa status {status:?} not understood");
            store::flag(&mut tx, &mut p, &reason).await?;
            end_locked(&mut tx, &mut p, Status::Failed, &reason).await?
        }
        TxnStatus::Pending if expired => {
            store::flag(
                &mut tx,
                &mut p,
                "M-Pesa had no final status for the payment at expiry; the customer may have paid",
            )
            .await?;
            end_locked(
                &mut tx,
                &mut p,
                Status::Expired,
                "M-Pesa could not confirm it in time",
            )
            .await?
        }
        TxnStatus::Pending => Verified::Waiting {
            recheck_in: Some(recheck(&p, providers.mpesa_recheck)),
        },
    };
    tx.commit().await?;
    Ok(v)
}

/// Polled with backoff while young: a quarter of the payment's age, between `least` and a
/// minute.
fn recheck(p: &Payment, least: Duration) -> Duration {
    let age = (chrono::Utc::now() - p.created_at)
        .to_std()
        .unwrap_or_default();
    (age / 4).clamp(least, MAX_RECHECK.max(least))
}

/// Records an asynchronous result that came to `/webhooks/vodacom/{token}`. Unsigned, so only
/// a reason to look: it must come to the payment's own secret URL and name that payment (our
/// ThirdPartyConversationID); it is stored once per (payment, transaction, result code), and
/// `VerifyPurchase` then asks the status query. A success for a payment that already ended
/// without money is flagged for the operator, never credited automatically.
pub async fn record_vodacom_result(
    pool: &PgPool,
    queues: &Queues,
    token: &str,
    body: &[u8],
) -> Result<(CallbackOutcome, Option<AsyncResult>), PaymentError> {
    let Some(id) = by_token(pool, token).await? else {
        return Ok((
            reject_as(pool, PROVIDER, body, "unknown_token").await?,
            None,
        ));
    };
    let Ok(result) = AsyncResult::parse(body) else {
        return Ok((reject_as(pool, PROVIDER, body, "malformed").await?, None));
    };
    let mut tx = pool.begin().await?;
    let mut p = store::lock(&mut tx, id).await?;
    if !p.is_vodacom() {
        drop(tx);
        return Ok((reject_as(pool, PROVIDER, body, "not_vodacom").await?, None));
    }
    if result.third_party_reference != conversation_id(p.id) {
        drop(tx);
        return Ok((
            reject_as(pool, PROVIDER, body, "reference_mismatch").await?,
            None,
        ));
    }
    let key = format!(
        "{}:{}:{}",
        result.third_party_reference, result.transaction_id, result.result_code
    );
    let payload = String::from_utf8_lossy(body);
    let Some(event) = inbox::accept(&mut tx, PROVIDER, &key, &payload).await? else {
        return Ok((CallbackOutcome::Duplicate, Some(result)));
    };
    if result.result_code == "0"
        && !p.status.is_open()
        && !matches!(p.status, Status::Paid | Status::Credited | Status::Refunded)
    {
        let reason = format!(
            "M-Pesa reports transaction {} after the payment ended {}",
            result.transaction_id,
            p.status.as_str()
        );
        store::flag(&mut tx, &mut p, &reason).await?;
    }
    inbox::mark_processed(&mut tx, event).await?;
    tx.commit().await?;
    let job = VerifyPurchase {
        payment_id: id.0,
        trigger: format!("vodacom_result:{key}"),
    };
    if let Err(e) = queues.enqueue(&job).await {
        tracing::error!(payment = %id, error = %e, "verify job not enqueued; the reconciler will pick it up");
    }
    Ok((CallbackOutcome::Accepted, Some(result)))
}

const PROVIDER: &str = "vodacom";

/// Reverses a credited Vodacom payment in full (`PUT reversal/`); the reversal's transaction id.
pub(super) async fn reverse(
    providers: &PaymentProviders,
    p: &Payment,
) -> Result<String, super::refunds::RefundError> {
    use super::refunds::RefundError;
    let client = providers
        .vodacom
        .as_ref()
        .ok_or_else(|| RefundError::Provider {
            detail: "Vodacom M-Pesa is not configured in this process".into(),
            unknown: false,
        })?;
    let Some(transaction) = p.receipt.as_deref() else {
        return Err(RefundError::Provider {
            detail: "the payment has no M-Pesa transaction id".into(),
            unknown: false,
        });
    };
    let conversation = uuid::Uuid::new_v4().simple().to_string();
    match client.reversal(transaction, p.amount, &conversation).await {
        Ok(done) => Ok(done.transaction_id),
        Err(e) if e.is_unknown() => Err(RefundError::Provider {
            detail: format!(
                "M-Pesa reversal of {transaction} ({conversation}) has an unknown outcome: check with Vodacom before refunding again: {e}"
            ),
            unknown: true,
        }),
        Err(e) => Err(RefundError::Provider {
            detail: format!("M-Pesa refused the reversal of {transaction}: {e}"),
            unknown: false,
        }),
    }
}
