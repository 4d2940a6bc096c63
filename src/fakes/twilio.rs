//! A fake Twilio Messages API: Basic auth, required fields, 201 with an `SM` + 32 hex SID and
//! string `num_segments`, Twilio's error bodies for the magic test numbers, scripted 429 / 5xx /
//! hangs, a record of every request (and when it came), signed status callbacks posted to the
//! service, a message fetch whose `price` appears once the message is final, and, when told, the
//! account's cap on concurrent requests (429 / 20429 past it) and a latency for every answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};
use url::Url;

use crate::config::{PublicUrl, Secret};
use crate::domain::Segments;
use crate::providers::twilio::{CALLBACK_MESSAGE_PARAM, Sender, TwilioClient, signature};

pub const ACCOUNT_SID: &str = "ACfa4e0000000000000000000000000001";
pub const AUTH_TOKEN: &str = "fake-twilio-auth-token";
pub const FROM: &str = "+15005550006";

/// What the fake does with the next create request (after the magic numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// 429 with this `Retry-After` (seconds).
    RateLimit(u64),
    /// 5xx with Twilio's error body.
    ServerError(u16),
    /// 5xx with Twilio's error body, after this long (a slow failure; nothing is created).
    SlowServerError(u16, Duration),
    /// Creates the message, then answers only after this long (the client gives up first).
    Hang(Duration),
    /// Creates the message, then answers with a body cut short (the answer is lost on the way).
    AcceptAndDropAnswer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub sid: String,
    pub to: String,
    pub body: String,
    pub num_segments: u32,
    pub status_callback: Option<String>,
    pub validity_period: Option<String>,
    pub created: chrono::DateTime<Utc>,
    /// Twilio's status: `queued` until it is handed on (`set_status`, or a callback).
    pub status: String,
}

impl FakeMessage {
    /// The id our service gave this message, read from its StatusCallback URL (which names it):
    /// two provider messages with one id are one message sent twice.
    pub fn our_message_id(&self) -> Option<String> {
        let url = Url::parse(self.status_callback.as_deref()?).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == CALLBACK_MESSAGE_PARAM)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Behaviour>,
    requests: Vec<Vec<(String, String)>>,
    /// When each create request came, beside `requests`.
    request_times: Vec<std::time::Instant>,
    /// Create requests being answered now, and the most the account allows (`None`: no cap).
    in_flight: usize,
    max_in_flight: Option<usize>,
    /// Create requests refused for going past `max_in_flight`.
    concurrency_refusals: usize,
    /// How long every create request takes to answer.
    latency: Duration,
    lists: Vec<Vec<(String, String)>>,
    messages: Vec<FakeMessage>,
    segments_override: Option<u32>,
    /// The account's auth token now (Twilio's primary token; `rotate_token` changes it).
    token: String,
}

fn current_token(inner: &Mutex<Inner>) -> String {
    inner.lock().expect("lock").token.clone()
}

