//! Reservations: reserve, commit, release and expiry, alone and under concurrent callers.

use std::time::Duration;

use copcca_sms::ledger::{self, HoldStatus, LedgerError};
use sqlx::PgPool;

use super::TTL;
use crate::support::*;

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
                ledger::reserve(
                    &mut pool.acquire().await.unwrap(),
                    company,
                    m,
                    credits(1),
                    TTL,
                )
                .await
            })
        })
        .collect();
    let (mut held, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(h) => {
                assert!(!h.replay);
                held += 1
            }
            Err(LedgerError::InsufficientCredits {
                needed: 1,
                available: 0,
            }) => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
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
async fn insufficient_credits_change_nothing(pool: PgPool) {
    let company = company_with(&pool, 2).await.id;
    let m = message(&pool, company, 3).await;
    let err = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(3),
        TTL,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::InsufficientCredits {
                needed: 3,
                available: 2
            }
        ),
        "{err}"
    );
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM holds")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(holds, 0);
    assert_eq!(available(&pool, company).await, 2);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn reserving_a_message_twice_returns_the_same_hold(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    let first = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap();
    let again = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap();
    assert!(!first.replay && again.replay);
    assert_eq!(first.value.id, again.value.id);
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (8, 2)
    );

    // Once charged, the message cannot be reserved again.
    ledger::commit(
        &mut pool.acquire().await.unwrap(),
        first.value.id,
        credits(2),
    )
    .await
    .unwrap();
    let err = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LedgerError::AlreadyCharged { .. }), "{err}");
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn a_company_cannot_reserve_for_another_companys_message(pool: PgPool) {
    let a = company_with(&pool, 10).await.id;
    let b = company_with(&pool, 10).await.id;
    let m = message(&pool, a, 1).await;
    let err = ledger::reserve(&mut pool.acquire().await.unwrap(), b, m, credits(1), TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::UnknownMessage(id) if id == m),
        "{err}"
    );
    // Also when the message already has a live hold of its own company.
    ledger::reserve(&mut pool.acquire().await.unwrap(), a, m, credits(1), TTL)
        .await
        .unwrap();
    let err = ledger::reserve(&mut pool.acquire().await.unwrap(), b, m, credits(1), TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::UnknownMessage(_)), "{err}");
    assert_eq!(available(&pool, b).await, 10);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn commit_twice_charges_once_and_release_after_commit_is_refused(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 3).await;
    let hold = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(3),
        TTL,
    )
    .await
    .unwrap()
    .value;
    let first = ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(3))
        .await
        .unwrap();
    let again = ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(3))
        .await
        .unwrap();
    assert!(!first.replay && again.replay);
    assert_eq!(again.value.status, HoldStatus::Committed);
    let other = ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(2))
        .await
        .unwrap_err();
    assert!(
        matches!(other, LedgerError::HoldCommitted { charged: 3, .. }),
        "{other}"
    );
    let release = ledger::release(&mut pool.acquire().await.unwrap(), hold.id)
        .await
        .unwrap_err();
    assert!(
        matches!(release, LedgerError::HoldCommitted { .. }),
        "{release}"
    );
    let b = ledger::balance(&pool, company).await.unwrap();
    assert_eq!(
        (b.available.get(), b.reserved.get(), b.total_sent),
        (7, 0, 3)
    );
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn concurrent_commits_of_one_hold_charge_once(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 2).await;
    let hold = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap()
    .value;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(2))
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

#[sqlx::test]
async fn partial_commit_returns_the_remainder(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 4).await;
    let hold = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(4),
        TTL,
    )
    .await
    .unwrap()
    .value;
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (6, 4)
    );
    let committed = ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(1))
        .await
        .unwrap()
        .value;
    assert_eq!(committed.charged, Some(1));
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (9, 0)
    );
    // Out of range: more than reserved, or zero.
    let m2 = message(&pool, company, 2).await;
    let hold2 = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m2,
        credits(2),
        TTL,
    )
    .await
    .unwrap()
    .value;
    for bad in [0, 3] {
        let err = ledger::commit(&mut pool.acquire().await.unwrap(), hold2.id, credits(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::CommitOutOfRange { .. }), "{err}");
    }
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn release_returns_credits_once_and_commit_after_release_is_refused(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    let m = message(&pool, company, 2).await;
    let hold = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap()
    .value;
    assert!(
        !ledger::release(&mut pool.acquire().await.unwrap(), hold.id)
            .await
            .unwrap()
            .replay
    );
    assert!(
        ledger::release(&mut pool.acquire().await.unwrap(), hold.id)
            .await
            .unwrap()
            .replay
    );
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (5, 0)
    );
    let err = ledger::commit(&mut pool.acquire().await.unwrap(), hold.id, credits(2))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::HoldReleased(_)), "{err}");
    // A released message may be reserved again (e.g. re-sent after the reconciler released it).
    let again = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(2),
        TTL,
    )
    .await
    .unwrap();
    assert!(!again.replay && again.value.id != hold.id);
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn expired_holds_stay_reserved_until_resolved(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    let m1 = message(&pool, company, 1).await;
    let m2 = message(&pool, company, 1).await;
    let m3 = message(&pool, company, 1).await;
    let expired_a = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m1,
        credits(1),
        Duration::ZERO,
    )
    .await
    .unwrap()
    .value;
    let expired_b = ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m2,
        credits(1),
        Duration::ZERO,
    )
    .await
    .unwrap()
    .value;
    ledger::reserve(
        &mut pool.acquire().await.unwrap(),
        company,
        m3,
        credits(1),
        TTL,
    )
    .await
    .unwrap();

    let expired: Vec<_> = ledger::expired_holds(&pool, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(expired.len(), 2);
    assert!(expired.contains(&expired_a.id) && expired.contains(&expired_b.id));
    // Expiry alone moves nothing: the credits stay reserved until the outcome is known.
    assert_eq!(reserved(&pool, company).await, 3);
    // The message turned out sent: an expired hold can still be charged...
    ledger::commit(&mut pool.acquire().await.unwrap(), expired_a.id, credits(1))
        .await
        .unwrap();
    // ...or, if it never reached the provider, released.
    ledger::release(&mut pool.acquire().await.unwrap(), expired_b.id)
        .await
        .unwrap();
    assert!(ledger::expired_holds(&pool, 10).await.unwrap().is_empty());
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (3, 1)
    );
    assert_audit_clean(&pool).await;
}
