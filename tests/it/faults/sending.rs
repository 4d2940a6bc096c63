//! The send job's points, the status callback's, the refund job's and the sweep's.

use std::time::{Duration, Instant};

use copcca_jobs::SweepOverdueDebts;
use copcca_sms::faults;
use copcca_sms::messages::MessageStatus;
use serde_json::json;
use sqlx::PgPool;

use super::*;
use crate::sending::{DRAIN, Harness};

const TO: &str = "+255754123456";

/// A company with 10 credits, the API (callbacks to `public_url` when given) and the fake
/// Twilio. The fresh worker's Twilio client gives up after 1 s (so an attempt's window is
/// 3 s), and sends again an unanswered send that Twilio's list does not show after 4 s.
async fn harness(pool: PgPool, public_url: Option<&str>) -> Harness {
    let mut h = match public_url {
        Some(url) => Harness::with_env(pool, 10, &[("PUBLIC_URL", url)]).await,
        None => Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(1))).await,
    };
    h.deps.twilio_timing.resend_unanswered_after = Duration::from_secs(4);
    h
}

/// Accepts one message to `TO` (outside quiet hours whatever the time); its id.
async fn accept(h: &Harness) -> uuid::Uuid {
    let (status, v) = h
        .send(
            json!({"to": TO, "body": "Karibu tena", "quiet_hours": false}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// `copcca-sms work` armed to crash at `point`, sending through the harness's fake Twilio.
async fn crashing_worker(h: &Harness, point: &'static str) -> Crashing {
    let twilio = h.twilio.base.to_string();
    let public = h.app.state.config.public_url.to_string();
    Crashing::start(
        h.pool(),
        &h.deps,
        "work",
        point,
        &twilio_env(&twilio, &public),
    )
    .await
}

/// The worker stops at `point` during the message's send; a fresh worker finishes it: sent
/// once, with one request to Twilio, charged once.
async fn send_stops_at(pool: PgPool, point: &'static str) -> (Harness, uuid::Uuid) {
    let h = harness(pool, None).await;
    let id = accept(&h).await;
    crashing_worker(&h, point).await.crashed().await;
    fresh_worker(&h.deps, &["sms"]).await;
    assert_eq!(requests_per_number(&h.twilio).get(TO), Some(&1));
    h.assert_sent_once(id, 9).await;
    assert_eq!(entries(h.pool(), id, "commit").await, 1);
    (h, id)
}

#[sqlx::test]
async fn stopped_after_the_claim_the_send_is_held_then_sent_once(pool: PgPool) {
    let (h, _) = send_stops_at(pool, faults::SEND_AFTER_CLAIM).await;
    // Nothing reached Twilio before the crash: the fresh run looked first, found nothing,
    // and sent only once the unanswered send's deadline had passed.
    assert!(!h.twilio.lists().is_empty(), "looked up before sending");
}

#[sqlx::test]
async fn a_claim_slower_than_its_slot_gives_the_slot_up_so_requests_stay_paced(pool: PgPool) {
    let h = harness(pool, None).await;
    let numbers = ["+255754123456", "+255754123457", "+255754123458"];
    for to in numbers {
        let (status, v) = h
            .send(
                json!({"to": to, "body": "Karibu", "quiet_hours": false}),
                None,
            )
            .await;
        assert_eq!(status, 202, "{v}");
    }
    // Five a second: slots 206 ms apart. The worker's first claim stalls 400 ms: sent then, its
    // request would land 12 ms before the third message's, two requests in one slot.
    let twilio = h.twilio.base.to_string();
    let public = h.app.state.config.public_url.to_string();
    let mut env = twilio_env(&twilio, &public).to_vec();
    env.push(("TWILIO_MAX_PER_SECOND", "5"));
    let worker = Crashing::armed(
        h.pool(),
        &h.deps,
        "work",
        faults::SEND_AFTER_CLAIM,
        "1*sleep(400)",
        &env,
    )
    .await;
    let started = Instant::now();
    let sent = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM messages WHERE company_id = $1 AND status = 'sent'",
        )
        .bind(h.company.id)
        .fetch_one(h.pool())
    };
    while sent().await.unwrap() < numbers.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} requests reached Twilio",
            h.twilio.requests().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(worker);
    let mut times = h.twilio.request_times();
    times.sort();
    let pace = copcca_sms::pacing::Pace::per_second(5);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        // Half a slot: far from the 0.5 ms two requests in one slot are apart, and clear of the
        // jitter of a loaded machine.
        assert!(
            gap.as_secs_f64() * 1000.0 >= pace.interval_ms / 2.0,
            "two requests {gap:?} apart (slots are {} ms apart)",
            pace.interval_ms
        );
    }
    let per_number = requests_per_number(&h.twilio);
    assert!(per_number.values().all(|n| *n == 1), "{per_number:?}");
    h.audit_clean().await;
}

#[sqlx::test]
async fn stopped_after_twilios_answer_the_send_is_adopted_not_resent(pool: PgPool) {
    let (h, _) = send_stops_at(pool, faults::SEND_AFTER_PROVIDER_ANSWER).await;
    assert!(!h.twilio.lists().is_empty(), "adopted from Twilio's list");
}

#[sqlx::test]
async fn stopped_after_the_charge_the_redelivered_job_changes_nothing(pool: PgPool) {
    let (h, _) = send_stops_at(pool, faults::SEND_AFTER_CHARGE).await;
    assert!(
        h.twilio.lists().is_empty(),
        "a sent message needs no lookup"
    );
}

