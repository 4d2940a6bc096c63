//! Card payments through Stripe Checkout: signed events, the session re-read before crediting,
//! delayed methods, recording a session through database faults (refunds: `stripe_refunds`).

use copcca_sms::domain::Country;
use copcca_sms::fakes::stripe as fake;
use copcca_sms::payments::Status;
use copcca_sms::providers::stripe::signature;
use serde_json::json;
use sqlx::PgPool;

use super::Harness;

/// Starts a card purchase of `package`; the payment and its session id.
pub(super) async fn checkout(
    h: &Harness,
    package: &str,
) -> (copcca_sms::domain::PaymentId, String) {
    let (status, v) = h
        .purchase(json!({"package_id": package, "method": "card"}), None)
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().parse().unwrap();
    let session = h.payment(id).await.provider_ref.unwrap();
    assert_eq!(
        v["checkout_url"].as_str(),
        h.stripe.session(&session).map(|s| s.url).as_deref()
    );
    (id, session)
}

#[sqlx::test]
async fn a_paid_checkout_is_credited_once(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    let s = h.stripe.session(&session).unwrap();
    assert_eq!(
        (s.amount_total, s.currency.as_str()),
        (2_000_000, "tzs"),
        "TZS is two-decimal"
    );
    assert_eq!(s.client_reference_id, Some(id.to_string()));
    assert_eq!(
        s.payment_intent_metadata.get("payment_id"),
        Some(&id.to_string())
    );
    let create = &h.stripe.requests()[0];
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(format!("checkout:{id}").as_str())
    );

    let delivery = h.stripe.complete(&session, true).await;
    assert_eq!(delivery.status, 200);
    // Stripe retries; a burst of the same event credits once.
    let statuses = h.stripe.redeliver(&delivery.event_id, 10, true).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited);
    assert!(
        p.payment_intent
            .as_deref()
            .is_some_and(|pi| pi.starts_with("pi_"))
    );
    assert_eq!(h.available().await, 500);
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 500)]);
    h.audit_clean().await;
}

#[sqlx::test]
async fn forged_stale_and_wrongly_signed_events_change_nothing(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "starter").await;
    // The real event, held back: the webhook URL is set only for the forged deliveries.
    let body = serde_json::to_string(&json!({
        "id": "evt_forged_1", "object": "event", "type": "checkout.session.completed", "created": 1,
        "data": {"object": {"id": session, "object": "checkout.session", "status": "complete",
                 "payment_status": "paid", "amount_total": 500_000, "currency": "tzs",
                 "client_reference_id": id.to_string(), "metadata": {}}}
    }))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            Some(signature::sign("whsec_not_ours", now, body.as_bytes())),
            "mismatch",
        ),
        (
            Some(signature::sign(
                fake::WEBHOOK_SECRET,
                now - 301,
                body.as_bytes(),
            )),
            "too_old",
        ),
        (
            Some(signature::sign(
                fake::WEBHOOK_SECRET,
                now + 3600,
                body.as_bytes(),
            )),
            "too_new",
        ),
        (Some(format!("t={now},v1=deadbeef")), "mismatch"),
        (Some("garbage".to_string()), "malformed"),
        (None, "missing_signature"),
    ];
    for (header, _) in &cases {
        assert_eq!(h.stripe.deliver(&body, header.clone()).await, 400);
    }
    // Signed over other bytes than those sent.
    let tampered = body.replace("500000", "5");
    let header = signature::sign(fake::WEBHOOK_SECRET, now, body.as_bytes());
    assert_eq!(h.stripe.deliver(&tampered, Some(header)).await, 400);

    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Pending);
    assert_eq!(h.available().await, 0);
    let mut expected: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
    expected.push("mismatch");
    assert_eq!(h.rejections("stripe").await, expected);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_delayed_payment_is_credited_when_it_succeeds(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let (id, session) = checkout(&h, "starter").await;
    assert_eq!(h.stripe.complete(&session, false).await.status, 200);
    h.drain().await;
    assert_eq!(
        h.payment(id).await.status,
        Status::Pending,
        "complete but unpaid: wait"
    );
    assert_eq!(h.stripe.async_payment_succeeded(&session).await.status, 200);
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.available().await, 100);

    // Another purchase whose delayed payment fails, and one that expires.
    let (failed, s2) = checkout(&h, "starter").await;
    h.stripe.complete(&s2, false).await;
    h.stripe.async_payment_failed(&s2).await;
    let (expired, s3) = checkout(&h, "starter").await;
    h.stripe.expire(&s3).await;
    h.drain().await;
    assert_eq!(h.payment(failed).await.status, Status::Failed);
    assert_eq!(h.payment(expired).await.status, Status::Expired);
    assert_eq!(h.available().await, 100);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_session_whose_amount_does_not_match_is_flagged_not_credited(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    h.stripe.set_session_amount(&session, 100, "tzs");
    h.stripe.complete(&session, true).await;
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Failed);
    assert!(p.flagged_reason.unwrap().contains("amount mismatch"));
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn stripe_failing_to_create_the_session_fails_the_purchase(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    // One 500 is retried in the request with the same Idempotency-Key.
    h.stripe.fail_next_creates(1, 500);
    let (status, v) = h
        .purchase(json!({"package_id": "starter", "method": "card"}), None)
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (201, Some("pending")),
        "{v}"
    );
    // Three in a row: 503 and the payment failed.
    h.stripe.fail_next_creates(3, 500);
    let (status, v) = h
        .purchase(json!({"package_id": "starter", "method": "card"}), None)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (503, Some("stripe_unavailable")),
        "{v}"
    );
    let id: copcca_sms::domain::PaymentId = v["payment_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(h.payment(id).await.status, Status::Failed);
    assert_eq!(h.stripe.sessions().len(), 1);
}

