//! The send steps for a batch of messages (`begin_sends`, `finish_sends`): each item gets the
//! outcome it would get alone (in item order), refusals touch nothing else, and concurrent
//! batches never overdraw or charge twice.

use copcca_sms::domain::{CompanyId, MessageId};
use copcca_sms::ledger::{self, BeginSend, FinishSend, HoldStatus, LedgerError};
use sqlx::PgPool;

use super::TTL;
use crate::support::*;

fn begin(company: CompanyId, message: MessageId, n: i64) -> BeginSend {
    BeginSend {
        company,
        message,
        credits: credits(n),
        ttl: TTL,
        seen: None,
        attempt: uuid::Uuid::now_v7(),
        account: None,
    }
}

/// As a run that read the message's latest attempt first (a retry or a redelivery).
async fn resume(pool: &PgPool, company: CompanyId, message: MessageId, n: i64) -> BeginSend {
    BeginSend {
        seen: attempt(pool, message).await,
        ..begin(company, message, n)
    }
}

/// The company's (available, reserved) credits.
async fn buckets(pool: &PgPool, company: CompanyId) -> (i64, i64) {
    (
        available(pool, company).await,
        reserved(pool, company).await,
    )
}

async fn attempt(pool: &PgPool, m: MessageId) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT send_attempt_started_at FROM messages WHERE id = $1")
        .bind(m)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn finish(hold: copcca_sms::domain::HoldId, charge: i64, sid: &str) -> FinishSend {
    FinishSend {
        hold,
        charge: credits(charge),
        provider: "twilio".into(),
        provider_id: sid.into(),
        segments: charge as i32,
        uncharged: 0,
        price: None,
        price_currency: None,
    }
}

