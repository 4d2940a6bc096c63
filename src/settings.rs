//! Operator settings in `system_settings`. Provider secrets are encrypted at rest with
//! AES-256-GCM under `SETTINGS_KEY`: a fresh random nonce on every write, and the setting's name
//! as associated data, so a ciphertext copied to another key does not decrypt. Secrets are
//! never logged and never returned by the API.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sqlx::PgPool;

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("SETTINGS_KEY is not set: encrypted settings cannot be read or written")]
    NoKey,
    #[error("setting {0} does not decrypt with this SETTINGS_KEY")]
    Undecryptable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Encrypts and decrypts setting values.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Cipher(Aes256Gcm::new(key.into()))
    }

    pub fn encrypt(&self, name: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, name: &str, stored: &str) -> Result<Secret, SettingsError> {
        let bad = || SettingsError::Undecryptable(name.to_string());
        let raw = STANDARD.decode(stored).map_err(|_| bad())?;
        if raw.len() < 12 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| bad())
    }
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
    .execute(pool)
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

/// The central Twilio account as kept in settings (the environment, when set, wins).
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
}

pub async fn twilio(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<TwilioSettings>, SettingsError> {
    let (Some(sid), Some(from)) = (
        get(pool, cipher, "twilio.account_sid").await?,
        get(pool, cipher, "twilio.from").await?,
    ) else {
        return Ok(None);
    };
    let Some(token) = get(pool, cipher, "twilio.auth_token").await? else {
        return Ok(None);
    };
    Ok(Some(TwilioSettings {
        account_sid: sid.expose().to_string(),
        auth_token: token,
        from: from.expose().to_string(),
    }))
}

/// The Twilio account in force: the environment's when set (it wins), else the one in settings.
pub async fn effective_twilio(
    pool: &PgPool,
    config: &crate::config::Config,
) -> Result<Option<TwilioSettings>, SettingsError> {
    if let Some(t) = &config.twilio {
        return Ok(Some(TwilioSettings {
            account_sid: t.account_sid.clone(),
            auth_token: t.auth_token.clone(),
            from: t.from.clone(),
        }));
    }
    let cipher = config.settings_key.as_ref().map(Cipher::new);
    match twilio(pool, cipher.as_ref()).await {
        Err(SettingsError::NoKey) => Ok(None),
        other => other,
    }
}

pub async fn set_twilio(
    pool: &PgPool,
    cipher: &Cipher,
    t: &TwilioSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let mut tx = pool.begin().await?;
    for (name, value, secret) in [
        ("twilio.account_sid", t.account_sid.as_str(), false),
        ("twilio.from", t.from.as_str(), false),
        ("twilio.auth_token", t.auth_token.expose(), true),
    ] {
        let stored = if secret {
            cipher.encrypt(name, value)
        } else {
            value.to_string()
        };
        sqlx::query(
            "INSERT INTO system_settings (key, value, encrypted, category, updated_by, updated_at)
             VALUES ($1, $2, $3, 'twilio', $4, now())
             ON CONFLICT (key) DO UPDATE SET value = $2, encrypted = $3, updated_by = $4, updated_at = now()",
        )
        .bind(name)
        .bind(stored)
        .bind(secret)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_with_a_fresh_nonce_and_binds_the_name() {
        let c = Cipher::new(&[7u8; 32]);
        let a = c.encrypt("twilio.auth_token", "s3cr3t");
        let b = c.encrypt("twilio.auth_token", "s3cr3t");
        assert_ne!(a, b, "a fresh nonce each write");
        assert!(!a.contains("s3cr3t"));
        assert_eq!(
            c.decrypt("twilio.auth_token", &a).unwrap().expose(),
            "s3cr3t"
        );
        assert!(
            c.decrypt("stripe.secret_key", &a).is_err(),
            "bound to its setting's name"
        );
        assert!(
            Cipher::new(&[8u8; 32])
                .decrypt("twilio.auth_token", &a)
                .is_err(),
            "another key cannot read it"
        );
    }
}
