//! The webhook inbox (table `webhook_events`): every webhook received is stored, accepted or not:
//! accepted ones deduplicated on the provider's key, rejected ones with the reason and a capped
//! record of the body, kept for a retention period (a logged rejection, never a silent drop). The webhook handlers write it; the reconciler reads back the
//! events whose subject had not arrived yet.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

/// How much of a rejected webhook's body is kept. A rejection is stored before anything about
/// the sender is known (a forged signature, a guessed token), so what it may cost is bounded:
/// this start of the body, the whole body's length and its SHA-256 (enough to recognise a
/// replay), and a retention ([`prune_rejected`]).
pub const REJECTED_PAYLOAD_BYTES: usize = 2048;

/// Records a refused webhook and logs why: the first [`REJECTED_PAYLOAD_BYTES`] of `body` (cut
/// at a character boundary), its length and SHA-256.
pub async fn reject(
    pool: &PgPool,
    provider: &str,
    body: &[u8],
    reason: &str,
) -> Result<(), sqlx::Error> {
    tracing::warn!(provider, reason, bytes = body.len(), "webhook rejected");
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(REJECTED_PAYLOAD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    sqlx::query(
        "INSERT INTO webhook_events (provider, payload, payload_bytes, payload_sha256, accepted, rejection)
         VALUES ($1, $2, $3, $4, false, $5)",
    )
    .bind(provider)
    .bind(&text[..end])
    .bind(i32::try_from(body.len()).unwrap_or(i32::MAX))
    .bind(hex::encode(Sha256::digest(body)))
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes rejected webhooks received more than `keep` ago, at most `limit` of them (the next
/// pass takes the rest); how many went. Accepted ones are kept: they are the dedupe record.
pub async fn prune_rejected(
    pool: &PgPool,
    keep: std::time::Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_events WHERE id IN (
             SELECT id FROM webhook_events
             WHERE NOT accepted AND received_at < now() - make_interval(secs => $1)
             ORDER BY received_at LIMIT $2)",
    )
    .bind(keep.as_secs_f64())
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Stores an accepted webhook under its dedupe key; `None` when that key was already stored
/// (a repeat: nothing more to do), else the event id.
pub async fn accept(
    conn: &mut PgConnection,
    provider: &str,
    key: &str,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    store_accepted(conn, provider, key, None, payload).await
}

/// [`accept`] for a delivery report, naming its subject (the provider's message id), by which
/// the reconciler finds it once its message can take it (`messages::reports::pending`).
pub async fn accept_report(
    conn: &mut PgConnection,
    provider: &str,
    key: &str,
    subject: &str,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    store_accepted(conn, provider, key, Some(subject), payload).await
}

async fn store_accepted(
    conn: &mut PgConnection,
    provider: &str,
    key: &str,
    subject: Option<&str>,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_events (provider, event_key, subject, payload, accepted)
         VALUES ($1, $2, $3, $4, true)
         ON CONFLICT (provider, event_key) WHERE accepted DO NOTHING RETURNING id",
    )
    .bind(provider)
    .bind(key)
    .bind(subject)
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