async fn status(pool: &PgPool, m: MessageId) -> String {
    sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
        .bind(m)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_mixed_batch_gives_each_item_its_own_outcome(pool: PgPool) {
    let rich = company_with(&pool, 10).await.id;
    let poor = company_with(&pool, 3).await.id;
    let (r1, r2) = (message(&pool, rich, 2).await, message(&pool, rich, 3).await);
    let (p1, p2, p3) = (
        message(&pool, poor, 2).await,
        message(&pool, poor, 2).await,
        message(&pool, poor, 1).await,
    );
    let foreign = message(&pool, rich, 1).await;
    let out = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        &[
            begin(rich, r1, 2),
            begin(poor, p1, 2),
            begin(rich, r1, 2), // the same message again in one batch
            begin(poor, p2, 2), // does not fit after p1
            begin(rich, r2, 3),
            begin(poor, p3, 1), // after one that did not fit, but this one does
            begin(poor, foreign, 1), // another company's message
        ],
    )
    .await
    .unwrap();
    let r1_hold = out[0].as_ref().unwrap().as_ref().unwrap();
    assert!(!r1_hold.replay);
    assert_eq!(r1_hold.value.credits.get(), 2);
    assert!(matches!(out[1], Ok(Some(_))));
    assert!(matches!(out[2], Ok(None)), "{:?}", out[2]);
    assert!(
        matches!(
            out[3],
            Err(LedgerError::InsufficientCredits {
                needed: 2,
                available: 1
            })
        ),
        "{:?}",
        out[3]
    );
    assert!(matches!(out[4], Ok(Some(_))));
    assert!(matches!(out[5], Ok(Some(_))), "{:?}", out[5]);
    assert!(matches!(out[6], Err(LedgerError::UnknownMessage(_))));
    assert_eq!(buckets(&pool, rich).await, (5, 5));
    assert_eq!(buckets(&pool, poor).await, (0, 3));
    for (m, s) in [
        (r1, "sending"),
        (r2, "sending"),
        (p1, "sending"),
        (p2, "queued"),
        (p3, "sending"),
    ] {
        assert_eq!(status(&pool, m).await, s);
    }

    // Again, by runs that read the attempt: the held ones are replays of the same holds, and
    // nothing moves.
    let again = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        &[
            resume(&pool, rich, r1, 2).await,
            resume(&pool, poor, p1, 2).await,
        ],
    )
    .await
    .unwrap();
    let replay = again[0].as_ref().unwrap().as_ref().unwrap();
    assert!(replay.replay);
    assert_eq!(replay.value.id, r1_hold.value.id);
    assert_eq!(available(&pool, rich).await, 5);

    // Charge: r1 for less than held, p1 in full, r1 again in the same batch (a replay), and
    // r2's hold for more than it holds (refused, nothing else touched).
    let r2_hold = out[4].as_ref().unwrap().as_ref().unwrap().value.id;
    let p1_hold = out[1].as_ref().unwrap().as_ref().unwrap().value.id;
    let done = ledger::finish_sends(
        &mut pool.acquire().await.unwrap(),
        &[
            finish(r1_hold.value.id, 1, "SM1"),
            finish(p1_hold, 2, "SM2"),
            finish(r1_hold.value.id, 1, "SM1"),
            finish(r2_hold, 4, "SM3"),
        ],
    )
    .await
    .unwrap();
    let charged = done[0].as_ref().unwrap();
    assert!(!charged.replay);
    assert_eq!(charged.value.status, HoldStatus::Committed);
    assert_eq!(charged.value.charged, Some(1));
    assert!(matches!(done[1], Ok(ref a) if !a.replay));
    assert!(matches!(done[2], Ok(ref a) if a.replay), "{:?}", done[2]);
    assert!(
        matches!(
            done[3],
            Err(LedgerError::CommitOutOfRange {
                actual: 4,
                reserved: 3
            })
        ),
        "{:?}",
        done[3]
    );
    // rich: 10 - 1 charged - 3 still held by r2.
    assert_eq!(buckets(&pool, rich).await, (6, 3));
    assert_eq!(buckets(&pool, poor).await, (0, 1));
    assert_eq!(status(&pool, r1).await, "sent");
    assert_eq!(status(&pool, r2).await, "sending");

    // Finishing again charges nothing more.
    let again = ledger::finish_sends(
        &mut pool.acquire().await.unwrap(),
        &[finish(r1_hold.value.id, 1, "SM1")],
    )
    .await
    .unwrap();
    assert!(matches!(again[0], Ok(ref a) if a.replay));
    assert_eq!(available(&pool, rich).await, 6);
    // A charged message does not begin again.
    let charged_again = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        &[resume(&pool, rich, r1, 2).await],
    )
    .await
    .unwrap();
    assert!(
        matches!(charged_again[0], Ok(None)),
        "{:?}",
        charged_again[0]
    );
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn concurrent_batches_never_overdraw_or_hold_a_message_twice(pool: PgPool) {
    let companies = [
        company_with(&pool, 30).await.id,
        company_with(&pool, 30).await.id,
    ];
    let mut items = Vec::new();
    for n in 0..100 {
        let company = companies[n % 2];
        items.push(begin(company, message(&pool, company, 1).await, 1));
    }
    // Eight batches over the same 100 messages, in different orders: every message is in
    // several batches at once.
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let pool = pool.clone();
            let mut batch = items.clone();
            batch.rotate_left(k * 13);
            tokio::spawn(async move {
                ledger::begin_sends(&mut pool.acquire().await.unwrap(), &batch)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for c in companies {
        assert_eq!(buckets(&pool, c).await, (0, 30));
    }
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM holds WHERE status = 'active'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(holds, 60);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn of_two_runs_that_read_the_same_attempt_only_the_first_sends(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    // Both runs read the message while it was queued, never attempted.
    let (first, second) = (begin(company, m, 2), begin(company, m, 2));
    let claimed = ledger::begin_sends(&mut pool.acquire().await.unwrap(), &[first])
        .await
        .unwrap();
    let hold = claimed[0].as_ref().unwrap().as_ref().unwrap();
    assert!(!hold.replay);
    let started = attempt(&pool, m).await;
    assert!(started.is_some());

    // The second, in another batch: the attempt is taken; nothing written, nothing to send.
    let taken = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        std::slice::from_ref(&second),
    )
    .await
    .unwrap();
    assert!(matches!(taken[0], Ok(None)), "{:?}", taken[0]);
    assert_eq!(
        attempt(&pool, m).await,
        started,
        "the first run's attempt stands"
    );
    assert_eq!(buckets(&pool, company).await, (8, 2));

    // The first run's attempt got no answer and the message went back to `queued`: the stale
    // run still gets nothing, and a run that read that attempt resumes it (a replay of the same
    // hold, a new attempt time).
    sqlx::query("UPDATE messages SET status = 'queued' WHERE id = $1")
        .bind(m)
        .execute(&pool)
        .await
        .unwrap();
    let stale = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        std::slice::from_ref(&second),
    )
    .await
    .unwrap();
    assert!(matches!(stale[0], Ok(None)), "{:?}", stale[0]);
    assert_eq!(attempt(&pool, m).await, started);
    // In one batch, the stale item first: the current one still goes ahead.
    let resumed = ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        &[second, resume(&pool, company, m, 2).await],
    )
    .await
    .unwrap();
    assert!(matches!(resumed[0], Ok(None)), "{:?}", resumed[0]);
    let again = resumed[1].as_ref().unwrap().as_ref().unwrap();
    assert!(again.replay);
    assert_eq!(again.value.id, hold.value.id);
    assert!(attempt(&pool, m).await > started, "a new attempt");
    assert_eq!(status(&pool, m).await, "sending");
    assert_eq!(buckets(&pool, company).await, (8, 2));
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn a_batch_stuck_behind_a_long_transaction_gives_up_after_ten_seconds(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 1).await;
    // Another transaction holds the message (an operator's long-running statement, say).
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE")
        .bind(m)
        .execute(&mut *blocker)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let err = ledger::begin_sends(&mut pool.acquire().await.unwrap(), &[begin(company, m, 1)])
        .await
        .expect_err("the lock timeout ends the wait");
    let waited = started.elapsed();
    assert!(
        matches!(&err, sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03")),
        "{err:?}"
    );
    assert!(
        (std::time::Duration::from_secs(9)..std::time::Duration::from_secs(20)).contains(&waited),
        "{waited:?}"
    );
    // Nothing was written; once the lock is gone, the retry goes through.
    assert_eq!(
        (available(&pool, company).await, status(&pool, m).await),
        (10, "queued".to_string())
    );
    blocker.rollback().await.unwrap();
    let out = ledger::begin_sends(&mut pool.acquire().await.unwrap(), &[begin(company, m, 1)])
        .await
        .unwrap();
    assert!(matches!(out[0], Ok(Some(_))), "{:?}", out[0]);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn workers_of_the_previous_release_still_reserve_through_the_old_signature(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    let call = |hold: uuid::Uuid| {
        sqlx::query_scalar::<_, String>(
            "SELECT outcome FROM send_begin_many(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY[2::bigint],
                                                 ARRAY[60::float8])",
        )
        .bind(hold)
        .bind(company)
        .bind(m)
        .fetch_one(&pool)
    };
    // No claim in the old call: it reserves, and again replays, as it always did.
    assert_eq!(call(uuid::Uuid::now_v7()).await.unwrap(), "reserved");
    assert_eq!(call(uuid::Uuid::now_v7()).await.unwrap(), "replay");
    assert_eq!(status(&pool, m).await, "sending");
    assert_eq!(buckets(&pool, company).await, (8, 2));
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn a_run_whose_attempt_was_taken_over_writes_no_outcome(pool: PgPool) {
    use copcca_sms::messages::store::{lock_attempt, requeue_attempt};
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 1).await;
    let first = begin(company, m, 1);
    ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        std::slice::from_ref(&first),
    )
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // The first run's attempt is the latest: its retry goes back to `queued`.
    assert!(
        !requeue_attempt(&mut conn, m, uuid::Uuid::now_v7())
            .await
            .unwrap()
    );
    assert_eq!(status(&pool, m).await, "sending");
    assert!(requeue_attempt(&mut conn, m, first.attempt).await.unwrap());
    assert_eq!(status(&pool, m).await, "queued");

    // A second run resumes it; the first one, late, may no longer write its outcome.
    let second = resume(&pool, company, m, 1).await;
    ledger::begin_sends(
        &mut pool.acquire().await.unwrap(),
        std::slice::from_ref(&second),
    )
    .await
    .unwrap();
    assert!(!requeue_attempt(&mut conn, m, first.attempt).await.unwrap());
    assert_eq!(status(&pool, m).await, "sending");
    let mut tx = pool.begin().await.unwrap();
    assert!(!lock_attempt(&mut tx, m, first.attempt).await.unwrap());
    assert!(lock_attempt(&mut tx, m, second.attempt).await.unwrap());
    tx.rollback().await.unwrap();
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn workers_of_the_release_before_0018_still_claim_through_the_seven_argument_signature(
    pool: PgPool,
) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome FROM send_begin_many(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY[2::bigint],
                                             ARRAY[60::float8], ARRAY[NULL::timestamptz], ARRAY[$4])",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(company)
    .bind(m)
    .bind(uuid::Uuid::now_v7())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outcome, "reserved");
    let account: Option<String> =
        sqlx::query_scalar("SELECT provider_account FROM messages WHERE id = $1")
            .bind(m)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(account, None, "the old signature records no account");
    assert_eq!(status(&pool, m).await, "sending");
    assert_audit_clean(&pool).await;
}
