//! The counters `/metrics` reads, kept as the tables change, equal a count of the tables.

use std::collections::BTreeMap;

use copcca_sms::db::fleet_counters;
use sqlx::PgPool;

use crate::sending::{DRAIN, Harness};

/// Every (series, key) with a non-zero value, counted from the tables themselves.
async fn counted_from_tables(pool: &PgPool) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'messages', status, count(*) FROM messages GROUP BY status
         UNION ALL
         SELECT 'ledger_credits', op, sum(credits)::bigint FROM (
             SELECT CASE WHEN kind = 'reserve' THEN 'reserved' WHEN kind = 'commit' THEN 'committed'
                         WHEN kind = 'release' THEN 'released' WHEN kind = 'refund' THEN 'refunded'
                         WHEN kind = 'purchase' THEN 'purchased'
                         WHEN kind = 'purchase_reversal' AND available_delta > 0 THEN 'purchase_restored'
                         WHEN kind = 'purchase_reversal' THEN 'purchase_reversed'
                         WHEN kind = 'adjustment' AND available_delta > 0 THEN 'adjusted_up'
                         ELSE 'adjusted_down' END AS op,
                    CASE WHEN kind = 'reserve' THEN reserved_delta
                         WHEN kind = 'commit' THEN -(available_delta + reserved_delta)
                         ELSE abs(available_delta) END AS credits
             FROM ledger_entries) moved GROUP BY op",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .filter(|r| r.2 != 0)
        .map(|(s, k, v)| ((s, k), v))
        .collect()
}

/// What the counters say, the non-zero values.
async fn counters(pool: &PgPool) -> BTreeMap<(String, String), i64> {
    fleet_counters::read(pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.2 != 0)
        .map(|(s, k, v)| ((s, k), v))
        .collect()
}

async fn deltas_left(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM fleet_counter_deltas")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The counters `/metrics` reads equal a count of the tables after every kind of change: messages
/// accepted (inserted in groups), sent, failed at the provider (hold released), refunded, one
/// deleted; credits adjusted. Folding empties the deltas and changes no value.
#[sqlx::test]
async fn fleet_counters_equal_a_count_of_the_tables(pool: PgPool) {
    let h = Harness::new(pool.clone(), 10).await;
    for n in 0..3 {
        h.accept(&format!("075412345{n}"), "Habari").await;
    }
    h.accept("+15005550001", "Haifiki").await;
    let gone = h.accept("0754123459", "Futa").await;
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(gone)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    h.drain(DRAIN).await;
    let sent: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM messages WHERE status = 'sent' ORDER BY id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE messages SET status = 'undelivered' WHERE id = $1")
        .bind(sent)
        .execute(&pool)
        .await
        .unwrap();
    copcca_sms::ledger::refund(
        &mut pool.acquire().await.unwrap(),
        sent.into(),
        "undelivered",
        "test",
    )
    .await
    .unwrap();
    let counted = counted_from_tables(&pool).await;
    for (series, key) in [
        ("messages", "sent"),
        ("messages", "failed"),
        ("messages", "undelivered"),
        ("ledger_credits", "released"),
        ("ledger_credits", "refunded"),
        ("ledger_credits", "adjusted_up"),
    ] {
        assert!(
            counted.contains_key(&(series.into(), key.into())),
            "{series} {key} exercised: {counted:?}"
        );
    }
    assert_eq!(counters(&pool).await, counted);
    assert_eq!(deltas_left(&pool).await, 0, "read folds");
    // Changes after a fold are counted too, before and after the next one.
    h.accept("0754123458", "Tena").await;
    assert!(deltas_left(&pool).await > 0);
    let unfolded: BTreeMap<_, _> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT series, key, value FROM fleet_counters WHERE value <> 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, k, v)| ((s, k), v))
    .collect();
    assert_ne!(unfolded, counted_from_tables(&pool).await, "not folded yet");
    fleet_counters::fold(&pool).await.unwrap();
    assert_eq!(deltas_left(&pool).await, 0);
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
}

/// Concurrent writers and folds lose nothing and count nothing twice: 60 messages accepted by
/// concurrent requests (grouped inserts) while folds run, then sent by the workers.
#[sqlx::test]
async fn fleet_counters_stay_exact_under_concurrent_writes_and_folds(pool: PgPool) {
    // The per-company request limit is not what this test is about.
    let h = std::sync::Arc::new(
        Harness::with_env(pool.clone(), 100, &[("API_RATE_PER_SECOND", "0")]).await,
    );
    let writers: Vec<_> = (0..60)
        .map(|n| {
            let h = h.clone();
            tokio::spawn(async move { h.accept(&format!("07541{n:05}"), "Habari").await })
        })
        .collect();
    let folders: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    fleet_counters::fold(&pool).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    for f in folders {
        f.await.unwrap();
    }
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    h.drain(DRAIN).await;
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    assert_eq!(
        counters(&pool).await[&("messages".to_string(), "sent".to_string())],
        60
    );
}
