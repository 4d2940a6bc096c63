//! M-Pesa in Tanzania through Vodacom's OpenAPI: the purchase job makes the C2B call, the status
//! query decides, and a payment is credited once per transaction, whatever the results posted.

use std::sync::Arc;
use std::time::Duration;

use copcca_sms::domain::{Country, PaymentId};
use copcca_sms::fakes::vodacom::{C2bOutcome, C2bScript};
use copcca_sms::payments::{self, Status};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::Harness;

/// Business, 500 credits for TZS 20,000, from a Tanzanian wallet.
fn business() -> Value {
    json!({"package_id": "business", "method": "mpesa", "phone": "0754123456"})
}

async fn tanzanian(pool: PgPool) -> Harness {
    Harness::new(pool, Country::TZ).await
}

/// `GET` as the company member; the status and the body.
async fn get(h: &Harness, path: &str) -> (u16, Value) {
    let resp = h
        .app
        .client
        .get(h.app.url(path))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Credited once: the status, the one purchase entry, the balance and the audit.
async fn credited_once(h: &Harness, id: PaymentId, credits: i64) {
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited, "{:?}", p.failure_reason);
    assert_eq!(
        h.entries_of(id).await,
        vec![("purchase".to_string(), credits)]
    );
    assert_eq!(h.available().await, credits);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_tzs_purchase_is_sent_by_the_job_and_credited_after_the_query_confirms_it(pool: PgPool) {
    let h = tanzanian(pool).await;
    let (status, v) = h.purchase(business(), None).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["currency"].as_str(),
            v["phone"].as_str()
        ),
        (Some("initiated"), Some("TZS"), Some("+255754123456"))
    );
    assert!(
        h.vodacom.payments().is_empty(),
        "the payment call is the job's, never the request's"
    );
    let id: PaymentId = v["id"].as_str().unwrap().parse().unwrap();

    h.drain().await;
    let sent = h.vodacom.payments();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].amount.as_str(), sent[0].msisdn.as_str()),
        ("20000", "255754123456")
    );
    assert_eq!(
        sent[0].third_party_conversation_id,
        id.0.simple().to_string()
    );
    assert!(sent[0].reference.len() <= 20 && !sent[0].reference.contains(' '));
    let transaction = sent[0].transaction_id.clone().unwrap();
    let p = h.payment(id).await;
    assert_eq!(p.receipt.as_deref(), Some(transaction.as_str()));
    assert_eq!(
        h.vodacom.queries()[0].reference,
        payments::vodacom_conversation_id(id)
    );
    assert!(
        h.vodacom.refusals().is_empty(),
        "{:?}",
        h.vodacom.refusals()
    );
    credited_once(&h, id, 500).await;

    let (_, v) = get(&h, &format!("/v1/purchases/{id}")).await;
    assert_eq!(v["status"], "credited");
    assert_eq!(v["receipt"].as_str(), Some(transaction.as_str()));
}