#[derive(Clone)]
pub struct FakeTwilio {
    pub base: Url,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

impl FakeTwilio {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            token: AUTH_TOKEN.into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create).get(list),
            )
            .route(
                "/2010-04-01/Accounts/{sid}/Messages/{message}",
                axum::routing::get(fetch),
            )
            .route(
                "/2010-04-01/Accounts/{account}",
                axum::routing::get(account),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = Url::parse(&format!("http://{}", listener.local_addr()?)).expect("loopback URL");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FakeTwilio {
            base,
            inner,
            http: reqwest::Client::new(),
        })
    }

    /// A client of this fake, whose callbacks go to `public_url`.
    pub fn client(&self, public_url: &PublicUrl) -> TwilioClient {
        TwilioClient::new(
            self.base.clone(),
            ACCOUNT_SID,
            Secret::new(AUTH_TOKEN),
            Sender::From(FROM.into()),
            public_url,
        )
    }

    /// Queues behaviours for the next create requests, in order; then it accepts again.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.inner.lock().expect("lock").script.extend(behaviours);
    }

    /// Rotates the account's auth token, as an operator promoting a new primary token in
    /// Twilio's console: requests with the old one get 20003, callbacks are signed with the new.
    pub fn rotate_token(&self, token: &str) {
        self.inner.lock().expect("lock").token = token.into();
    }

    /// Sets a created message's status, as Twilio moves it (`queued` -> `sent`...).
    pub fn set_status(&self, sid: &str, status: &str) {
        let mut inner = self.inner.lock().expect("lock");
        if let Some(m) = inner.messages.iter_mut().find(|m| m.sid == sid) {
            m.status = status.into();
        }
    }

    /// Refuses a create request with 429 / 20429 while `max` others are being answered, as
    /// Twilio limits an account's concurrent requests (`None`: no cap).
    pub fn limit_in_flight(&self, max: Option<usize>) {
        self.inner.lock().expect("lock").max_in_flight = max;
    }

    /// Create requests refused for going past the concurrency cap.
    pub fn concurrency_refusals(&self) -> usize {
        self.inner.lock().expect("lock").concurrency_refusals
    }

    /// Answers every create request only after `latency` (Twilio takes some 100-300 ms).
    pub fn answer_after(&self, latency: Duration) {
        self.inner.lock().expect("lock").latency = latency;
    }

    /// When each create request came, in the order of [`FakeTwilio::requests`].
    pub fn request_times(&self) -> Vec<std::time::Instant> {
        self.inner.lock().expect("lock").request_times.clone()
    }

    /// Reports this many segments for every message, whatever the body.
    pub fn report_segments(&self, n: Option<u32>) {
        self.inner.lock().expect("lock").segments_override = n;
    }

    /// Every create request received (form params), in order.
    pub fn requests(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().expect("lock").requests.clone()
    }

    /// Every list request received (query params), in order: a send job reconciling an
    /// unanswered attempt asks for the messages to its number since the attempt began.
    pub fn lists(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().expect("lock").lists.clone()
    }

    /// Messages the fake created (what Twilio "sent").
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.inner.lock().expect("lock").messages.clone()
    }

    /// The messages created after the first `seen`, in order (to follow a long run cheaply).
    pub fn messages_after(&self, seen: usize) -> Vec<FakeMessage> {
        let inner = self.inner.lock().expect("lock");
        inner.messages.get(seen..).unwrap_or_default().to_vec()
    }

    /// Posts a status callback for `sid`, signed with the account's token as Twilio does, to the
    /// message's StatusCallback URL (or `to` when given). Returns the service's HTTP status.
    pub async fn callback(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> reqwest::Result<u16> {
        let message = self
            .inner
            .lock()
            .expect("lock")
            .messages
            .iter()
            .find(|m| m.sid == sid)
            .cloned()
            .expect("a message the fake created");
        let url = message
            .status_callback
            .clone()
            .expect("the message asked for callbacks");
        let mut params = vec![
            ("AccountSid", ACCOUNT_SID.to_string()),
            ("ApiVersion", "2010-04-01".to_string()),
            ("From", FROM.to_string()),
            ("MessageSid", sid.to_string()),
            ("MessageStatus", status.to_string()),
            ("SmsSid", sid.to_string()),
            ("SmsStatus", status.to_string()),
            ("To", message.to.clone()),
        ];
        if let Some(code) = error_code {
            params.push(("ErrorCode", code.to_string()));
        }
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.set_status(sid, status);
        let sig = signature::compute(&current_token(&self.inner), &url, &owned);
        let resp = self
            .http
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }
}

