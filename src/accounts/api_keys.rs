//! Company API keys for server-to-server producers. The secret is shown once, at creation; only
//! its SHA-256 is stored (a 256-bit random key needs no slow hash).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::config::Secret;
use crate::domain::{ApiKeyId, CompanyId};

/// Every key starts with this, so a leaked key is recognisable (and secret scanners can match it).
pub const KEY_PREFIX: &str = "csk_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub company_id: CompanyId,
    pub name: String,
    /// The first characters of the key, to tell keys apart in listings.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly created key with its secret, which is never retrievable again.
#[derive(Debug)]
pub struct IssuedApiKey {
    pub key: ApiKey,
    pub secret: Secret,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub async fn create_api_key(
    pool: &PgPool,
    company: CompanyId,
    name: &str,
) -> Result<IssuedApiKey, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let key: ApiKey = sqlx::query_as(
        "INSERT INTO api_keys (id, company_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, company_id, name, prefix, created_at, revoked_at",
    )
    .bind(ApiKeyId::new())
    .bind(company)
    .bind(name)
    .bind(&secret[..KEY_PREFIX.len() + 6])
    .bind(hash(&secret))
    .fetch_one(pool)
    .await?;
    Ok(IssuedApiKey {
        key,
        secret: Secret::new(secret),
    })
}

/// The live (not revoked) key with this secret, if any. The lookup is by hash, so the secret is
/// never compared byte by byte. `last_used_at` is refreshed at most once a minute, so a busy
/// producer does not turn every request into a write.
pub async fn find_api_key(pool: &PgPool, secret: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "WITH k AS (SELECT id, company_id, name, prefix, created_at, revoked_at, last_used_at
                    FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL),
              touched AS (UPDATE api_keys SET last_used_at = now()
                          WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute'))
         SELECT id, company_id, name, prefix, created_at, revoked_at FROM k",
    )
    .bind(hash(secret))
    .fetch_optional(pool)
    .await
}

/// Revokes a key of `company`; false if there is no such live key.
pub async fn revoke_api_key(
    pool: &PgPool,
    company: CompanyId,
    id: ApiKeyId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL")
        .bind(id)
        .bind(company)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
