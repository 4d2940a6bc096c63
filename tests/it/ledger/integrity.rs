//! What holds whatever the code does: transactions, append-only entries, CHECKs, the audit.

use copcca_sms::ledger::{self};
use sqlx::PgPool;

use super::TTL;
use crate::support::*;

#[sqlx::test]
async fn operations_inside_a_caller_transaction_roll_back_with_it(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    let m = message(&pool, company, 2).await;
    let mut tx = pool.begin().await.unwrap();
    reserve_one(&mut tx, company, m, credits(2), TTL)
        .await
        .unwrap()
        .expect("a hold");
    // A refused operation in the same transaction writes nothing and aborts nothing...
    let m2 = message(&pool, company, 9).await;
    assert!(
        reserve_one(&mut tx, company, m2, credits(9), TTL)
            .await
            .is_err()
    );
    drop(tx); // ...and the caller's rollback undoes everything.
    assert_eq!(
        (
            available(&pool, company).await,
            reserved(&pool, company).await
        ),
        (5, 0)
    );
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn entries_are_append_only(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    for sql in [
        "UPDATE ledger_entries SET available_delta = 500",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(available(&pool, company).await, 5);
}

#[sqlx::test]
async fn the_database_refuses_a_negative_balance(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    let err = sqlx::query("UPDATE balances SET available = -1 WHERE company_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
}

#[sqlx::test]
async fn the_audit_notices_tampering(pool: PgPool) {
    let company = company_with(&pool, 5).await.id;
    let m = message(&pool, company, 1).await;
    reserve_one(
        &mut pool.acquire().await.unwrap(),
        company,
        m,
        credits(1),
        TTL,
    )
    .await
    .unwrap()
    .expect("a hold");
    assert_audit_clean(&pool).await;

    sqlx::query("UPDATE balances SET available = available + 7 WHERE company_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE holds SET status = 'released', resolved_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let report = ledger::audit(&pool).await.unwrap();
    let broken: Vec<_> = report.violations.iter().map(|v| v.invariant).collect();
    assert!(broken.contains(&"balance_equals_entries"), "{broken:?}");
    assert!(
        broken.contains(&"reserved_equals_active_holds"),
        "{broken:?}"
    );
    assert!(broken.contains(&"hold_resolved_at_most_once"), "{broken:?}");
    assert!(
        report
            .violations
            .iter()
            .all(|v| v.company_id == Some(company))
    );
}
