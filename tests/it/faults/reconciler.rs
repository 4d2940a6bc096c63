//! The reconciler's points, between the steps of a pass. Every test leaves the same work for
//! the pass (one of each kind it finishes), crashes `copcca-sms schedule` at its point on the
//! first pass, and lets a fresh pass and fresh workers finish it all.

use std::time::Duration;

use copcca_sms::domain::{CompanyId, MessageId, PaymentId};
use copcca_sms::faults;
use copcca_sms::messages::{MessageStatus, NewMessage, insert_queued};
use copcca_sms::payments::Status;
use copcca_sms::{inbox, payments};
use sqlx::PgPool;

use super::*;
use crate::sending::Harness;
use crate::support::{commit_one, credits, paid_payment, reserve_one};

/// What a pass has to finish, as a crash or a lost Redis leaves it.
struct Work {
    /// `queued`, its job lost.
    lost: uuid::Uuid,
    /// `sending` for two hours, Twilio never got it (the worker died after its claim).
    unanswered: uuid::Uuid,
    /// `queued` with a hold that has expired (a retry kept it), its job lost too.
    expired_hold: uuid::Uuid,
    /// Charged, then `failed`, its refund lost.
    unrefunded: uuid::Uuid,
    /// Charged; a `failed` report stored but never applied.
    unreported: uuid::Uuid,
    /// `paid`, its credit's job lost.
    payment: PaymentId,
}

const COMPANY_CREDITS: i64 = 10;
const PAYMENT_CREDITS: i64 = 50;

async fn queued(h: &Harness, to: &str) -> uuid::Uuid {
    let message = NewMessage {
        company: h.company.id,
        to,
        body: "Kumbusho",
        encoding: "GSM-7",
        segments: 1,
        credits: credits(1),
        sender: "test",
    };
    insert_queued(&mut h.pool().acquire().await.unwrap(), &message)
        .await
        .unwrap()
        .0
}

/// A message charged as a send would (a made-up SID), `sent`; the SID.
async fn charged(h: &Harness, company: CompanyId, to: &str) -> (uuid::Uuid, String) {
    let id = queued(h, to).await;
    let mut conn = h.pool().acquire().await.unwrap();
    let hold = reserve_one(&mut conn, company, MessageId(id), credits(1), HOUR)
        .await
        .unwrap()
        .unwrap()
        .value;
    commit_one(&mut conn, hold.id, credits(1)).await.unwrap();
    (id, format!("SM{}", hold.id.0.simple()))
}

const HOUR: Duration = Duration::from_secs(3600);

async fn execute(h: &Harness, sql: &'static str, id: uuid::Uuid) {
    sqlx::query(sql).bind(id).execute(h.pool()).await.unwrap();
}

async fn leave_work(h: &Harness) -> Work {
    let company = h.company.id;
    let lost = queued(h, "+255754000001").await;

    let unanswered = queued(h, "+255754000002").await;
    let mut conn = h.pool().acquire().await.unwrap();
    reserve_one(&mut conn, company, MessageId(unanswered), credits(1), HOUR)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    execute(
        h,
        "UPDATE messages SET send_attempt_started_at = now() - interval '2 hours',
             updated_at = now() - interval '2 hours' WHERE id = $1",
        unanswered,
    )
    .await;

    let expired_hold = queued(h, "+255754000003").await;
    h.hold(expired_hold, Duration::from_millis(1)).await;

    let (unrefunded, _) = charged(h, company, "+255754000004").await;
    execute(
        h,
        "UPDATE messages SET status = 'failed', error_code = '30003' WHERE id = $1",
        unrefunded,
    )
    .await;

    let (unreported, sid) = charged(h, company, "+255754000005").await;
    let payload = format!("MessageSid={sid}&MessageStatus=failed&ErrorCode=30003");
    let mut conn = h.pool().acquire().await.unwrap();
    let event = inbox::accept(&mut conn, "twilio", &format!("{sid}:failed"), &payload)
        .await
        .unwrap()
        .unwrap();
    sqlx::query(
        "UPDATE webhook_events SET received_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind(event)
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);

    let payment = paid_payment(h.pool(), company, PAYMENT_CREDITS).await;
    // Quiet long enough for the production reconciler's thresholds.
    sqlx::query("UPDATE payments SET updated_at = now() - interval '2 minutes' WHERE id = $1")
        .bind(payment)
        .execute(h.pool())
        .await
        .unwrap();
    for id in [lost, expired_hold, unrefunded] {
        execute(
            h,
            "UPDATE messages SET updated_at = now() - interval '2 minutes' WHERE id = $1",
            id,
        )
        .await;
    }
    Work {
        lost,
        unanswered,
        expired_hold,
        unrefunded,
        unreported,
        payment,
    }
}

/// `schedule` stops at `point` in its first pass; a fresh pass and fresh workers finish.
async fn pass_stops_at(pool: PgPool, point: &'static str) {
    let h = Harness::new(pool, COMPANY_CREDITS).await;
    let work = leave_work(&h).await;
    Crashing::start(h.pool(), &h.deps, "schedule", point, &[])
        .await
        .crashed()
        .await;

    h.reconcile(Duration::from_secs(60)).await;
    fresh_worker(&h.deps, &["sms", "refunds", "purchases"]).await;

    for id in [work.lost, work.unanswered, work.expired_hold] {
        assert_eq!(h.message(id).await.status, MessageStatus::Sent, "{id}");
        assert_eq!(entries(h.pool(), id, "commit").await, 1, "charged once");
    }
    assert_eq!(
        requests_per_number(&h.twilio),
        [
            ("+255754000001".to_string(), 1),
            ("+255754000002".to_string(), 1),
            ("+255754000003".to_string(), 1),
        ]
        .into(),
        "one request per message, none for those already charged"
    );
    for id in [work.unrefunded, work.unreported] {
        assert_eq!(h.message(id).await.status, MessageStatus::Failed, "{id}");
        assert_eq!(entries(h.pool(), id, "refund").await, 1, "refunded once");
    }
    let payment = payments::find(h.pool(), work.payment)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payment.status, Status::Credited);
    // Three messages charged; the two failed ones charged and refunded; the payment credited.
    assert_eq!(
        h.available().await,
        COMPANY_CREDITS + PAYMENT_CREDITS - 3,
        "credits == purchased - charged + refunded + adjusted"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn stopped_after_requeueing_lost_messages_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_QUEUED).await;
}

#[sqlx::test]
async fn stopped_after_reconciling_sending_messages_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_SENDING).await;
}

#[sqlx::test]
async fn stopped_after_releasing_expired_holds_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_HOLDS).await;
}

#[sqlx::test]
async fn stopped_after_enqueueing_missed_refunds_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_REFUNDS).await;
}

#[sqlx::test]
async fn stopped_after_applying_pending_reports_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_REPORTS).await;
}

#[sqlx::test]
async fn stopped_after_marking_unconfirmed_sends_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_UNCONFIRMED).await;
}

#[sqlx::test]
async fn stopped_after_enqueueing_payment_checks_the_next_pass_finishes(pool: PgPool) {
    pass_stops_at(pool, faults::RECONCILE_AFTER_PAYMENTS).await;
}
