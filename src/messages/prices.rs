//! What the provider charged the platform for a message (`messages.price`, `price_currency`):
//! Twilio reports it only some time after the send (the create answer and status callbacks carry
//! none), so the reconciler fetches final messages still without one, a few per pass.

use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::MessageId;
use crate::providers::SmsGateway;
use crate::providers::twilio::TwilioError;

/// How many times one message is looked up before its price is given up on (the report counts
/// it as unpriced).
pub const MAX_LOOKUPS: i16 = 6;
/// The least time between two lookups of one message (Twilio fills the price in within minutes).
pub const LOOKUP_SPACING_SECS: i64 = 600;
/// Lookups in flight at once.
const CONCURRENCY: usize = 8;

/// What one pass of [`look_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PriceLookups {
    /// Messages whose price is now recorded.
    pub recorded: usize,
    /// Messages Twilio had no price for yet (looked up again later, up to [`MAX_LOOKUPS`]).
    pub not_yet: usize,
}

/// Fetches up to `limit` final Twilio messages without a price, sent through the account in
/// force (a message can only be fetched at its own account), and records what Twilio reports.
/// A passing failure (5xx, no answer, rate limited, our credentials refused) ends the pass and
/// costs the messages no lookup; Twilio not knowing the message (404) counts as one.
pub async fn look_up(
    pool: &PgPool,
    gateway: &SmsGateway,
    limit: i64,
) -> Result<PriceLookups, sqlx::Error> {
    let Some(account) = gateway.account() else {
        return Ok(PriceLookups::default());
    };
    let due: Vec<(MessageId, String)> = sqlx::query_as(
        "SELECT id, provider_id FROM messages
         WHERE price IS NULL AND provider = 'twilio' AND provider_id IS NOT NULL
           AND status IN ('delivered', 'undelivered', 'failed')
           AND provider_account = $1 AND price_lookups < $2
           AND (price_looked_up_at IS NULL
                OR price_looked_up_at < now() - make_interval(secs => $3))
         ORDER BY price_looked_up_at NULLS FIRST, id LIMIT $4",
    )
    .bind(account)
    .bind(MAX_LOOKUPS)
    .bind(LOOKUP_SPACING_SECS as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut answers = futures::stream::iter(due)
        .map(|(id, sid)| async move { (id, gateway.fetch_message(&sid).await) })
        .buffer_unordered(CONCURRENCY);
    let mut done = PriceLookups::default();
    while let Some((id, answer)) = answers.next().await {
        let price = match answer {
            Ok(Some(m)) => m.price.zip(m.price_unit),
            Ok(None) | Err(TwilioError::Refused { .. }) => None,
            Err(e) => {
                tracing::warn!(message = %id, error = %e, "price lookup stopped for this pass");
                break;
            }
        };
        if record(pool, id, price).await? {
            done.recorded += 1;
        } else {
            done.not_yet += 1;
        }
    }
    Ok(done)
}

/// Counts a lookup of message `id`, with the price Twilio reported if it had one (kept as a
/// positive cost; Twilio's is negative). A price already recorded is never changed. Whether a
/// price is recorded now.
async fn record(
    pool: &PgPool,
    id: MessageId,
    price: Option<(Decimal, String)>,
) -> Result<bool, sqlx::Error> {
    let (amount, unit) = price.map(|(p, u)| (p.abs(), u)).unzip();
    let recorded: Option<bool> = sqlx::query_scalar(
        "UPDATE messages SET price = $2, price_currency = $3,
                price_lookups = price_lookups + 1, price_looked_up_at = now()
         WHERE id = $1 AND price IS NULL RETURNING price IS NOT NULL",
    )
    .bind(id)
    .bind(amount)
    .bind(unit)
    .fetch_optional(pool)
    .await?;
    Ok(recorded == Some(true))
}
