//! Fleet-wide counts that `/metrics` reports, kept as the tables change instead of counted at
//! each read (migration 0026): statement-level triggers on `messages` and `ledger_entries`
//! append what each statement changed to `fleet_counter_deltas` (insert only, so concurrent
//! writers never wait for one another), and [`read`] folds those deltas into `fleet_counters`.
//! A read costs a few rows whatever the size of the tables.
//!
//! Series: `messages` (key: a status; value: messages in it now) and `ledger_credits` (key: an
//! operation, as `/metrics` names them; value: credits it moved since the beginning).

use sqlx::PgPool;

/// Moves the deltas appended so far into the totals, one fold at a time across the fleet (a fold
/// already running elsewhere: nothing to do here). Exact: a delta is deleted in the transaction
/// that adds it to its total.
pub async fn fold(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    fold_in(&mut tx).await?;
    tx.commit().await
}

/// The current value of every (series, key): the totals plus the deltas not folded yet, read in
/// one snapshot after folding.
pub async fn read(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    fold_in(&mut tx).await?;
    let rows = sqlx::query_as(
        "SELECT series, key, COALESCE(sum(value), 0)::bigint FROM (
             SELECT series, key, value FROM fleet_counters
             UNION ALL
             SELECT series, key, delta FROM fleet_counter_deltas
         ) counted GROUP BY series, key ORDER BY series, key",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

async fn fold_in(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('fleet_counters_fold'))")
            .fetch_one(&mut *tx)
            .await?;
    if ours {
        sqlx::query(
            "WITH moved AS (DELETE FROM fleet_counter_deltas RETURNING series, key, delta)
             INSERT INTO fleet_counters AS c (series, key, value)
             SELECT series, key, sum(delta) FROM moved GROUP BY series, key ORDER BY series, key
             ON CONFLICT (series, key) DO UPDATE SET value = c.value + excluded.value",
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