#[sqlx::test]
async fn a_cancelled_prompt_cancels_and_a_refusal_fails_with_the_reason_shown(pool: PgPool) {
    let h = tanzanian(pool).await;
    h.vodacom.script([
        C2bOutcome::Cancelled.into(),
        C2bOutcome::InsufficientBalance.into(),
        C2bOutcome::Code(400, "INS-13").into(),
        C2bOutcome::Code(400, "INS-996").into(),
    ]);
    let cancelled = h.start(business()).await;
    h.drain().await;
    let poor = h.start(business()).await;
    h.drain().await;
    let misconfigured = h.start(business()).await;
    h.drain().await;
    let unknown = h.start(business()).await;
    h.drain().await;

    let p = h.payment(cancelled).await;
    assert_eq!(p.status, Status::Cancelled);
    assert!(p.failure_reason.unwrap().contains("INS-5"));
    let p = h.payment(poor).await;
    assert_eq!(p.status, Status::Failed);
    assert!(p.failure_reason.as_deref().unwrap().contains("INS-2006"));
    assert!(
        p.flagged_reason.is_none(),
        "the customer's answer, not ours"
    );
    let (_, v) = get(&h, &format!("/v1/purchases/{poor}")).await;
    assert!(
        v["failure_reason"]
            .as_str()
            .unwrap()
            .contains("Insufficient balance"),
        "{v}"
    );
    let p = h.payment(misconfigured).await;
    assert_eq!(p.status, Status::Failed);
    assert!(
        p.flagged_reason.unwrap().contains("INS-13"),
        "the operator must look"
    );
    // A code not in the table: terminal (never pushed again), and the operator looks.
    let p = h.payment(unknown).await;
    assert_eq!(p.status, Status::Failed);
    assert!(p.flagged_reason.unwrap().contains("INS-996"));
    assert_eq!(h.available().await, 0);
    assert_eq!(h.vodacom.payments().len(), 4, "one prompt each");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_timeout_whose_query_later_says_completed_is_credited_once(pool: PgPool) {
    let h = tanzanian(pool).await;
    h.vodacom.script([
        C2bScript::new(C2bOutcome::Timeout)
            .then("Completed")
            .pending_queries(2),
        C2bScript::new(C2bOutcome::InternalError),
        C2bScript::new(C2bOutcome::Timeout),
    ]);
    let late = h.start(business()).await;
    h.drain().await;
    let masked = h.start(business()).await;
    h.drain().await;
    let expired = h.start(business()).await;
    h.drain().await;
    // The sweep asks again about everything; nothing is sent again, nothing credited twice.
    h.sweep().await;
    h.drain().await;

    assert_eq!(h.vodacom.payments().len(), 3, "never sent twice");
    for id in [late, masked] {
        assert_eq!(h.payment(id).await.status, Status::Credited);
        assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 500)]);
    }
    let p = h.payment(expired).await;
    assert_eq!(p.status, Status::Expired);
    assert_eq!(h.available().await, 1000);
    let late_queries = h
        .vodacom
        .queries()
        .iter()
        .filter(|q| q.reference == payments::vodacom_conversation_id(late))
        .count();
    assert!(
        late_queries >= 3,
        "N/A twice, then Completed: {late_queries}"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_unconfirmed_payment_at_expiry_is_expired_and_flagged(pool: PgPool) {
    let h = tanzanian(pool).await;
    h.vodacom
        .script([C2bScript::new(C2bOutcome::InternalError).pending_queries(1000)]);
    let id = h.start(business()).await;
    // Sent while its time runs (INS-1: unknown); then its time is up with the status still N/A.
    let providers = h.deps.providers.current().payments.clone();
    let first = payments::verify(h.pool(), &providers, id).await.unwrap();
    assert!(
        matches!(first, payments::Verified::Waiting { .. }),
        "{first:?}"
    );
    h.expire(&[id]).await;
    payments::verify(h.pool(), &providers, id).await.unwrap();
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Expired);
    assert!(p.flagged_reason.unwrap().contains("may have paid"));
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_session_refreshed_after_ins_989_still_credits(pool: PgPool) {
    let h = tanzanian(pool).await;
    let first = h.start(business()).await;
    h.drain().await;
    h.vodacom.expire_sessions();
    let second = h.start(business()).await;
    h.drain().await;
    assert_eq!(h.vodacom.session_requests(), 2);
    assert_eq!(
        h.vodacom.refusals(),
        vec!["INS-989 Session Creation Failed".to_string()]
    );
    for id in [first, second] {
        assert_eq!(h.payment(id).await.status, Status::Credited);
    }
    assert_eq!(h.available().await, 1000);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_session_not_live_yet_delays_the_payment_and_nothing_is_sent_with_it(pool: PgPool) {
    let mut h = tanzanian(pool).await;
    h.vodacom.sessions_live_after(Duration::from_millis(700));
    let client = h
        .vodacom
        .client(
            &crate::queue::redis_url(),
            &format!("live-{}", uuid::Uuid::new_v4().simple()),
        )
        .with_session_wait(Duration::from_millis(700));
    h.deps
        .change_providers(|p| p.payments.vodacom = Some(Arc::new(client)));
    let id = h.start(business()).await;
    h.drain().await;
    credited_once(&h, id, 500).await;
    assert!(
        h.vodacom.refusals().is_empty(),
        "{:?}",
        h.vodacom.refusals()
    );
    assert_eq!(h.vodacom.session_requests(), 1);
}

#[sqlx::test]
async fn a_tzs_purchase_is_refused_with_a_clear_error_when_vodacom_is_not_configured(pool: PgPool) {
    let h = Harness::with_env(
        pool,
        Country::TZ,
        &[
            ("VODACOM_API_KEY", ""),
            ("VODACOM_PUBLIC_KEY", ""),
            ("VODACOM_SERVICE_PROVIDER_CODE", ""),
        ],
    )
    .await;
    let (status, v) = h.purchase(business(), None).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["code"], "method_not_available", "{v}");
    assert_eq!(
        (v["method"].as_str(), v["currency"].as_str()),
        (Some("mpesa"), Some("TZS"))
    );
    assert!(v["detail"].as_str().unwrap().contains("TZS"), "{v}");
    // Kenyan M-Pesa is still there, in KES from a Kenyan wallet.
    let (status, v) = h
        .purchase(
            json!({"package_id": "starter", "method": "mpesa", "phone": "+254712345678", "currency": "KES"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, methods) = get(&h, "/v1/payment-methods").await;
    assert_eq!(
        methods,
        json!([
            {"method": "mpesa", "provider": "daraja", "currencies": ["KES"]},
            {"method": "card", "provider": "stripe", "currencies": ["USD", "TZS", "KES"]},
            {"method": "bank_transfer", "provider": "bank", "currencies": ["USD", "TZS", "KES"]},
        ])
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE currency = 'TZS'")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_wallet_follows_the_currency(pool: PgPool) {
    let h = tanzanian(pool).await;
    let (_, methods) = get(&h, "/v1/payment-methods").await;
    assert_eq!(
        methods[0],
        json!({"method": "mpesa", "provider": "vodacom", "currencies": ["TZS"]})
    );
    assert_eq!(
        methods[1],
        json!({"method": "mpesa", "provider": "daraja", "currencies": ["KES"]})
    );
    for (body, field) in [
        (
            json!({"package_id": "business", "method": "mpesa", "phone": "+254712345678"}),
            "phone",
        ),
        (
            json!({"package_id": "business", "method": "mpesa", "phone": "0754123456", "currency": "USD"}),
            "currency",
        ),
        (
            json!({"package_id": "business", "method": "mpesa", "phone": "+255754123456", "currency": "KES"}),
            "phone",
        ),
    ] {
        let (status, v) = h.purchase(body.clone(), None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}: {v}"
        );
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {v}"
        );
    }
    // A Kenyan wallet in KES goes to Daraja, prompted in the request as before.
    let (status, v) = h
        .purchase(
            json!({"package_id": "starter", "method": "mpesa", "phone": "+254712345678", "currency": "KES"}),
            None,
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (201, Some("pending")),
        "{v}"
    );
    assert_eq!(h.daraja.pushes().len(), 1);
    assert!(h.vodacom.payments().is_empty());
    h.audit_clean().await;
}

mod operator;
mod results;
