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
use crate::db::group_commit::{GroupCommit, GroupError};
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

/// Finds the live (not revoked) key of each request's secret, grouping the lookups of
/// concurrent requests into one statement (`db::group_commit`): every `/v1` request
/// authenticates, and one statement per request was the API's costliest step after the accept.
/// Each lookup still runs after its request arrived, so a key revoked before then is refused,
/// on every process at once. Cheap to clone; one per process.
#[derive(Clone)]
pub struct ApiKeys {
    group: GroupCommit<Vec<u8>, Option<ApiKey>>,
}

impl ApiKeys {
    /// Up to 64 lookups per statement, two statements at a time (on the current tokio runtime).
    pub fn start(pool: PgPool) -> Self {
        let group = GroupCommit::start("api_key", 64, 2, move |hashes: Vec<Vec<u8>>| {
            let pool = pool.clone();
            async move { find_by_hashes(&pool, &hashes).await }
        });
        ApiKeys { group }
    }

    /// The live key with this secret, if any. The lookup is by hash, so the secret is never
    /// compared byte by byte.
    pub async fn find(&self, secret: &str) -> Result<Option<ApiKey>, GroupError> {
        self.group.run(hash(secret)).await
    }
}

/// A key found for the `ord`-th hash asked (from 1).
#[derive(sqlx::FromRow)]
struct Found {
    ord: i64,
    #[sqlx(flatten)]
    key: ApiKey,
}

/// The live key of each hash, in the order asked (a hash asked twice is answered twice).
/// `last_used_at` is refreshed at most once a minute, so a busy producer does not turn every
/// request into a write; a key another lookup is refreshing right now is skipped, not waited
/// for (and two lookups cannot deadlock over the order of their keys).
async fn find_by_hashes(
    pool: &PgPool,
    hashes: &[Vec<u8>],
) -> Result<Vec<Option<ApiKey>>, sqlx::Error> {
    let found: Vec<Found> = sqlx::query_as(
        "WITH k AS (SELECT w.ord, a.id, a.company_id, a.name, a.prefix, a.created_at, a.revoked_at, a.last_used_at
                    FROM unnest($1::bytea[]) WITH ORDINALITY AS w(hash, ord)
                    JOIN api_keys a ON a.key_hash = w.hash AND a.revoked_at IS NULL),
              stale AS (SELECT id FROM api_keys
                        WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                        FOR UPDATE SKIP LOCKED),
              touched AS (UPDATE api_keys SET last_used_at = now() WHERE id IN (SELECT id FROM stale))
         SELECT ord, id, company_id, name, prefix, created_at, revoked_at FROM k",
    )
    .bind(hashes)
    .fetch_all(pool)
    .await?;
    let mut answers = vec![None; hashes.len()];
    for f in found {
        if let Some(answer) = usize::try_from(f.ord - 1)
            .ok()
            .and_then(|i| answers.get_mut(i))
        {
            *answer = Some(f.key);
        }
    }
    Ok(answers)
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
