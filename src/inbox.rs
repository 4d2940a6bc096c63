//! The webhook inbox (table `webhook_events`): every webhook received is stored, accepted or not:
//! accepted ones deduplicated on the provider's key, rejected ones with the reason (a logged
//! rejection, never a silent drop). The webhook handlers write it; the reconciler reads back the
//! events whose subject had not arrived yet.

use sqlx::{PgConnection, PgPool};

/// Records a refused webhook and logs why.
pub async fn reject(
    pool: &PgPool,
    provider: &str,
    payload: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    tracing::warn!(provider, reason, "webhook rejected");
    sqlx::query("INSERT INTO webhook_events (provider, payload, accepted, rejection) VALUES ($1, $2, false, $3)")
        .bind(provider)
        .bind(payload)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stores an accepted webhook under its dedupe key; `None` when that key was already stored
/// (a repeat: nothing more to do), else the event id.
pub async fn accept(
    conn: &mut PgConnection,
    provider: &str,
    key: &str,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_events (provider, event_key, payload, accepted) VALUES ($1, $2, $3, true)
         ON CONFLICT (provider, event_key) WHERE accepted DO NOTHING RETURNING id",
    )
    .bind(provider)
    .bind(key)
    .bind(payload)
    .fetch_optional(conn)
    .await
}

pub async fn mark_processed(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_events SET processed_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Accepted events of `provider` not yet processed after `older_than_secs` (their subject was not
/// there yet when they came), oldest first.
pub async fn unprocessed(
    pool: &PgPool,
    provider: &str,
    older_than_secs: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payload FROM webhook_events
         WHERE provider = $1 AND accepted AND processed_at IS NULL AND received_at < now() - make_interval(secs => $2)
         ORDER BY id LIMIT $3",
    )
    .bind(provider)
    .bind(older_than_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await
}