#[sqlx::test]
async fn stopped_after_a_failure_report_the_refund_is_still_made_once(pool: PgPool) {
    let (port, base) = free_port();
    let h = harness(pool, Some(&base)).await;
    let id = accept(&h).await;
    h.drain(DRAIN).await;
    let sid = h.message(id).await.provider_id.clone().unwrap();
    assert_eq!(h.available().await, 9);

    let twilio = h.twilio.base.to_string();
    let addr = format!("127.0.0.1:{port}");
    let mut env = twilio_env(&twilio, &base).to_vec();
    env.push(("BIND_ADDR", &addr));
    let serve = Crashing::start(
        h.pool(),
        &h.deps,
        "serve",
        faults::CALLBACK_AFTER_STORE,
        &env,
    )
    .await;
    serving(&base).await;
    let answered = h.twilio.callback(&sid, "failed", Some("30003")).await;
    assert!(answered.is_err(), "serve died answering: {answered:?}");
    serve.crashed().await;
    assert_eq!(h.message(id).await.status, MessageStatus::Failed);
    assert_eq!(h.available().await, 9, "stored, not yet refunded");

    // A minute on, the reconciler finds the failed message still charged.
    sqlx::query("UPDATE messages SET updated_at = now() - interval '2 minutes' WHERE id = $1")
        .bind(id)
        .execute(h.pool())
        .await
        .unwrap();
    assert_eq!(h.reconcile(Duration::from_secs(60)).await.refunds, 1);
    fresh_worker(&h.deps, &["refunds"]).await;
    assert_eq!(h.available().await, 10, "refunded");
    assert_eq!(entries(h.pool(), id, "refund").await, 1);
    assert_eq!(h.twilio.requests().len(), 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn stopped_after_the_refund_the_redelivered_job_refunds_nothing_more(pool: PgPool) {
    let h = harness(pool, None).await;
    let id = accept(&h).await;
    h.drain(DRAIN).await;
    let sid = h.message(id).await.provider_id.clone().unwrap();
    let answered = h.twilio.callback(&sid, "failed", Some("30003")).await;
    assert_eq!(answered.unwrap(), 204);

    crashing_worker(&h, faults::REFUND_AFTER_REFUND)
        .await
        .crashed()
        .await;
    assert_eq!(h.available().await, 10, "refunded before the crash");
    fresh_worker(&h.deps, &["refunds"]).await;
    assert_eq!(h.available().await, 10);
    assert_eq!(entries(h.pool(), id, "refund").await, 1);
    assert_eq!(h.message(id).await.status, MessageStatus::Failed);
    assert_eq!(h.twilio.requests().len(), 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn stopped_after_claiming_debts_the_reminders_are_sent_once_each(pool: PgPool) {
    let h = harness(pool, None).await;
    sqlx::query(
        "UPDATE companies SET sweep_enabled = true, sweep_min_overdue_days = 3, sweep_interval_days = 7,
                sweep_max_reminders = 3, payment_link = 'https://pay.duka.co.tz' WHERE id = $1",
    )
    .bind(h.company.id)
    .execute(h.pool())
    .await
    .unwrap();
    let mut debts = Vec::new();
    for (name, phone) in [("Asha", "+255754123456"), ("Juma", "+255754123457")] {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO debts (id, company_id, customer_name, phone, amount, currency, due_date, invoice_number, language)
             VALUES ($1, $2, $3, $4, 20000, 'TZS', current_date - 10, 'INV-1', 'en')",
        )
        .bind(id)
        .bind(h.company.id)
        .bind(name)
        .bind(phone)
        .execute(h.pool())
        .await
        .unwrap();
        debts.push(id);
    }
    let job = SweepOverdueDebts {
        company_id: Some(h.company.id.0),
        run: Some("fault-run".into()),
    };
    h.deps.queues.enqueue(&job).await.unwrap();

    crashing_worker(&h, faults::SWEEP_AFTER_CLAIM)
        .await
        .crashed()
        .await;
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE company_id = $1 AND status = 'queued' AND sweep_run = 'fault-run'",
    )
    .bind(h.company.id)
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(queued, 2, "claimed and written before the crash");

    // The redelivered sweep finds the debts claimed for this run; the reconciler finds the
    // reminders that never got their send jobs.
    fresh_worker(&h.deps, &["sweeps"]).await;
    assert_eq!(h.reconcile(Duration::ZERO).await.requeued, 2);
    fresh_worker(&h.deps, &["sms"]).await;

    let messages: Vec<(Option<uuid::Uuid>, String, i64)> = sqlx::query_as(
        "SELECT debt_id, status, credits FROM messages WHERE company_id = $1 ORDER BY debt_id",
    )
    .bind(h.company.id)
    .fetch_all(h.pool())
    .await
    .unwrap();
    assert_eq!(
        messages.iter().map(|m| m.0).collect::<Vec<_>>(),
        debts.into_iter().map(Some).collect::<Vec<_>>(),
        "one reminder per debt"
    );
    assert!(messages.iter().all(|m| m.1 == "sent"), "{messages:?}");
    let per_number = requests_per_number(&h.twilio);
    assert_eq!(per_number.values().copied().collect::<Vec<_>>(), [1, 1]);
    let charged: i64 = messages.iter().map(|m| m.2).sum();
    assert_eq!(h.available().await, 10 - charged);
    let reminded: Vec<i32> =
        sqlx::query_scalar("SELECT reminders_sent FROM debts WHERE company_id = $1")
            .bind(h.company.id)
            .fetch_all(h.pool())
            .await
            .unwrap();
    assert_eq!(reminded, [1, 1]);
    h.audit_clean().await;
}
