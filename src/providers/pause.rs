//! A fleet-wide pause of sending through a provider account that refused our credentials
//! (Twilio 20003 / HTTP 401). Failing the messages would be wrong (nothing is wrong with them)
//! and retrying them would burn their attempts: instead every worker snoozes its sends until the
//! credentials work again. The pause is held in Redis, so one refusal pauses the whole fleet.
//!
//! It ends by itself, two ways: credentials that differ from the refused ones (a rotation that
//! reached this process) are tried at once, since the pause names the credentials it was
//! recorded against; and while it lasts, one worker of the fleet checks the account every
//! [`PROBE_EVERY`], lifting the pause when the provider accepts the credentials again (the
//! operator fixed it on the provider's side).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How often, fleet-wide, a paused account's credentials are checked again.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// How long a worker trusts its last read of the pause before asking Redis again.
const CACHE_FOR: Duration = Duration::from_secs(1);

/// A recorded refusal of an account's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub account: String,
    /// Which credentials were refused ([`fingerprint`], never the secret itself).
    pub credentials: String,
    pub since: DateTime<Utc>,
    /// The provider's words, e.g. `20003 Authenticate`.
    pub reason: String,
}

/// Identifies a set of credentials without revealing them: the first 16 hex digits of
/// SHA-256(`account:token`).
pub fn fingerprint(account: &str, token: &str) -> String {
    let digest = Sha256::digest(format!("{account}:{token}").as_bytes());
    hex::encode(&digest[..8])
}

/// The pauses of this deployment's provider accounts; cheap to clone (handles).
#[derive(Clone)]
pub struct AuthPauses {
    conn: ConnectionManager,
    prefix: String,
    seen: Arc<Mutex<HashMap<String, LastRead>>>,
}

/// When this process last read an account's pause, and what it found.
type LastRead = (Instant, Option<Paused>);

impl AuthPauses {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        AuthPauses {
            conn,
            prefix: prefix.to_string(),
            seen: Arc::default(),
        }
    }

    fn key(&self, account: &str) -> String {
        format!("{}:provider:twilio:{account}:auth_refused", self.prefix)
    }

    /// Records that `account` refused the credentials `credentials` (their fingerprint).
    pub async fn pause(
        &self,
        account: &str,
        credentials: &str,
        reason: &str,
    ) -> redis::RedisResult<Paused> {
        let paused = Paused {
            account: account.to_string(),
            credentials: credentials.to_string(),
            since: Utc::now(),
            reason: reason.to_string(),
        };
        let json = serde_json::to_string(&paused).expect("serialisable");
        // The first refusal's time stands: later workers hitting the same wall do not move it.
        let mut conn = self.conn.clone();
        let set: bool = conn.set_nx(self.key(account), &json).await?;
        if !set {
            let _: () = conn.set(self.key(account), &json).await?;
        }
        self.remember(account, Some(paused.clone()));
        Ok(paused)
    }

    /// The pause of `account`, whatever credentials it names (the status page).
    pub async fn status(&self, account: &str) -> redis::RedisResult<Option<Paused>> {
        let raw: Option<String> = self.conn.clone().get(self.key(account)).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// The pause that holds back sends with `credentials`: one recorded against these very
    /// credentials. Read from Redis at most once a second per account.
    pub async fn holding(
        &self,
        account: &str,
        credentials: &str,
    ) -> redis::RedisResult<Option<Paused>> {
        let cached = self
            .seen
            .lock()
            .expect("lock")
            .get(account)
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, p)| p.clone());
        let paused = match cached {
            Some(p) => p,
            None => {
                let p = self.status(account).await?;
                self.remember(account, p.clone());
                p
            }
        };
        Ok(paused.filter(|p| p.credentials == credentials))
    }

    /// Lifts the pause of `account` if it is the one recorded against `credentials` (a pause
    /// recorded since against other credentials stays).
    pub async fn lift(&self, account: &str, credentials: &str) -> redis::RedisResult<()> {
        if self
            .status(account)
            .await?
            .is_some_and(|p| p.credentials == credentials)
        {
            let _: () = self.conn.clone().del(self.key(account)).await?;
        }
        self.remember(account, None);
        Ok(())
    }

    /// True for one caller per [`PROBE_EVERY`] fleet-wide: that one checks the credentials.
    pub async fn take_probe(&self, account: &str) -> redis::RedisResult<bool> {
        let key = format!("{}:probe", self.key(account));
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(PROBE_EVERY.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(taken.is_some())
    }

    fn remember(&self, account: &str, paused: Option<Paused>) {
        crate::metrics::sending_paused("twilio", paused.is_some());
        self.seen
            .lock()
            .expect("lock")
            .insert(account.to_string(), (Instant::now(), paused));
    }
}