impl FakeTwilio {
    /// Posts an inbound SMS from `from` to our number, as Twilio does to a number's webhook URL,
    /// signed with the account's token. Returns the service's HTTP status.
    pub async fn inbound(&self, url: &str, from: &str, body: &str) -> reqwest::Result<u16> {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let params = [
            ("AccountSid", ACCOUNT_SID),
            ("ApiVersion", "2010-04-01"),
            ("Body", body),
            ("From", from),
            ("MessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsSid", sid.as_str()),
            ("SmsStatus", "received"),
            ("To", FROM),
        ];
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = signature::compute(&current_token(&self.inner), url, &owned);
        let resp = self
            .http
            .post(url)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }
}

fn error(status: u16, code: i64, message: &str) -> Response {
    let body = json!({
        "code": code, "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status,
    });
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

fn authorised(inner: &Mutex<Inner>, headers: &HeaderMap, sid: &str) -> bool {
    let token = current_token(inner);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{token}"))
    );
    sid == ACCOUNT_SID
        && headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// The magic test numbers (PROTOCOLS.md section 2).
fn magic(to: &str) -> Option<(i64, &'static str)> {
    match to {
        "+15005550001" => Some((21211, "The 'To' number is not a valid phone number.")),
        "+15005550002" => Some((
            21612,
            "The 'To' phone number is not currently reachable via SMS.",
        )),
        "+15005550003" => Some((
            21408,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
        )),
        "+15005550004" => Some((21610, "Attempt to send to unsubscribed recipient")),
        "+15005550009" => Some((21614, "'To' number is not a valid mobile number")),
        _ => None,
    }
}

async fn create(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorised(&inner, &headers, &sid) {
        return error(401, 20003, "Authenticate");
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (behaviour, latency) = {
        let mut inner = inner.lock().expect("lock");
        inner.requests.push(params.clone());
        inner.request_times.push(std::time::Instant::now());
        if inner
            .max_in_flight
            .is_some_and(|max| inner.in_flight >= max)
        {
            inner.concurrency_refusals += 1;
            return error(429, 20429, "Too Many Requests");
        }
        inner.in_flight += 1;
        let behaviour = inner.script.pop_front().unwrap_or(Behaviour::Accept);
        (behaviour, inner.latency)
    };
    // Counted in flight until answered, or until the client hangs up.
    let _answering = InFlight(inner.clone());
    tokio::time::sleep(latency).await;
    let (Some(to), Some(text)) = (get("To"), get("Body")) else {
        return error(400, 21602, "Message body is required.");
    };
    if get("From").is_none() && get("MessagingServiceSid").is_none() {
        return error(400, 21603, "The 'From' number is required.");
    }
    if text.chars().count() > 1600 {
        return error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    if let Some(v) = get("ValidityPeriod")
        && !v.parse::<u32>().is_ok_and(|n| (1..=36_000).contains(&n))
    {
        return error(400, 21624, "Invalid validity period value");
    }
    if let Some((code, message)) = magic(&to) {
        return error(400, code, message);
    }
    match behaviour {
        Behaviour::RateLimit(secs) => {
            let mut r = error(429, 20429, "Too Many Requests");
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("header"));
            return r;
        }
        Behaviour::ServerError(status) | Behaviour::SlowServerError(status, _) => {
            if let Behaviour::SlowServerError(_, after) = behaviour {
                tokio::time::sleep(after).await;
            }
            return error(status, 20500, "Internal Server Error");
        }
        Behaviour::Accept | Behaviour::Hang(_) | Behaviour::AcceptAndDropAnswer => {}
    }
    let segments = inner
        .lock()
        .expect("lock")
        .segments_override
        .unwrap_or_else(|| Segments::count(&text).count);
    let message = FakeMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        to,
        body: text,
        num_segments: segments,
        status_callback: get("StatusCallback"),
        validity_period: get("ValidityPeriod"),
        created: Utc::now(),
        status: "queued".into(),
    };
    inner.lock().expect("lock").messages.push(message.clone());
    if let Behaviour::Hang(d) = behaviour {
        tokio::time::sleep(d).await;
    }
    if behaviour == Behaviour::AcceptAndDropAnswer {
        let mut cut = resource(&message, "queued").to_string();
        cut.truncate(cut.len() / 2);
        return (StatusCode::CREATED, cut).into_response();
    }
    (StatusCode::CREATED, Json(resource(&message, "queued"))).into_response()
}

/// One create request being answered: leaves the count when dropped.
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().expect("lock").in_flight -= 1;
    }
}

