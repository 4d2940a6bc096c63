//! M-Pesa STK Push: credited only after the STK Push Query confirms, once, whatever the callbacks.

use std::time::Duration;

use copcca_sms::domain::Country;
use copcca_sms::fakes::daraja::{PushOutcome, PushScript, QueryFault, SyncError};
use copcca_sms::payments::{self, Status, Verified};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;

use super::Harness;

fn starter() -> serde_json::Value {
    json!({"package_id": "starter", "method": "mpesa", "phone": "0712345678"})
}

/// Starts an M-Pesa purchase and waits until the customer's outcome and its callback (if any)
/// have happened; the payment id and the push's CheckoutRequestID.
async fn pushed(h: &Harness) -> (copcca_sms::domain::PaymentId, String) {
    let id = h.start(starter()).await;
    let checkout = h
        .daraja
        .pushes()
        .last()
        .unwrap()
        .checkout_request_id
        .clone()
        .unwrap();
    h.daraja.wait_settled(&checkout).await;
    (id, checkout)
}

#[sqlx::test]
async fn a_paid_push_is_credited_after_the_query_confirms_it(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let (status, v) = h.purchase(starter(), None).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["amount"].as_str(),
            v["currency"].as_str()
        ),
        (Some("pending"), Some("260.00"), Some("KES"))
    );
    let id: copcca_sms::domain::PaymentId = v["id"].as_str().unwrap().parse().unwrap();

    let push = h.daraja.pushes()[0].clone();
    assert_eq!((push.amount, push.phone), (260, 254_712_345_678));
    assert!(push.account_reference.len() <= 12 && push.transaction_desc.len() <= 13);
    let callback_prefix = h.app.url("/webhooks/mpesa/");
    assert!(
        push.callback_url.starts_with(&callback_prefix),
        "{}",
        push.callback_url
    );
    assert_eq!(
        push.callback_url.len() - callback_prefix.len(),
        43,
        "a 32-byte token"
    );
    let checkout = push.checkout_request_id.unwrap();
    assert_eq!(
        h.payment(id).await.provider_ref.as_deref(),
        Some(checkout.as_str())
    );

    h.daraja.wait_settled(&checkout).await;
    assert_eq!(h.daraja.deliveries()[0].status, Some(200));
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited);
    assert!(
        p.receipt.as_deref().is_some_and(|r| r.len() == 10),
        "{:?}",
        p.receipt
    );
    assert!(
        h.daraja.queries().contains(&checkout),
        "credited only after a query"
    );
    assert_eq!(h.available().await, 100);
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 100)]);
    h.audit_clean().await;
}

#[sqlx::test]
async fn cancelled_wrong_pin_and_timeout_end_without_credit(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    for (outcome, end) in [
        (PushOutcome::Cancelled, Status::Cancelled),
        (PushOutcome::WrongPin, Status::Failed),
        (PushOutcome::Timeout, Status::Expired),
    ] {
        h.daraja.script([PushScript::new(outcome)]);
        let (id, _) = pushed(&h).await;
        h.drain().await;
        let p = h.payment(id).await;
        assert_eq!(p.status, end, "{:?}", p.failure_reason);
        assert!(p.failure_reason.unwrap().contains("M-Pesa result"));
    }
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_lost_callback_is_settled_by_the_sweep_through_the_query(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    h.daraja
        .script([PushScript::new(PushOutcome::Paid).no_callback()]);
    let (id, _) = pushed(&h).await;
    h.drain().await;
    assert_eq!(
        h.payment(id).await.status,
        Status::Pending,
        "nothing without a callback yet"
    );

    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 1);
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited);
    assert_eq!(h.available().await, 100);
    // The next sweep has nothing to do.
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_query_still_processing_is_asked_again_until_paid(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    h.daraja
        .script([PushScript::new(PushOutcome::Paid).pending_queries(2)]);
    let (id, checkout) = pushed(&h).await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    let asked = h
        .daraja
        .queries()
        .iter()
        .filter(|q| **q == checkout)
        .count();
    assert_eq!(asked, 3, "two 'still processing' answers, then the result");
    assert_eq!(h.available().await, 100);
    h.audit_clean().await;
}

