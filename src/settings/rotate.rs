//! Re-encrypting every stored secret under a new `SETTINGS_KEY`, all or nothing.

use serde::Serialize;
use sqlx::PgPool;

use super::{Cipher, SettingsError};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// Settings re-encrypted under the new key.
    pub rotated: Vec<String>,
    /// Settings already under the new key (a repeated rotation), left as they were.
    pub already: Vec<String>,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
}

/// Re-encrypts every encrypted setting from `old` to `new` (a fresh nonce each) in one
/// transaction that locks the table against writers meanwhile. A value that decrypts with
/// neither key aborts the whole rotation and nothing changes; one that already decrypts with the
/// new key is left alone, so running the same rotation twice is harmless.
pub async fn rotate_key(
    pool: &PgPool,
    old: &Cipher,
    new: &Cipher,
    actor: &str,
) -> Result<Rotation, SettingsError> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE system_settings IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM system_settings WHERE encrypted ORDER BY key")
            .fetch_all(&mut *tx)
            .await?;
    let mut rotation = Rotation {
        rotated: Vec::new(),
        already: Vec::new(),
        old_fingerprint: old.fingerprint().to_string(),
        new_fingerprint: new.fingerprint().to_string(),
    };
    for (name, value) in rows {
        let plain = match old.decrypt(&name, &value) {
            Ok(p) => p,
            Err(e) => {
                if new.decrypt(&name, &value).is_ok() {
                    rotation.already.push(name);
                    continue;
                }
                return Err(e);
            }
        };
        sqlx::query(
            "UPDATE system_settings SET value = $2, updated_by = $3, updated_at = now() WHERE key = $1",
        )
        .bind(&name)
        .bind(new.encrypt(&name, plain.expose()))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        rotation.rotated.push(name);
    }
    tx.commit().await?;
    Ok(rotation)
}
