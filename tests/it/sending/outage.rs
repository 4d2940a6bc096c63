//! A PostgreSQL outage longer than the workers' retry budget: every job runs out of attempts and is
//! dead-lettered. Once the database is back, the reconciler alone finishes everything: no
//! operator re-drives a dead letter.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use copcca_jobs::{Job, Refund, SendSms, VerifyPurchase};
use copcca_sms::domain::{MessageId, PaymentId};
use copcca_sms::messages::MessageStatus;
use copcca_sms::workers::reconcile::{self, Settings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::*;
use crate::proxy::CuttableProxy;
use crate::support::{self, commit_one, credits, run_workers_until_idle};

const QUEUES: [&str; 3] = [SendSms::QUEUE, Refund::QUEUE, VerifyPurchase::QUEUE];

/// Every pass treats what it reads as stale at once (in production a minute or more).
fn eager() -> Settings {
    Settings {
        stale_queued: Duration::ZERO,
        stale_sending: Duration::ZERO,
        stale_payment: Duration::ZERO,
        ..Default::default()
    }
}

#[sqlx::test]
async fn an_outage_longer_than_the_retry_budget_strands_nothing(
    pool_options: PgPoolOptions,
    db: PgConnectOptions,
) {
    let pool = pool_options.connect_with(db.clone()).await.unwrap();
    let upstream: SocketAddr = tokio::net::lookup_host((db.get_host(), db.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CuttableProxy::start(upstream).await;
    // The workers and the reconciler reach PostgreSQL through the proxy, and give up waiting for
    // a connection after 300 ms: a job's attempt during the outage fails fast. With the fast
    // retries of `run_workers_until_idle`, each job's attempts are used up in a few seconds.
    let worker_pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_millis(300))
        .connect_with(db.clone().port(proxy.addr.port()))
        .await
        .unwrap();
    let h = Harness::with_worker_pool(pool.clone(), worker_pool.clone(), 10, None).await;

    // Messages accepted by the API, their send jobs enqueued.
    let queued = [
        h.accept("0754123456", "One").await,
        h.accept("0754123457", "Two").await,
        h.accept("0754123458", "Three").await,
    ];
    // A message charged, then failed (as Twilio's callback reports it): its refund is due.
    let failed = support::message(h.pool(), h.company.id, 1).await;
    let hold = reserve_one(
        &mut h.pool().acquire().await.unwrap(),
        h.company.id,
        failed,
        credits(1),
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    .expect("a hold")
    .value;
    commit_one(&mut h.pool().acquire().await.unwrap(), hold.id, credits(1))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE messages SET status = 'failed', updated_at = now() - interval '2 minutes'
         WHERE id = $1",
    )
    .bind(failed)
    .execute(h.pool())
    .await
    .unwrap();
    // A purchase paid and not yet credited.
    let payment = support::paid_payment(h.pool(), h.company.id, 50).await;

    // The last pass before the outage: the refund and the payment's check are enqueued; the
    // messages' jobs are live.
    let before = reconcile::reconcile_once(&h.deps, &eager()).await.unwrap();
    assert_eq!(
        (before.requeued, before.refunds, before.payments_checked),
        (0, 1, 1),
        "{before:?}"
    );

    proxy.cut();
    // The workers run every job through all its attempts: the outage outlasts the budget.
    run_workers_until_idle(&h.deps, &QUEUES, Duration::from_secs(60)).await;
    let mut dead = Vec::new();
    for q in QUEUES {
        dead.push(h.deps.queues.store(q).stats().await.unwrap().dead);
    }
    assert_eq!(dead, [3, 1, 1], "every job dead-lettered");
    // A pass while PostgreSQL is unreachable fails, and leaves nothing behind that would stop
    // the next one.
    assert!(reconcile::reconcile_once(&h.deps, &eager()).await.is_err());
    proxy.restore();

    // Passes and workers, as `schedule` and `work` run them, until everything is final.
    let started = Instant::now();
    loop {
        reconcile::reconcile_once(&h.deps, &eager()).await.unwrap();
        run_workers_until_idle(&h.deps, &QUEUES, DRAIN).await;
        if settled(&h, &queued, failed, payment).await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still not final after the outage: messages {:?}, refunded {}, payment {}",
            statuses(&h, &queued).await,
            refunds(&h, failed).await,
            payment_status(&h, payment).await,
        );
    }

    assert_eq!(h.twilio.messages().len(), 3, "each message sent once");
    assert_eq!(refunds(&h, failed).await, 1, "refunded once");
    let purchases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_entries WHERE payment_id = $1 AND kind = 'purchase'",
    )
    .bind(payment)
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(purchases, 1, "credited once");
    // 10 granted + 50 bought - 3 sent; the failed message's credit came back.
    assert_eq!(h.available().await, 57);
    h.audit_clean().await;
    // Nobody re-drove anything: the dead letters are still there.
    for (q, n) in QUEUES.iter().zip(dead) {
        assert_eq!(h.deps.queues.store(q).stats().await.unwrap().dead, n, "{q}");
    }
    worker_pool.close().await;
    pool.close().await;
}

async fn settled(
    h: &Harness,
    queued: &[uuid::Uuid],
    failed: MessageId,
    payment: PaymentId,
) -> bool {
    statuses(h, queued)
        .await
        .iter()
        .all(|s| *s == MessageStatus::Sent)
        && refunds(h, failed).await == 1
        && payment_status(h, payment).await == "credited"
}

async fn statuses(h: &Harness, ids: &[uuid::Uuid]) -> Vec<MessageStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.push(h.message(*id).await.status);
    }
    out
}

async fn refunds(h: &Harness, message: MessageId) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM ledger_entries WHERE message_id = $1 AND kind = 'refund'",
    )
    .bind(message)
    .fetch_one(h.pool())
    .await
    .unwrap()
}

async fn payment_status(h: &Harness, payment: PaymentId) -> String {
    sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(h.pool())
        .await
        .unwrap()
}