#[sqlx::test]
async fn forged_callbacks_change_nothing(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    h.daraja
        .script([PushScript::new(PushOutcome::Paid).no_callback()]);
    let (id, checkout) = pushed(&h).await;
    let body = h.daraja.callback_body(&checkout).unwrap();
    let real_url = h.daraja.pushes()[0].callback_url.clone();

    // A guessed token.
    let forged = h
        .app
        .url("/webhooks/mpesa/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(h.daraja.post_callback(&forged, &body).await.unwrap(), 404);
    // The right token, but naming another push.
    let other = body.replace(&checkout, "ws_CO_000000000000000000");
    assert_eq!(
        h.daraja.post_callback(&real_url, &other).await.unwrap(),
        404
    );
    // Not a callback at all.
    assert_eq!(
        h.daraja
            .post_callback(&real_url, "{\"Body\":")
            .await
            .unwrap(),
        400
    );

    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!((p.status, p.callback_at), (Status::Pending, None));
    assert_eq!(
        h.rejections("mpesa").await,
        vec!["unknown_token", "checkout_mismatch", "malformed"]
    );
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_callback_with_another_amount_is_flagged_not_credited(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    h.daraja
        .script([PushScript::new(PushOutcome::Paid).callback_amount(Decimal::ONE)]);
    let (id, _) = pushed(&h).await;
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Failed);
    assert!(p.flagged_reason.unwrap().contains("amount mismatch"));
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

/// A callback carrying the receipt of a payment already credited (a replayed or forged receipt):
/// the payment is flagged and ended, the flag kept, nothing credited, and no sweep asks again.
#[sqlx::test]
async fn a_receipt_that_credited_another_payment_is_flagged_and_ends_the_payment(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let (first, first_checkout) = pushed(&h).await;
    h.drain().await;
    let credited = h.payment(first).await;
    assert_eq!(credited.status, Status::Credited);
    let receipt = credited.receipt.unwrap();

    h.daraja
        .script([PushScript::new(PushOutcome::Paid).no_callback()]);
    let (second, checkout) = pushed(&h).await;
    // The first push's callback, renamed to the second push: a paid push with a reused receipt.
    let reused = h
        .daraja
        .callback_body(&first_checkout)
        .unwrap()
        .replace(&first_checkout, &checkout);
    assert!(reused.contains(&receipt));
    let url = h.daraja.pushes()[1].callback_url.clone();
    assert_eq!(h.daraja.post_callback(&url, &reused).await.unwrap(), 200);
    h.drain().await;

    let p = h.payment(second).await;
    assert_eq!(p.status, Status::Failed, "{:?}", p.failure_reason);
    let flag = p.flagged_reason.expect("the flag is kept");
    assert!(
        flag.contains(&receipt) && flag.contains(&first.to_string()),
        "{flag}"
    );
    assert_eq!(p.receipt, None);
    assert_eq!(h.available().await, 100, "only the first payment's credits");
    assert_eq!(h.sweep().await.payments_checked, 0, "not checked again");
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_same_callback_ten_times_at_once_credits_once(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let (id, checkout) = pushed(&h).await;
    let replays =
        futures::future::join_all((0..10).map(|_| h.daraja.replay_callback(&checkout))).await;
    assert!(
        replays.iter().all(|r| r.as_ref().is_ok_and(|s| *s == 200)),
        "{replays:?}"
    );
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.entries_of(id).await.len(), 1);
    assert_eq!(h.available().await, 100);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE provider = 'mpesa' AND accepted",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(stored, 1, "duplicates are recognised, not stored again");
    h.audit_clean().await;
}

#[sqlx::test]
async fn push_errors_fail_or_are_retried_as_daraja_says(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    // Invalid request: refused at once, the payment failed.
    h.daraja
        .script([PushScript::sync_error(SyncError::INVALID_PHONE)]);
    let (status, v) = h.purchase(starter(), None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (502, Some("mpesa_rejected")),
        "{v}"
    );
    let failed: copcca_sms::domain::PaymentId = v["payment_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(h.payment(failed).await.status, Status::Failed);

    // Spike arrest once: retried in the request (no prompt was sent), then accepted.
    h.daraja.script([
        PushScript::sync_error(SyncError::SPIKE_ARREST),
        PushScript::new(PushOutcome::Paid),
    ]);
    let (status, v) = h.purchase(starter(), None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (201, Some("pending")),
        "{v}"
    );

    // Busy every time: 503, and the payment failed (the customer may try again).
    h.daraja.script([
        PushScript::sync_error(SyncError::QUOTA),
        PushScript::sync_error(SyncError::QUOTA),
        PushScript::sync_error(SyncError::QUOTA),
    ]);
    let (status, v) = h.purchase(starter(), None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (503, Some("mpesa_unavailable")),
        "{v}"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn money_reported_after_the_payment_expired_is_flagged_not_credited(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    h.daraja.script([PushScript::new(PushOutcome::Paid)
        .no_callback()
        .pending_queries(1_000)]);
    let (id, checkout) = pushed(&h).await;
    // The window closes with M-Pesa still saying "processing": the sweep expires it.
    h.expire(&[id]).await;
    h.sweep().await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Expired);

    // Then the callback arrives after all, saying the customer paid.
    assert_eq!(h.daraja.replay_callback(&checkout).await.unwrap(), 200);
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Expired, "never credited automatically");
    assert!(
        p.flagged_reason
            .unwrap()
            .contains("after the payment ended")
    );
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_query_failing_at_expiry_expires_and_flags_without_credit(pool: PgPool) {
    let mut h = Harness::new(pool, Country::KE).await;
    let busy = QueryFault::Error(SyncError::SPIKE_ARREST);
    // Before expiry a failing query is retried: two 500s, then M-Pesa confirms the payment.
    h.daraja.script([PushScript::new(PushOutcome::Paid)
        .no_callback()
        .failing_queries(2, busy)]);
    let (retried, first) = pushed(&h).await;
    h.sweep().await;
    h.drain().await;
    assert_eq!(h.payment(retried).await.status, Status::Credited);
    assert_eq!(
        h.daraja.queries().iter().filter(|q| **q == first).count(),
        3
    );
    assert_eq!(h.available().await, 100);

    // At expiry, the customer paid but the query fails: a 500, then (another push) no answer in
    // time. Each payment ends expired at once, flagged for the operator, without a credit.
    h.daraja.script([PushScript::new(PushOutcome::Paid)
        .no_callback()
        .failing_queries(1_000, busy)]);
    let (unavailable, second) = pushed(&h).await;
    h.daraja.script([PushScript::new(PushOutcome::Paid)
        .no_callback()
        .failing_queries(1_000, QueryFault::Hang(Duration::from_secs(1)))]);
    let (unanswered, third) = pushed(&h).await;
    let mpesa = std::sync::Arc::new(h.daraja.client().with_timeout(Duration::from_millis(300)));
    h.deps.change_providers(|p| p.payments.mpesa = Some(mpesa));
    h.expire(&[unavailable, unanswered]).await;
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 2);
    h.drain().await;
    for (id, checkout, error) in [
        (unavailable, &second, "500.003.02"),
        (unanswered, &third, "no answer from daraja"),
    ] {
        let p = h.payment(id).await;
        assert_eq!(p.status, Status::Expired, "{:?}", p.failure_reason);
        assert_eq!(
            p.failure_reason.as_deref(),
            Some("M-Pesa could not confirm it in time")
        );
        let flag = p.flagged_reason.unwrap_or_default();
        assert!(
            flag.contains("STK Push Query failed at expiry") && flag.contains(error),
            "{flag}"
        );
        assert_eq!(p.receipt, None);
        assert!(h.entries_of(id).await.is_empty());
        assert_eq!(
            h.daraja.queries().iter().filter(|q| *q == checkout).count(),
            1,
            "ended on the first failure, not asked again"
        );
    }
    assert_eq!(h.available().await, 100);

    // The money's callback arrives after all: still no automatic credit, still in front of the
    // operator; and the next sweep has nothing left to check.
    assert_eq!(h.daraja.replay_callback(&second).await.unwrap(), 200);
    h.drain().await;
    let p = h.payment(unavailable).await;
    assert_eq!(p.status, Status::Expired);
    assert!(
        p.flagged_reason
            .unwrap()
            .contains("after the payment ended")
    );
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 0);
    assert_eq!(h.available().await, 100);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_query_failing_at_expiry_leaves_a_payment_credited_meanwhile_unflagged(pool: PgPool) {
    let mut h = Harness::new(pool, Country::KE).await;
    // The customer paid; the first query about the push gets no answer in time, the next works.
    h.daraja.script([PushScript::new(PushOutcome::Paid)
        .no_callback()
        .failing_queries(1, QueryFault::Hang(Duration::from_secs(1)))]);
    let (id, _) = pushed(&h).await;
    let mpesa = std::sync::Arc::new(h.daraja.client().with_timeout(Duration::from_millis(500)));
    h.deps.change_providers(|p| p.payments.mpesa = Some(mpesa));
    h.expire(&[id]).await;

    // One run reads the open payment and waits on its query...
    let (pool, providers) = (
        h.pool().clone(),
        h.deps.providers.current().payments.clone(),
    );
    let first = tokio::spawn(async move { payments::verify(&pool, &providers, id).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...while another run's query confirms the payment, and it is credited.
    let second = payments::verify(h.pool(), &h.deps.providers.current().payments, id)
        .await
        .unwrap();
    assert!(
        matches!(second, Verified::Credited { replay: false, .. }),
        "{second:?}"
    );
    // The first query then fails at expiry: the payment is settled, and stays as it is, with
    // no false alarm for the operator.
    let first = first.await.unwrap().unwrap();
    assert!(
        matches!(first, Verified::Credited { replay: true, .. }),
        "{first:?}"
    );
    let p = h.payment(id).await;
    assert_eq!((p.status, p.flagged_reason), (Status::Credited, None));
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 100)]);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_push_daraja_took_is_recorded_through_a_database_restart(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    // The customer pays after the service has recorded the push (its callback comes later).
    h.daraja
        .script([PushScript::new(PushOutcome::Paid).delay(Duration::from_secs(3))]);
    super::refuse_writes(h.pool(), super::PROVIDER_REF, 2).await;
    // The prompt is on the phone; writing its CheckoutRequestID fails twice as a restarting
    // server refuses (57P03), and the third try lands. Without the tries the buyer got an error,
    // and a replay could only wait for the callback: a push is never sent twice.
    let (status, v) = h.purchase(starter(), Some("buy-once")).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["status"].as_str(), Some("pending"));
    assert_eq!(super::refused_writes(h.pool()).await, 2);
    let pushes = h.daraja.pushes();
    assert_eq!(pushes.len(), 1, "one prompt on the phone");
    let checkout = pushes[0].checkout_request_id.clone().unwrap();
    let id = v["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(h.payment(id).await.provider_ref, Some(checkout.clone()));

    h.daraja.wait_settled(&checkout).await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.available().await, 100);
    h.audit_clean().await;
}
