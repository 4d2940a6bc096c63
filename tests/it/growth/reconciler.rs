//! The reconciler's passes read only what is still open, not the history.

use copcca_sms::domain::{CompanyId, MessageId};
use copcca_sms::messages::{MessageStatus, recovery};
use serde_json::Value;
use sqlx::PgPool;

use super::analyze_messages;

/// The reconciler's look for `sent` messages to mark unconfirmed reads only those still to mark:
/// 2,000 already marked are not read again at every pass (before 0026 the index held them all).
#[sqlx::test]
async fn the_unconfirmed_pass_reads_only_messages_still_to_mark(pool: PgPool) {
    let company = crate::support::company_with(&pool, 0).await.id;
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, status,
                               sender, unconfirmed_at, created_at, updated_at)
         SELECT gen_random_uuid(), $1, '+255754123456', 'Reminder', 'GSM-7', 1, 1, 'sent', 'test',
                CASE WHEN i > 10 THEN now() - interval '1 day' END,
                now() - interval '5 days', now() - interval '5 days'
         FROM generate_series(1, 2010) AS i",
    )
    .bind(company)
    .execute(&pool)
    .await
    .unwrap();
    analyze_messages(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    // What the index holds, not which plan a table this small gets.
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {}",
        recovery::MARK_UNCONFIRMED
    )))
    .bind(72.0 * 3600.0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let (mut most, mut removed) = (0, 0);
    rows_read(&plan[0]["Plan"], &mut most, &mut removed);
    assert!(
        most <= 10 && removed == 0,
        "{most} rows from a scan, {removed} removed, for 10 to mark: {plan}"
    );
    assert_eq!(
        recovery::mark_unconfirmed(&pool, std::time::Duration::from_secs(72 * 3600))
            .await
            .unwrap(),
        10
    );
}

/// The most rows any node of a plan produced, and the rows its filters removed in all.
fn rows_read(plan: &Value, most: &mut i64, removed: &mut i64) {
    *most = (*most).max(plan["Actual Rows"].as_i64().unwrap_or(0));
    *removed += plan["Rows Removed by Filter"].as_i64().unwrap_or(0)
        + plan["Rows Removed by Index Recheck"].as_i64().unwrap_or(0);
    for child in plan["Plans"].as_array().into_iter().flatten() {
        rows_read(child, most, removed);
    }
}

/// A charged message that failed `age` ago (its `updated_at`), without a refund.
async fn failed_charged(pool: &PgPool, company: CompanyId, age: &str) -> MessageId {
    let m = crate::support::message(pool, company, 1).await;
    let mut conn = pool.acquire().await.unwrap();
    let hold = crate::support::reserve_one(
        &mut conn,
        company,
        m,
        crate::support::credits(1),
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap()
    .expect("a hold")
    .value;
    crate::support::commit_one(&mut conn, hold.id, crate::support::credits(1))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE messages SET status = 'failed', updated_at = now() - interval '{age}' WHERE id = $1"
    )))
    .bind(m)
    .execute(&mut *conn)
    .await
    .unwrap();
    m
}

/// The reconciler's look for charged failures without a refund starts where the previous pass
/// left its mark, not at the first failure ever: a pass finds every such failure (none marked
/// yet), the next starts at the oldest it found (its refund may not have happened), and once
/// they are refunded, at the pass's horizon less a margin; a failure older than the mark is not
/// read again.
#[sqlx::test]
async fn the_unrefunded_pass_starts_at_its_mark(pool: PgPool) {
    let company = crate::support::company_with(&pool, 10).await.id;
    let after = std::time::Duration::from_secs(60);
    let old = failed_charged(&pool, company, "3 days").await;
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(found, vec![(old, MessageStatus::Failed)], "no mark: all");
    // Not refunded yet: found again.
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(
        found,
        vec![(old, MessageStatus::Failed)],
        "from the oldest found"
    );
    copcca_sms::ledger::refund(&mut pool.acquire().await.unwrap(), old, "failed", "test")
        .await
        .unwrap();
    assert!(
        recovery::unrefunded(&pool, after, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The mark is now the horizon less the margin: a failure from before it is history, one
    // since is found.
    let history = failed_charged(&pool, company, "1 hour").await;
    let recent = failed_charged(&pool, company, "5 minutes").await;
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(found, vec![(recent, MessageStatus::Failed)]);
    assert_ne!(found[0].0, history);
}
