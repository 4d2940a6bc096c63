//! The Messages API client: create a message, list messages to a number (for reconciling
//! a send whose answer never came), and fetch one (for its price, filled in later).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use crate::config::{PublicUrl, Secret};
use crate::domain::{E164, MessageId};

/// The StatusCallback URL's query parameter naming the message.
pub const CALLBACK_MESSAGE_PARAM: &str = "message";

/// Who the message is from: a number / alphanumeric sender id, or a Messaging Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    From(String),
    MessagingService(String),
}

impl Sender {
    /// `MG...` is a Messaging Service SID; anything else a sender.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("MG") && s.len() == 34 {
            Sender::MessagingService(s.into())
        } else {
            Sender::From(s.into())
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Sender::From(s) | Sender::MessagingService(s) => s,
        }
    }
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base: Url,
    account_sid: String,
    auth_token: Secret,
    /// Which credentials these are (`pause::fingerprint`), computed once: the send gate asks
    /// for it on every send.
    credentials: String,
    sender: Sender,
    status_callback: Url,
    /// The longest a request can take, connection included (reqwest's overall timeout).
    timeout: Duration,
    /// `ValidityPeriod` of every message: past it Twilio fails the message (30036) instead
    /// of delivering it late.
    validity: Duration,
}

/// The parts of Twilio's Message resource we use. `num_segments` and `price` come as strings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TwilioMessage {
    pub sid: String,
    pub status: String,
    pub to: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "string_number")]
    pub num_segments: Option<u32>,
    #[serde(default, deserialize_with = "string_decimal")]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub price_unit: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// RFC 2822, e.g. `Thu, 24 Aug 2023 05:01:45 +0000`.
    #[serde(default, deserialize_with = "rfc2822")]
    pub date_created: Option<DateTime<Utc>>,
}

/// Twilio's 2010 error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error body (4xx other than 429).
    #[error("twilio refused ({status}) {code}: {message}")]
    Refused {
        status: u16,
        code: i64,
        message: String,
    },
    /// 401 / 20003: Twilio does not accept our account SID and auth token (a rotation that has
    /// not reached us, or a suspended key). Nothing was created; nothing is wrong with the
    /// message.
    #[error("twilio refused our credentials ({status}) {code}: {message}")]
    CredentialsRefused {
        status: u16,
        code: i64,
        message: String,
    },
    /// 429 / 20429: wait (for `Retry-After` when given).
    #[error("twilio rate limited us")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: nothing was created; try again later.
    #[error("twilio server error {status}")]
    Server { status: u16 },
    /// The request never reached Twilio (connection refused, DNS): safe to retry.
    #[error("could not reach twilio: {0}")]
    NotSent(String),
    /// The request was sent but no usable answer came: Twilio may have created the message.
    #[error("no answer from twilio: {0}")]
    Ambiguous(String),
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Twilio's "Authenticate" error: our credentials were refused.
const AUTHENTICATE: i64 = 20003;