fn resource(m: &FakeMessage, status: &str) -> Value {
    let date = m.created.to_rfc2822();
    // A message Twilio still holds in its queue has not been sent: no date_sent.
    let sent = (!matches!(status, "queued" | "accepted" | "scheduled")).then(|| date.clone());
    json!({
        "account_sid": ACCOUNT_SID, "api_version": "2010-04-01", "body": m.body,
        "date_created": date, "date_sent": sent, "date_updated": date, "direction": "outbound-api",
        "error_code": null, "error_message": null, "from": FROM, "messaging_service_sid": null,
        "num_media": "0", "num_segments": m.num_segments.to_string(), "price": price(m.num_segments, status),
        "price_unit": "USD",
        "sid": m.sid, "status": status, "to": m.to,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{}.json", m.sid),
    })
}

/// What Twilio charges per segment in the fake (USD), shown once a message is final.
pub const PRICE_PER_SEGMENT: &str = "0.0075";

/// As Twilio: `price` is null until the message is final, then negative (what was billed), in
/// five decimals; a failed message costs nothing.
fn price(segments: u32, status: &str) -> Value {
    let per_segment: rust_decimal::Decimal = PRICE_PER_SEGMENT.parse().expect("a decimal");
    match status {
        "delivered" | "undelivered" => {
            json!(format!(
                "{:.5}",
                -per_segment * rust_decimal::Decimal::from(segments)
            ))
        }
        "failed" => json!("0.00000"),
        _ => Value::Null,
    }
}

/// `GET Messages/{sid}.json`: one message as the fake has it now.
async fn fetch(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((sid, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&inner, &headers, &sid) {
        return error(401, 20003, "Authenticate");
    }
    let wanted = message.trim_end_matches(".json");
    let inner = inner.lock().expect("lock");
    match inner.messages.iter().find(|m| m.sid == wanted) {
        Some(m) => Json(resource(m, &m.status)).into_response(),
        None => error(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{sid}/Messages/{message} was not found"
            ),
        ),
    }
}

async fn list(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if !authorised(&inner, &headers, &sid) {
        return error(401, 20003, "Authenticate");
    }
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let to = get("To");
    // As Twilio: `DateSent>` (a day, YYYY-MM-DD) keeps messages sent on or after it, so a
    // message still queued (no date_sent) is left out; newest first; paged.
    let sent_since =
        get("DateSent>").and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let page_size: usize = get("PageSize")
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let page: usize = get("Page").and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut inner = inner.lock().expect("lock");
    inner.lists.push(q.clone());
    let matching: Vec<Value> = inner
        .messages
        .iter()
        .rev()
        .filter(|m| to.as_ref().is_none_or(|t| *t == m.to))
        .filter(|m| {
            sent_since.is_none_or(|day| m.status != "queued" && m.created.date_naive() >= day)
        })
        .map(|m| resource(m, &m.status))
        .collect();
    let start = (page * page_size).min(matching.len());
    let end = (start + page_size).min(matching.len());
    let next = (end < matching.len()).then(|| {
        format!(
            "/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?To={}&PageSize={page_size}&Page={}",
            to.as_deref().map(urlencode).unwrap_or_default(),
            page + 1
        )
    });
    Json(json!({
        "messages": matching[start..end], "page": page, "page_size": page_size,
        "next_page_uri": next,
    }))
    .into_response()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn account(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&inner, &headers, sid.trim_end_matches(".json")) {
        return error(401, 20003, "Authenticate");
    }
    Json(json!({ "sid": ACCOUNT_SID, "status": "active", "friendly_name": "fake" })).into_response()
}
