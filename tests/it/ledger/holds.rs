//! Reservations: reserve, commit, release and expiry, as scripts (`script`) and under concurrent
//! callers. Reserving and committing one message is the send steps' batch of one
//! (`send_begin_many`, `send_finish_many`), so they also move the message to `sending` and `sent`;
//! the rows marked "(send step)" are where that answers otherwise than the one-message SQL
//! functions of 0008 (`ledger_reserve`, `ledger_commit`, dropped in 0017) did.
//!
//! `run(pool, grant, steps)`: companies A and B start with `grant` credits each.

use copcca_sms::ledger::LedgerError;
use sqlx::PgPool;

use super::TTL;
use super::script::{Op::*, Step, Then::*, run};
use crate::support::*;

#[sqlx::test]
async fn insufficient_credits_change_nothing(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        // operation         outcome                                   available reserved
        (Reserve(0, 3),       Insufficient { needed: 3, available: 2 }, 2, 0),
        (Status(0, "queued"), Done,                                     2, 0),
        (Reserve(1, 2),       Done,                                     0, 2),
        (Reserve(2, 1),       Insufficient { needed: 1, available: 0 }, 0, 2),
    ];
    run(&pool, 2, steps).await;
}

#[sqlx::test]
async fn reserving_a_message_twice_returns_the_same_hold(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        // operation            outcome         available reserved
        (Reserve(0, 2),          Done,           8, 2),
        // (send step) Reserving marks the message `sending`; `ledger_reserve` left it alone.
        (Status(0, "sending"),   Done,           8, 2),
        (Reserve(0, 2),          Replay,         8, 2),
        (Commit(0, 2),           Done,           8, 0),
        // (send step) Committing marks it `sent`; `ledger_commit` left it alone.
        (Status(0, "sent"),      Done,           8, 0),
        // (send step) Once charged, the message is not reserved again: `settled`, as it is
        // `sent`; `ledger_reserve` answered AlreadyCharged.
        (Reserve(0, 2),          Settled,        8, 0),
        // AlreadyCharged is still the answer for a charged message that is queued again.
        (SetStatus(0, "queued"), Done,           8, 0),
        (Reserve(0, 2),          AlreadyCharged, 8, 0),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn a_company_cannot_reserve_for_another_companys_message(pool: PgPool) {
    // The balance columns of a ReserveAsB row are company B's.
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (ReserveAsB(0, 1), UnknownMessage, 10, 0),
        // Also when the message already has a live hold of its own company.
        (Reserve(0, 1),    Done,            9, 1),
        (ReserveAsB(0, 1), UnknownMessage, 10, 0),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn commit_twice_charges_once_and_release_after_commit_is_refused(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (Reserve(0, 3),    Done,                          7, 3),
        (Commit(0, 3),     Done,                          7, 0),
        (Commit(0, 3),     Replay,                        7, 0),
        (Commit(0, 2),     HoldCommitted { charged: 3 },  7, 0),
        (Release(0),       HoldCommitted { charged: 3 },  7, 0),
        (TotalSent(3),     Done,                          7, 0),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn partial_commit_returns_the_remainder(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (Reserve(0, 4),        Done,                                  6, 4),
        (Commit(0, 1),         Done,                                  9, 0),
        // Out of range: more than reserved, or zero.
        (Reserve(1, 2),        Done,                                  7, 2),
        (Commit(1, 0),         OutOfRange { actual: 0, reserved: 2 }, 7, 2),
        (Commit(1, 3),         OutOfRange { actual: 3, reserved: 2 }, 7, 2),
        // A refused commit leaves the message alone.
        (Status(1, "sending"), Done,                                  7, 2),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn release_returns_credits_once_and_commit_after_release_is_refused(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (Reserve(0, 2),          Done,         3, 2),
        (Release(0),             Done,         5, 0),
        (Release(0),             Replay,       5, 0),
        (Commit(0, 2),           HoldReleased, 5, 0),
        // Releasing leaves the message as it was (here `sending`), so it may be reserved again:
        // a new hold (e.g. re-sent after the reconciler released it).
        (Status(0, "sending"),   Done,         5, 0),
        (Reserve(0, 2),          Done,         3, 2),
        // (send step) A message that failed meanwhile is not: `settled`, nothing reserved;
        // `ledger_reserve` reserved for a message in any status.
        (Release(0),             Done,         5, 0),
        (SetStatus(0, "failed"), Done,         5, 0),
        (Reserve(0, 2),          Settled,      5, 0),
    ];
    run(&pool, 5, steps).await;
}

#[sqlx::test]
async fn expired_holds_stay_reserved_until_resolved(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (ReserveExpired(0, 1), Done,     4, 1),
        (ReserveExpired(1, 1), Done,     3, 2),
        (Reserve(2, 1),        Done,     2, 3),
        // Expiry alone moves nothing: the credits stay reserved until the outcome is known.
        (Expired(&[0, 1]),     Done,     2, 3),
        // The message turned out sent: an expired hold can still be charged...
        (Commit(0, 1),         Done,     2, 2),
        // ...or, if it never reached the provider, released.
        (Release(1),           Done,     3, 1),
        (Expired(&[]),         Done,     3, 1),
    ];
    run(&pool, 5, steps).await;
}

#[sqlx::test]
async fn a_reservation_of_nothing_fails(pool: PgPool) {
    // (send step) The batch function has no check of its own: the holds table's CHECK refuses
    // the statement, so the batch fails as a database error. `ledger::reserve` answered
    // NothingToReserve before calling `ledger_reserve`. Production never asks for 0 credits.
    #[rustfmt::skip]
    let steps: &[Step] = &[
        (Reserve(0, 0),       Failed, 10, 0),
        (Status(0, "queued"), Done,   10, 0),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn concurrent_reserves_never_overdraw(pool: PgPool) {
    let company = company_with(&pool, 50).await.id;
    let mut messages = Vec::new();
    for _ in 0..200 {
        messages.push(message(&pool, company, 1).await);
    }
    let tasks: Vec<_> = messages
        .into_iter()
        .map(|m| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                reserve_one(&mut conn, company, m, credits(1), TTL).await
            })
        })
        .collect();
    let (mut held, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(h)) => {
                assert!(!h.replay);
                held += 1
            }
            Err(LedgerError::InsufficientCredits {
                needed: 1,
                available: 0,
            }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((held, refused), (50, 150));
    assert_eq!(available(&pool, company).await, 0);
    assert_eq!(reserved(&pool, company).await, 50);
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM holds WHERE status = 'active'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(active, 50);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn concurrent_commits_of_one_hold_charge_once(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    let mut conn = pool.acquire().await.unwrap();
    let hold = reserve_one(&mut conn, company, m, credits(2), TTL)
        .await
        .unwrap()
        .expect("a hold")
        .value;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                commit_one(&mut conn, hold.id, credits(2))
                    .await
                    .unwrap()
                    .replay
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        if !t.await.unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
    assert_eq!(available(&pool, company).await, 8);
    assert_audit_clean(&pool).await;
}