impl TwilioClient {
    pub fn new(
        base: Url,
        account_sid: &str,
        auth_token: Secret,
        sender: Sender,
        public_url: &PublicUrl,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT)
            .build()
            .expect("reqwest client");
        let status_callback = public_url.route("/webhooks/twilio/status");
        TwilioClient {
            http,
            base,
            account_sid: account_sid.to_string(),
            credentials: crate::providers::pause::fingerprint(account_sid, auth_token.expose()),
            auth_token,
            sender,
            status_callback,
            timeout: TIMEOUT,
            validity: Duration::from_secs(3600),
        }
    }

    /// Messages that Twilio could not hand on within `validity` fail (30036) rather than
    /// arrive late (by default an hour).
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// Shorter timeouts, for tests that make Twilio hang.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("reqwest client");
        self.timeout = timeout;
        self
    }

    /// The longest a request to Twilio can be in flight before this client gives up on it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    pub fn auth_token(&self) -> &Secret {
        &self.auth_token
    }

    /// The fingerprint of the account SID and auth token (`pause::fingerprint`).
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    fn messages_url(&self) -> Url {
        self.base
            .join(&format!(
                "/2010-04-01/Accounts/{}/Messages.json",
                self.account_sid
            ))
            .expect("valid path")
    }

    /// The StatusCallback URL of `message`: it names the message, so that a callback for a
    /// send whose answer never reached us still finds its message (and adopts its SID).
    pub fn status_callback_of(&self, message: MessageId) -> Url {
        let mut url = self.status_callback.clone();
        url.query_pairs_mut()
            .append_pair(CALLBACK_MESSAGE_PARAM, &message.to_string());
        url
    }

    /// `POST /2010-04-01/Accounts/{sid}/Messages.json` for `message`.
    pub async fn send(
        &self,
        message: MessageId,
        to: &E164,
        body: &str,
    ) -> Result<TwilioMessage, TwilioError> {
        timed("messages.create", self.create(message, to, body)).await
    }

    async fn create(
        &self,
        message: MessageId,
        to: &E164,
        body: &str,
    ) -> Result<TwilioMessage, TwilioError> {
        let callback = self.status_callback_of(message);
        let validity = self.validity.as_secs().to_string();
        let mut form = vec![
            ("To", to.as_str()),
            ("Body", body),
            ("StatusCallback", callback.as_str()),
            ("ValidityPeriod", validity.as_str()),
        ];
        match &self.sender {
            Sender::From(f) => form.push(("From", f)),
            Sender::MessagingService(mg) => form.push(("MessagingServiceSid", mg)),
        }
        let request = self
            .http
            .post(self.messages_url())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("Accept", "application/json")
            .form(&form);
        let response = request.send().await.map_err(classify_send_error)?;
        parse(response).await
    }

    /// Checks the credentials: `GET /2010-04-01/Accounts/{sid}.json` must answer 200.
    pub async fn check_account(&self) -> Result<(), TwilioError> {
        timed("accounts.fetch", self.fetch_account()).await
    }

    async fn fetch_account(&self) -> Result<(), TwilioError> {
        let url = self
            .base
            .join(&format!("/2010-04-01/Accounts/{}.json", self.account_sid))
            .expect("valid path");
        let response = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(classify_send_error)?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(error_from(status, None, &text))
    }

    /// One message as Twilio has it now: `GET Messages/{sid}.json`. Its `price` (negative, in
    /// `price_unit`) is filled in some time after the send, and is null until then.
    pub async fn fetch_message(&self, sid: &str) -> Result<TwilioMessage, TwilioError> {
        timed("messages.fetch", async {
            let url = self
                .base
                .join(&format!(
                    "/2010-04-01/Accounts/{}/Messages/{sid}.json",
                    self.account_sid
                ))
                .map_err(|e| TwilioError::NotSent(format!("unusable message sid: {e}")))?;
            let response = self
                .http
                .get(url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
                .send()
                .await
                .map_err(classify_send_error)?;
            parse(response).await
        })
        .await
    }

    /// Messages to `to` created since `since`, newest first: `GET Messages.json?To=..`, page
    /// after page until a page reaches back before `since` (at most [`LIST_PAGES`] pages). No
    /// `DateSent` filter: Twilio leaves out a message it still holds in its queue (it has no
    /// date_sent yet), which is exactly the message an unanswered send may have created.
    pub async fn messages_to(
        &self,
        to: &E164,
        since: DateTime<Utc>,
    ) -> Result<Vec<TwilioMessage>, TwilioError> {
        timed("messages.list", self.list_to(to, since)).await
    }

    async fn list_to(
        &self,
        to: &E164,
        since: DateTime<Utc>,
    ) -> Result<Vec<TwilioMessage>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            messages: Vec<TwilioMessage>,
            #[serde(default)]
            next_page_uri: Option<String>,
        }
        // Clocks differ: Twilio's date_created may be a little before our attempt's start.
        let from = since - chrono::Duration::seconds(5);
        let mut url = self.messages_url();
        url.query_pairs_mut()
            .append_pair("To", to.as_str())
            .append_pair("PageSize", "100");
        let mut found = Vec::new();
        for _ in 0..LIST_PAGES {
            let response = self
                .http
                .get(url.clone())
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
                .send()
                .await
                .map_err(classify_send_error)?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| TwilioError::Ambiguous(e.to_string()))?;
            if !status.is_success() {
                return Err(error_from(status.as_u16(), None, &text));
            }
            let page: Page = serde_json::from_str(&text)
                .map_err(|e| TwilioError::Ambiguous(format!("unreadable list: {e}")))?;
            let reached_back = page
                .messages
                .iter()
                .any(|m| m.date_created.is_some_and(|d| d < from));
            found.extend(
                page.messages
                    .into_iter()
                    .filter(|m| m.date_created.is_none_or(|d| d >= from)),
            );
            match page.next_page_uri {
                Some(next) if !reached_back => {
                    url = self.base.join(&next).map_err(|e| {
                        TwilioError::Ambiguous(format!("unusable next_page_uri: {e}"))
                    })?;
                }
                _ => return Ok(found),
            }
        }
        Err(TwilioError::Ambiguous(format!(
            "more than {LIST_PAGES} pages of messages to {to}: the lookup is incomplete"
        )))
    }
}

/// The most pages of a number's messages an unanswered send's lookup reads (100 each).
pub const LIST_PAGES: usize = 10;

/// Runs one API call and records its latency and outcome (`crate::metrics::provider_call`).
async fn timed<T>(
    operation: &str,
    call: impl std::future::Future<Output = Result<T, TwilioError>>,
) -> Result<T, TwilioError> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = match &result {
        Ok(_) => "ok",
        Err(TwilioError::Refused { .. }) => "refused",
        Err(TwilioError::CredentialsRefused { .. }) => "credentials_refused",
        Err(TwilioError::RateLimited { .. }) => "rate_limited",
        Err(TwilioError::Server { .. }) => "server_error",
        Err(TwilioError::NotSent(_)) => "not_sent",
        Err(TwilioError::Ambiguous(_)) => "ambiguous",
    };
    crate::metrics::provider_call("twilio", operation, status, started.elapsed());
    result
}

