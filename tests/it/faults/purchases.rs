//! The purchase job's points and the bank approval's.

use copcca_sms::domain::{Country, PaymentId};
use copcca_sms::fakes::daraja;
use copcca_sms::fakes::stripe as fake_stripe;
use copcca_sms::faults;
use copcca_sms::payments::Status;
use serde_json::json;
use sqlx::PgPool;

use super::*;
use crate::payments::Harness;

/// A paid M-Pesa push (100 credits) whose callback has enqueued its verification.
async fn paid_push(h: &Harness) -> PaymentId {
    let id = h
        .start(json!({"package_id": "starter", "method": "mpesa", "phone": "0712345678"}))
        .await;
    let checkout = h.daraja.pushes()[0].checkout_request_id.clone().unwrap();
    h.daraja.wait_settled(&checkout).await;
    id
}

/// `copcca-sms work` armed to crash at `point`, confirming with the harness's fake Daraja.
async fn crashing_worker(h: &Harness, point: &'static str) -> Crashing {
    let daraja = h.daraja.base.to_string();
    let env = [
        ("PUBLIC_URL", h.app.base.as_str()),
        ("MPESA_API_BASE", &daraja),
        ("MPESA_CONSUMER_KEY", daraja::CONSUMER_KEY),
        ("MPESA_CONSUMER_SECRET", daraja::CONSUMER_SECRET),
        ("MPESA_SHORTCODE", daraja::SHORTCODE),
        ("MPESA_PASSKEY", daraja::PASSKEY),
    ];
    Crashing::start(h.pool(), &h.deps, "work", point, &env).await
}

/// Credited exactly once, with its one purchase entry, and the audit clean.
async fn credited_once(h: &Harness, id: PaymentId, credits: i64) {
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.available().await, credits);
    assert_eq!(
        h.entries_of(id).await,
        vec![("purchase".to_string(), credits)]
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn stopped_after_storing_a_stripe_event_its_redelivery_gets_the_payment_credited(
    pool: PgPool,
) {
    let h = Harness::new(pool, Country::TZ).await;
    let (status, v) = h
        .purchase(json!({"package_id": "business", "method": "card"}), None)
        .await;
    assert_eq!(status, 201, "{v}");
    let id: PaymentId = v["id"].as_str().unwrap().parse().unwrap();
    let session = h.payment(id).await.provider_ref.unwrap();

    let (port, base) = free_port();
    let addr = format!("127.0.0.1:{port}");
    let stripe = h.stripe.base.to_string();
    let env = [
        ("PUBLIC_URL", base.as_str()),
        ("BIND_ADDR", &addr),
        ("STRIPE_API_BASE", &stripe),
        ("STRIPE_SECRET_KEY", fake_stripe::SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", fake_stripe::WEBHOOK_SECRET),
    ];
    let serve = Crashing::start(
        h.pool(),
        &h.deps,
        "serve",
        faults::PURCHASE_AFTER_CALLBACK,
        &env,
    )
    .await;
    serving(&base).await;
    h.stripe
        .set_webhook_url(format!("{base}/webhooks/stripe").parse().unwrap());
    let delivery = h.stripe.complete(&session, true).await;
    assert_eq!(delivery.status, 0, "serve died answering");
    serve.crashed().await;
    assert_eq!(h.payment(id).await.status, Status::Pending);

    // Unanswered, Stripe sends the event again (to another serve of the fleet): a duplicate,
    // whose check is enqueued again because the payment is still open. The reconciler would
    // look at the payment only once its session had expired, an hour on.
    h.stripe
        .set_webhook_url(h.app.url("/webhooks/stripe").parse().unwrap());
    assert_eq!(
        h.stripe.redeliver(&delivery.event_id, 2, false).await,
        [200, 200]
    );
    h.sweep().await;
    fresh_worker(&h.deps, &["purchases"]).await;
    credited_once(&h, id, 500).await;
}

#[sqlx::test]
async fn stopped_after_m_pesa_confirmed_the_payment_is_credited_once(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let id = paid_push(&h).await;
    crashing_worker(&h, faults::PURCHASE_AFTER_CONFIRM)
        .await
        .crashed()
        .await;
    assert!(!h.daraja.queries().is_empty(), "M-Pesa was asked");
    assert_eq!(h.payment(id).await.status, Status::Pending);
    assert_eq!(h.available().await, 0, "confirmed, not yet credited");
    fresh_worker(&h.deps, &["purchases"]).await;
    credited_once(&h, id, 100).await;
}

#[sqlx::test]
async fn stopped_after_the_credit_the_redelivered_job_credits_nothing_more(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let id = paid_push(&h).await;
    crashing_worker(&h, faults::PURCHASE_AFTER_CREDIT)
        .await
        .crashed()
        .await;
    assert_eq!(h.available().await, 100, "credited before the crash");
    fresh_worker(&h.deps, &["purchases"]).await;
    credited_once(&h, id, 100).await;
}

#[sqlx::test]
async fn stopped_between_approval_and_credit_a_transfer_is_credited_once(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (status, v) = h
        .purchase(
            json!({"package_id": "business", "method": "bank_transfer"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id: PaymentId = v["id"].as_str().unwrap().parse().unwrap();
    let approve = json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "CRDB-1"});
    let path = format!("/admin/purchases/{id}/approve");

    let (port, base) = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = [("PUBLIC_URL", base.as_str()), ("BIND_ADDR", &addr)];
    let serve = Crashing::start(
        h.pool(),
        &h.deps,
        "serve",
        faults::BANK_BETWEEN_WRITES,
        &env,
    )
    .await;
    serving(&base).await;
    let answered = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(&h.admin)
        .json(&approve)
        .send()
        .await;
    assert!(answered.is_err(), "serve died answering: {answered:?}");
    serve.crashed().await;
    assert_eq!(h.payment(id).await.status, Status::Paid, "approved");
    assert_eq!(h.available().await, 0, "not yet credited");

    // Nobody retries: the reconciler finds the paid payment and its check credits it.
    assert_eq!(h.sweep().await.payments_checked, 1);
    fresh_worker(&h.deps, &["purchases"]).await;
    credited_once(&h, id, 500).await;
    // The operator, who saw an error, approves again: nothing more.
    let (status, v) = h.post_as(&h.admin, &path, approve).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("credited")),
        "{v}"
    );
    fresh_worker(&h.deps, &["purchases"]).await;
    credited_once(&h, id, 500).await;
}
