//! The OAuth access token: `GET /oauth/v1/generate?grant_type=client_credentials` with Basic
//! auth, cached until a minute before it expires, shared by every clone of the client.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::error::{DarajaError, fault_of};
use crate::config::Secret;

/// Refresh this long before Daraja says the token expires (clocks and in-flight calls).
const MARGIN: Duration = Duration::from_secs(60);
/// Tokens last about an hour; assume at most this when Daraja gives no usable lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3599);

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// The token slot. Its lock is held while fetching, so concurrent callers wait for one fetch
/// instead of each asking Daraja.
#[derive(Clone, Default)]
pub(super) struct TokenCache {
    slot: Arc<Mutex<Option<Cached>>>,
}

pub(super) struct Credentials<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a Url,
    pub consumer_key: &'a Secret,
    pub consumer_secret: &'a Secret,
}

impl TokenCache {
    /// A valid token: the cached one, or a fresh one.
    pub async fn get(&self, creds: &Credentials<'_>) -> Result<Secret, DarajaError> {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = fetch(creds).await?;
        let keep = if lifetime > MARGIN * 2 {
            lifetime - MARGIN
        } else {
            lifetime / 2
        };
        *slot = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + keep,
        });
        Ok(token)
    }

    /// Forgets `stale` (Daraja refused it), unless another caller already replaced it.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| c.token == *stale) {
            *slot = None;
        }
    }
}

async fn fetch(creds: &Credentials<'_>) -> Result<(Secret, Duration), DarajaError> {
    let url = creds
        .base
        .join("/oauth/v1/generate?grant_type=client_credentials")
        .expect("valid path");
    let response = creds
        .http
        .get(url)
        .basic_auth(
            creds.consumer_key.expose(),
            Some(creds.consumer_secret.expose()),
        )
        .send()
        .await
        .map_err(|e| DarajaError::Token(format!("token request failed: {e}")))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| DarajaError::Token(format!("token answer unreadable: {e}")))?;
    if status != 200 {
        return Err(DarajaError::Token(match fault_of(status, &text) {
            Some(fault) => fault.to_string(),
            None => format!("HTTP {status} from the token endpoint"),
        }));
    }
    parse(&text)
}

/// `{"access_token":"…","expires_in":"3599"}`; `expires_in` is a string in practice, a number
/// is accepted too.
fn parse(text: &str) -> Result<(Secret, Duration), DarajaError> {
    #[derive(Deserialize)]
    struct Body {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let body: Body = serde_json::from_str(text)
        .map_err(|e| DarajaError::Token(format!("token answer unreadable: {e}")))?;
    if body.access_token.is_empty() {
        return Err(DarajaError::Token("empty access_token".into()));
    }
    let seconds = match body.expires_in {
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let lifetime = seconds
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME);
    Ok((Secret::new(body.access_token), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_read_as_a_string_or_a_number() {
        let (token, life) =
            parse(r#"{"access_token":"c9SQxWWhmdVRlyh0zh8gZDTkubVF","expires_in":"3599"}"#)
                .unwrap();
        assert_eq!(token.expose(), "c9SQxWWhmdVRlyh0zh8gZDTkubVF");
        assert_eq!(life, Duration::from_secs(3599));
        let (_, life) = parse(r#"{"access_token":"t","expires_in":120}"#).unwrap();
        assert_eq!(life, Duration::from_secs(120));
        let (_, life) = parse(r#"{"access_token":"t"}"#).unwrap();
        assert_eq!(life, DEFAULT_LIFETIME);
    }

    #[test]
    fn a_body_without_a_token_is_a_token_failure() {
        assert!(matches!(
            parse(r#"{"expires_in":"3599"}"#),
            Err(DarajaError::Token(_))
        ));
        assert!(matches!(
            parse(r#"{"access_token":"","expires_in":"3599"}"#),
            Err(DarajaError::Token(_))
        ));
    }
}
