//! Operator settings in `system_settings`. Provider secrets are encrypted at rest with
//! AES-256-GCM under `SETTINGS_KEY` (see [`Cipher`]). Secrets are never logged and never returned
//! by the API: callers get [`Secret`]s, and views show them through [`mask`].
//!
//! Each provider's settings are a group of rows `<provider>.<field>` written together in one
//! transaction (see `providers.rs`); the environment, when it sets a provider, wins over them.

mod cipher;
mod providers;
mod rotate;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::config::Secret;

pub use cipher::Cipher;
pub use providers::{
    AfricasTalkingSettings, BeemSettings, africastalking, africastalking_in_force, beem,
    beem_in_force, set_africastalking, set_beem,
};
pub use providers::{
    MpesaSettings, PreviousToken, Source, StripeSettings, TwilioSettings, effective_mpesa,
    effective_stripe, effective_twilio, mpesa, mpesa_in_force, set_mpesa, set_stripe, set_twilio,
    stripe, stripe_in_force, twilio, twilio_in_force, twilio_previous_token,
};
pub use providers::{effective_vodacom, set_vodacom, vodacom, vodacom_in_force};
pub use rotate::{Rotation, rotate_key};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("SETTINGS_KEY is not set: encrypted settings cannot be read or written")]
    NoKey,
    #[error("setting {0} does not decrypt with this SETTINGS_KEY")]
    Undecryptable(String),
    /// The environment sets some of a provider's credentials but not all.
    #[error("{0} is required when the provider's other variables are set")]
    IncompleteEnv(&'static str),
    /// The Twilio account would change while sends through the current one are unresolved:
    /// they can only be looked up with that account's credentials.
    #[error(
        "{unresolved} messages sent through Twilio account {account} are still unresolved; \
         change the account once they are final (GET /admin/status shows them)"
    )]
    AccountInUse { account: String, unresolved: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Writes a setting; `secret` values are encrypted (and need the cipher).
pub async fn put(
    pool: &PgPool,
    cipher: Option<&Cipher>,
    name: &str,
    value: &str,
    secret: bool,
    category: &str,
    actor: &str,
) -> Result<(), SettingsError> {
    let mut tx = pool.begin().await?;
    put_in(&mut tx, cipher, name, value, secret, category, actor).await?;
    tx.commit().await?;
    Ok(())
}

async fn put_in(
    conn: &mut sqlx::PgConnection,
    cipher: Option<&Cipher>,
    name: &str,
    value: &str,
    secret: bool,
    category: &str,
    actor: &str,
) -> Result<(), SettingsError> {
    let stored = if secret {
        cipher.ok_or(SettingsError::NoKey)?.encrypt(name, value)
    } else {
        value.to_string()
    };
    sqlx::query(
        "INSERT INTO system_settings (key, value, encrypted, category, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (key) DO UPDATE SET value = $2, encrypted = $3, category = $4, updated_by = $5, updated_at = now()",
    )
    .bind(name)
    .bind(stored)
    .bind(secret)
    .bind(category)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads a setting, decrypting it when it is stored encrypted.
pub async fn get(
    pool: &PgPool,
    cipher: Option<&Cipher>,
    name: &str,
) -> Result<Option<Secret>, SettingsError> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT value, encrypted FROM system_settings WHERE key = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    match row {
        None => Ok(None),
        Some((value, false)) => Ok(Some(Secret::new(value))),
        Some((value, true)) => cipher
            .ok_or(SettingsError::NoKey)?
            .decrypt(name, &value)
            .map(Some),
    }
}

/// When a category of settings was last written, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
}

/// The last write to any setting of `category`, if any.
pub async fn last_written(pool: &PgPool, category: &str) -> Result<Option<Written>, SettingsError> {
    let row: Option<(DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT updated_at, updated_by FROM system_settings WHERE category = $1
         ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(category)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(at, by)| Written { at, by }))
}

/// A value that changes whenever any setting is written: running processes poll it to know
/// when to rebuild their providers (the table is a few dozen rows).
pub async fn version(pool: &PgPool) -> Result<(Option<DateTime<Utc>>, i64), SettingsError> {
    Ok(
        sqlx::query_as("SELECT max(updated_at), count(*) FROM system_settings")
            .fetch_one(pool)
            .await?,
    )
}

/// Shows at most the last four characters of a secret, and none of a short one.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_keep_only_the_tail_of_long_secrets() {
        assert_eq!(mask("0123456789abcdef0123456789abcdef"), "****cdef");
        assert_eq!(mask("short-secret"), "****cret");
        assert_eq!(mask("tiny"), "****");
        assert_eq!(mask(""), "****");
    }
}