fn classify_send_error(e: reqwest::Error) -> TwilioError {
    if e.is_connect() || e.is_builder() {
        TwilioError::NotSent(e.to_string())
    } else {
        // A timeout or a broken connection after sending: Twilio may have the message.
        TwilioError::Ambiguous(e.to_string())
    }
}

async fn parse(response: reqwest::Response) -> Result<TwilioMessage, TwilioError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response
        .text()
        .await
        .map_err(|e| TwilioError::Ambiguous(e.to_string()))?;
    if status == 201 || status == 200 {
        return serde_json::from_str(&text)
            .map_err(|e| TwilioError::Ambiguous(format!("unreadable 2xx body: {e}")));
    }
    Err(error_from(status, retry_after, &text))
}

fn error_from(status: u16, retry_after: Option<Duration>, text: &str) -> TwilioError {
    let body: Option<ErrorBody> = serde_json::from_str(text).ok();
    if status == 429 || body.as_ref().is_some_and(|b| b.code == 20429) {
        return TwilioError::RateLimited { retry_after };
    }
    if status >= 500 {
        return TwilioError::Server { status };
    }
    if status == 401 || body.as_ref().is_some_and(|b| b.code == AUTHENTICATE) {
        return TwilioError::CredentialsRefused {
            status,
            code: body.as_ref().map_or(AUTHENTICATE, |b| b.code),
            message: body.map_or_else(|| "Authenticate".into(), |b| b.message),
        };
    }
    match body {
        Some(b) => TwilioError::Refused {
            status,
            code: b.code,
            message: b.message,
        },
        None => TwilioError::Refused {
            status,
            code: 0,
            message: format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        },
    }
}

fn string_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v: Option<serde_json::Value> = Option::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n as u32),
        _ => None,
    })
}

fn string_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.and_then(|s| s.parse().ok()))
}

fn rfc2822<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.and_then(|s| DateTime::parse_from_rfc2822(&s).ok())
        .map(|d| d.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_example_parses_with_string_numbers_and_rfc2822_dates() {
        let body = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","api_version":"2010-04-01","body":"Hello! 👍","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","date_sent":"Thu, 24 Aug 2023 05:01:45 +0000","date_updated":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,"error_message":null,"from":"+14155552345","num_media":"0","num_segments":"1","price":null,"price_unit":null,"messaging_service_sid":"MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","sid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"queued","subresource_uris":{"media":"/x"},"to":"+14155552345","uri":"/x","tags":{"a":"b"}}"#;
        let m: TwilioMessage = serde_json::from_str(body).unwrap();
        assert_eq!(m.num_segments, Some(1));
        assert_eq!(m.price, None);
        assert_eq!(
            m.date_created.unwrap().to_rfc3339(),
            "2023-08-24T05:01:45+00:00"
        );
        let priced: TwilioMessage =
            serde_json::from_str(r#"{"sid":"SM1","status":"sent","to":"+1","num_segments":"3","price":"-0.00750","price_unit":"USD"}"#).unwrap();
        assert_eq!(
            (priced.num_segments, priced.price.map(|p| p.to_string())),
            (Some(3), Some("-0.00750".into()))
        );
    }

    #[test]
    fn errors_are_classified() {
        let e = error_from(
            400,
            None,
            r#"{"code": 21211, "message": "The 'To' number +invalid is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        );
        assert!(matches!(
            e,
            TwilioError::Refused {
                status: 400,
                code: 21211,
                ..
            }
        ));
        assert!(matches!(
            error_from(429, Some(Duration::from_secs(3)), "{}"),
            TwilioError::RateLimited {
                retry_after: Some(_)
            }
        ));
        assert!(matches!(
            error_from(400, None, r#"{"code":20429,"message":"Too Many Requests"}"#),
            TwilioError::RateLimited { .. }
        ));
        assert!(matches!(
            error_from(503, None, "<html>"),
            TwilioError::Server { status: 503 }
        ));
        assert!(matches!(
            error_from(401, None, r#"{"code":20003,"message":"Authenticate"}"#),
            TwilioError::CredentialsRefused { code: 20003, .. }
        ));
        assert!(matches!(
            error_from(401, None, "<html>Unauthorized</html>"),
            TwilioError::CredentialsRefused { status: 401, .. }
        ));
    }

    #[test]
    fn a_messaging_service_sid_is_recognised() {
        assert_eq!(
            Sender::parse("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            Sender::MessagingService("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into())
        );
        assert_eq!(Sender::parse("COPCCA"), Sender::From("COPCCA".into()));
    }
}