/// Reads of `session` the fake received so far.
fn session_reads(h: &Harness, session: &str) -> usize {
    let path = format!("/v1/checkout/sessions/{session}");
    h.stripe
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

#[sqlx::test]
async fn stripe_erring_on_the_session_read_credits_nothing_until_it_answers(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    // Passing errors (500, 503, 429): the job retries with backoff and credits on the answer.
    let (id, session) = checkout(&h, "business").await;
    for status in [500, 503, 429] {
        h.stripe.fail_next_retrieves(1, status);
    }
    assert_eq!(h.stripe.complete(&session, true).await.status, 200);
    h.drain().await;
    assert_eq!(
        session_reads(&h, &session),
        4,
        "three errors, then the session"
    );
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 500)]);
    assert_eq!(h.available().await, 500);

    // A refusal (the API key was rolled): not retried, the job settles as a dead letter, and the
    // payment stays open without a credit.
    let (refused, s2) = checkout(&h, "starter").await;
    h.stripe.fail_next_retrieves(1, 401);
    h.stripe.complete(&s2, true).await;
    h.drain().await;
    assert_eq!(session_reads(&h, &s2), 1, "a 401 is not retried");
    let p = h.payment(refused).await;
    assert_eq!((p.status, p.receipt), (Status::Pending, None));
    assert!(h.entries_of(refused).await.is_empty());
    assert_eq!(h.available().await, 500);
    let dead = h
        .deps
        .queues
        .store("purchases")
        .dead_letters(None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].job.args.contains(&refused.to_string()) && dead[0].error.contains("401"),
        "{dead:?}"
    );

    // Once the session's time is up the sweep reads it again, and this time Stripe answers.
    h.expire(&[refused]).await;
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 1);
    h.drain().await;
    assert_eq!(session_reads(&h, &s2), 2);
    assert_eq!(h.payment(refused).await.status, Status::Credited);
    assert_eq!(
        h.entries_of(refused).await,
        vec![("purchase".to_string(), 100)]
    );
    assert_eq!(h.available().await, 600);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_session_stripe_refuses_at_expiry_ends_expired_and_flagged(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "starter").await;
    // The customer may have paid, but the session can no longer be read (another account's
    // key, say), and the payment's time is up.
    h.stripe.fail_next_retrieves(1_000, 404);
    h.stripe.complete(&session, true).await;
    h.expire(&[id]).await;
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(
        (p.status, p.failure_reason.as_deref()),
        (Status::Expired, Some("Stripe could not confirm it in time"))
    );
    let flag = p.flagged_reason.unwrap_or_default();
    assert!(
        flag.contains("unreadable at expiry") && flag.contains("404"),
        "{flag}"
    );
    assert!(h.entries_of(id).await.is_empty());
    assert_eq!(session_reads(&h, &session), 1);
    // Ended: the sweep does not ask again (and fail again) every window.
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 0);
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_card_purchase_replayed_after_its_first_request_failed_midway_gets_the_first_session(
    pool: PgPool,
) {
    let h = Harness::new(pool, Country::TZ).await;
    // The first request makes the payment and its Checkout Session, and then cannot store the
    // session (here a trigger refuses the write, as a database that went down would): 500.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_checkout() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'the database went away'; END $$;
         CREATE TRIGGER refuse_checkout BEFORE UPDATE OF checkout_url ON payments
         FOR EACH ROW EXECUTE FUNCTION refuse_checkout();",
    )
    .execute(h.pool())
    .await
    .unwrap();
    let body = json!({"package_id": "business", "method": "card"});
    let (status, _) = h.purchase(body.clone(), Some("buy-once")).await;
    assert_eq!(status, 500);
    assert_eq!(h.stripe.sessions().len(), 1, "Stripe made the session");
    sqlx::raw_sql("DROP TRIGGER refuse_checkout ON payments")
        .execute(h.pool())
        .await
        .unwrap();

    // The buyer tries again with the same key, a moment later (in another second: a request
    // built from the clock would differ from the first, and Stripe would refuse it): the same
    // payment, now with the session Stripe made the first time, and no second session.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, v) = h.purchase(body, Some("buy-once")).await;
    assert!(status == 200 || status == 201, "{status} {v}");
    let sessions = h.stripe.sessions();
    assert_eq!(sessions.len(), 1, "no second session");
    assert_eq!(v["checkout_url"].as_str(), Some(sessions[0].url.as_str()));
    let id = v["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(h.payment(id).await.status, Status::Pending);

    let delivery = h.stripe.complete(&sessions[0].id, true).await;
    assert_eq!(delivery.status, 200);
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.available().await, 500);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_paid_checkout_whose_check_redis_lost_is_credited_by_the_reconciler_within_minutes(
    pool: PgPool,
) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    let delivery = h.stripe.complete(&session, true).await;
    assert_eq!(delivery.status, 200, "Stripe has its 2xx and sends no more");
    // Redis loses the check's job before a worker ran it (a flush).
    crate::support::forget_jobs(&h.deps.queues).await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Pending);

    // The session is open for most of an hour still; Stripe's event, noted on the payment,
    // brings the reconciler to it now.
    assert_eq!(h.sweep().await.payments_checked, 1);
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    assert_eq!(h.available().await, 500);
    assert_eq!(
        h.sweep().await.payments_checked,
        0,
        "a credited one is left alone"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_delayed_checkout_not_yet_paid_is_not_polled_by_the_reconciler(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    // A delayed method: the session completes unpaid; its money comes days later, by event.
    assert_eq!(h.stripe.complete(&session, false).await.status, 200);
    h.drain().await;
    assert_eq!(h.sweep().await.payments_checked, 0);
    assert_eq!(h.payment(id).await.status, Status::Pending);
}

#[sqlx::test]
async fn a_checkout_session_is_recorded_through_a_database_restart(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    super::refuse_writes(h.pool(), super::PROVIDER_REF, 2).await;
    // Stripe made the session; the write of it fails twice as a restarting server refuses
    // (SQLSTATE 57P03), and the third try lands: the buyer gets the checkout at once.
    let (id, session) = checkout(&h, "business").await;
    assert_eq!(h.stripe.sessions().len(), 1);
    assert_eq!(h.payment(id).await.status, Status::Pending);
    assert_eq!(super::refused_writes(h.pool()).await, 2);
    assert_eq!(h.stripe.complete(&session, true).await.status, 200);
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_checkout_session_is_recorded_when_its_status_history_write_fails_twice(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    // Now the restart refuses the status history row (`payment_events`) of the move to pending.
    super::refuse_writes(h.pool(), super::STATUS_HISTORY, 2).await;
    let (id, _session) = checkout(&h, "business").await;
    assert_eq!(super::refused_writes(h.pool()).await, 2);
    assert_eq!(h.stripe.sessions().len(), 1);
    assert_eq!(h.payment(id).await.status, Status::Pending);
}

#[sqlx::test]
async fn a_purchase_the_database_cannot_record_is_answered_503_with_retry_after(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    // The database stays unusable for longer than the tries last.
    super::refuse_writes(h.pool(), super::PROVIDER_REF, 100).await;
    let resp = h
        .app
        .client
        .post(h.app.url("/v1/purchases"))
        .bearer_auth(&h.token)
        .header("Idempotency-Key", "buy-later")
        .json(&json!({"package_id": "business", "method": "card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable", "{problem}");
    assert_eq!(
        super::refused_writes(h.pool()).await,
        5,
        "five tries in all"
    );
}
