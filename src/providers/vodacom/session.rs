//! The OpenAPI session, one per API key, kept in Redis so every process of the fleet uses the
//! same one: `{prefix}:vodacom:session:{fingerprint of the key}` holds the session id, when it
//! was opened, and the session it replaces (still used while the new one is not live: a new
//! session can take up to 30 s to become usable). The purchase job and the reconciler open it;
//! a customer's HTTP request never does.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OnceCell};

use super::error::VodacomError;
use crate::config::Secret;

/// A session as stored. The ids are the sessions' secrets: never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Session {
    pub id: String,
    /// When `getSession/` answered it (Unix milliseconds).
    pub opened_ms: i64,
    /// The session it replaced ahead of need, still usable until this one is live.
    #[serde(default)]
    pub previous: Option<String>,
}

impl Session {
    pub fn age(&self) -> Duration {
        let now = chrono::Utc::now().timestamp_millis();
        Duration::from_millis(u64::try_from(now - self.opened_ms).unwrap_or(0))
    }

    /// The id to use now: this session once live, meanwhile the one it replaced; none while a
    /// session opened from scratch is not live yet (the wait left).
    pub fn usable(&self, live_after: Duration) -> Result<String, VodacomError> {
        let age = self.age();
        if age >= live_after {
            return Ok(self.id.clone());
        }
        match &self.previous {
            Some(previous) => Ok(previous.clone()),
            None => Err(VodacomError::SessionNotLive(live_after - age)),
        }
    }
}

/// Where the session lives. Clones share the Redis connection and the in-process lock that
/// makes one caller at a time open a session.
#[derive(Clone)]
pub struct SessionStore {
    redis: redis::Client,
    conn: Arc<OnceCell<ConnectionManager>>,
    key: String,
    opening: Arc<Mutex<()>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// The store of `api_key`'s session under `prefix` on the Redis at `redis_url` (connected on
    /// first use).
    pub fn new(redis_url: &str, prefix: &str, api_key: &Secret) -> Result<Self, String> {
        let redis = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
        let digest = Sha256::digest(api_key.expose().as_bytes());
        Ok(SessionStore {
            redis,
            conn: Arc::default(),
            key: format!("{prefix}:vodacom:session:{}", &hex::encode(digest)[..16]),
            opening: Arc::default(),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, VodacomError> {
        self.conn
            .get_or_try_init(|| ConnectionManager::new(self.redis.clone()))
            .await
            .cloned()
            .map_err(|e| VodacomError::Session(format!("session store: {e}")))
    }

    pub(super) async fn load(&self) -> Result<Option<Session>, VodacomError> {
        let text: Option<String> = self
            .conn()
            .await?
            .get(&self.key)
            .await
            .map_err(|e| VodacomError::Session(format!("session store: {e}")))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub(super) async fn save(&self, session: &Session) -> Result<(), VodacomError> {
        let text = serde_json::to_string(session).expect("serialisable");
        self.conn()
            .await?
            .set::<_, _, ()>(&self.key, text)
            .await
            .map_err(|e| VodacomError::Session(format!("session store: {e}")))
    }

    /// Forgets the stored session (tests; an operator changing the key).
    pub async fn clear(&self) -> Result<(), VodacomError> {
        self.conn()
            .await?
            .del::<_, ()>(&self.key)
            .await
            .map_err(|e| VodacomError::Session(format!("session store: {e}")))
    }

    /// Held while a session is opened, so one caller of this process opens it and the others
    /// then read it.
    pub(super) async fn opening(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.opening.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(age_ms: i64, previous: Option<&str>) -> Session {
        Session {
            id: "new".into(),
            opened_ms: chrono::Utc::now().timestamp_millis() - age_ms,
            previous: previous.map(str::to_string),
        }
    }

    #[test]
    fn a_young_session_waits_unless_it_replaces_a_live_one() {
        let live_after = Duration::from_secs(30);
        assert_eq!(
            session(31_000, None).usable(live_after).unwrap(),
            "new".to_string()
        );
        assert!(matches!(
            session(1_000, None).usable(live_after),
            Err(VodacomError::SessionNotLive(d)) if d > Duration::from_secs(28)
        ));
        assert_eq!(
            session(1_000, Some("old")).usable(live_after).unwrap(),
            "old".to_string()
        );
    }
}
