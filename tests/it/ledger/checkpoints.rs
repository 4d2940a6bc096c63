//! The audit since its checkpoint: what it reads, what it finds, and when a checkpoint is taken.

use std::time::Duration;

use copcca_sms::ledger::{self, Scope};
use sqlx::PgPool;

use super::TTL;
use crate::support::*;

async fn max_entry(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT max(id) FROM ledger_entries")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Returns once a session waits for a SHARE lock on `ledger_entries` (the audit's, behind an open
/// writer); fails the test when none does within 5 s.
async fn waits_for_the_ledger_lock(pool: &PgPool) {
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE relation = 'ledger_entries'::regclass AND mode = 'ShareLock' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the audit never waited for the open ledger writer"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A new message of `company` costing `n` credits, reserved on `conn` (a send's first ledger
/// step: one reserve entry).
async fn reserve_new(
    pool: &PgPool,
    conn: &mut sqlx::PgConnection,
    company: copcca_sms::domain::CompanyId,
    n: i64,
) -> ledger::Hold {
    let m = message(pool, company, n).await;
    reserve_one(conn, company, m, credits(n), TTL)
        .await
        .unwrap()
        .expect("a hold")
        .value
}

fn broken(report: &ledger::AuditReport) -> Vec<&'static str> {
    report.violations.iter().map(|v| v.invariant).collect()
}

#[sqlx::test]
async fn an_audit_since_its_checkpoint_reads_the_new_entries_and_finds_what_they_name(
    pool: PgPool,
) {
    let company = company_with(&pool, 10).await.id;
    let reserve =
        async |n| reserve_new(&pool, &mut pool.acquire().await.unwrap(), company, n).await;
    reserve(1).await;
    // No checkpoint yet: the first audit since one reads everything, and records one.
    let first = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    let everything = max_entry(&pool).await;
    assert!(first.is_clean(), "{:?}", first.violations);
    assert_eq!(
        (first.since_entry, first.checkpoint),
        (None, Some(everything))
    );
    assert_eq!(first.entries, 2, "the purchase and the reserve");

    // Nothing new: nothing read, the checkpoint stays.
    let idle = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert_eq!(
        (idle.entries, idle.since_entry, idle.checkpoint),
        (0, Some(everything), Some(everything))
    );

    // One new reserve: read alone, and the balance still agrees with checkpoint + entries.
    reserve(2).await;
    let next = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert!(next.is_clean(), "{:?}", next.violations);
    assert_eq!(next.entries, 1);
    assert_eq!(next.checkpoint, Some(max_entry(&pool).await));

    // A balance changed behind the ledger's back is found (every balance is read), and the
    // checkpoint does not move past it.
    let before = ledger::latest_checkpoint(&pool).await.unwrap();
    sqlx::query("UPDATE balances SET available = available + 7 WHERE company_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .unwrap();
    reserve(1).await;
    let tampered = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert!(
        broken(&tampered).contains(&"balance_equals_entries"),
        "{:?}",
        tampered.violations
    );
    assert_eq!(tampered.checkpoint, None);
    assert_eq!(ledger::latest_checkpoint(&pool).await.unwrap(), before);
    sqlx::query("UPDATE balances SET available = available - 7 WHERE company_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .unwrap();

    // A hold named by a new entry is checked: released without its release entry.
    let hold = reserve(1).await;
    sqlx::query("UPDATE holds SET status = 'released', resolved_at = now() WHERE id = $1")
        .bind(hold.id)
        .execute(&pool)
        .await
        .unwrap();
    let report = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    let found = broken(&report);
    assert!(found.contains(&"hold_resolved_at_most_once"), "{found:?}");
    assert!(found.contains(&"reserved_equals_active_holds"), "{found:?}");
    // The full audit finds the same, and the plain audit records nothing.
    let full = ledger::audit(&pool).await.unwrap();
    assert_eq!(broken(&full), found);
    assert_eq!(ledger::latest_checkpoint(&pool).await.unwrap(), before);
}

#[sqlx::test]
async fn a_checkpoint_waits_for_the_ledger_writers_in_progress(pool: PgPool) {
    let (slow, quick) = (
        company_with(&pool, 5).await.id,
        company_with(&pool, 5).await.id,
    );
    // A transaction draws an entry id and stays open; another, later, commits a higher one.
    let mut open = pool.begin().await.unwrap();
    reserve_new(&pool, &mut open, slow, 1).await;
    reserve_new(&pool, &mut pool.acquire().await.unwrap(), quick, 1).await;

    // The checkpoint must not pass over the open transaction's entry: the audit waits for it.
    let audit = tokio::spawn({
        let pool = pool.clone();
        async move { ledger::audit_and_checkpoint(&pool, Scope::Full).await }
    });
    waits_for_the_ledger_lock(&pool).await;
    assert!(
        !audit.is_finished(),
        "the checkpoint was taken with a ledger writer still open"
    );
    open.commit().await.unwrap();
    let report = audit.await.unwrap().unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!(report.checkpoint, Some(max_entry(&pool).await));

    // The checkpoint's sums hold both companies' entries: the next audit since it agrees.
    let next = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert!(next.is_clean(), "{:?}", next.violations);
    assert_eq!(next.entries, 0);

    // A full audit moves the checkpoint on too, from scratch, past the one it found.
    reserve_new(&pool, &mut pool.acquire().await.unwrap(), quick, 1).await;
    let full = ledger::audit_and_checkpoint(&pool, Scope::Full)
        .await
        .unwrap();
    assert_eq!(full.since_entry, None);
    assert_eq!(full.checkpoint, Some(max_entry(&pool).await));
    let after = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert!(after.is_clean(), "{:?}", after.violations);

    // A writer open past half a second: the audit records no checkpoint rather than keep the
    // writers queued behind its lock waiting.
    let recorded = ledger::latest_checkpoint(&pool).await.unwrap();
    let mut open = pool.begin().await.unwrap();
    reserve_new(&pool, &mut open, slow, 1).await;
    let started = std::time::Instant::now();
    let report = ledger::audit_and_checkpoint(&pool, Scope::SinceCheckpoint)
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!(report.checkpoint, None);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(ledger::latest_checkpoint(&pool).await.unwrap(), recorded);
    open.commit().await.unwrap();
}
