//! A fake Stripe: the Checkout Sessions API (Bearer key, Stripe's bracket form, required params,
//! Stripe's error bodies, `Idempotency-Key` replay / mismatch / in-progress conflict), scripted
//! 5xx / 429 and slow answers, a record of every request, and test drivers that move a session
//! along (paid, unpaid, async outcome, expired, refunded) and post the signed event Stripe would
//! send to the service's webhook URL.
//!
//! Without a webhook URL, events are stored but not delivered (status 0); set one later and
//! [`FakeStripe::redeliver`] them in any order, as Stripe's at-least-once, unordered delivery may.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use url::Url;

use crate::config::Secret;
use crate::providers::stripe::{StripeClient, signature};

pub const SECRET_KEY: &str = "sk_test_fake51CopccaSmsFakeSecretKey0000";
pub const WEBHOOK_SECRET: &str = "whsec_fakeCopccaSmsWebhookSecret0000";
/// The API version stamped on events.
pub const API_VERSION: &str = "2026-06-24.dahlia";

/// What the fake does with the next create request (after authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Answers this status with Stripe's error body (5xx `api_error`, 429 `rate_limit`, …)
    /// before the idempotency layer: nothing is saved, so a retry with the same key proceeds.
    Fail(u16),
    /// A 500 after execution began: Stripe saves it under the `Idempotency-Key` and replays it to
    /// every retry with that key (PROTOCOLS.md section 4). No session is created.
    FailSaved,
}

/// A session as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    pub id: String,
    /// The hosted page (shown as `url` only while the session is open).
    pub url: String,
    pub mode: String,
    pub status: String,
    pub payment_status: String,
    pub amount_total: i64,
    pub currency: String,
    pub product_name: String,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// `payment_intent_data[metadata]`: what the PaymentIntent and its Charge carry.
    pub payment_intent_metadata: BTreeMap<String, String>,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    /// What was charged (fixed at payment, whatever `set_session_amount` says later).
    pub amount_charged: i64,
    pub amount_refunded: i64,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub created: i64,
    pub expires_at: i64,
}

/// One API request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRequest {
    pub method: &'static str,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The decoded form, in the order sent.
    pub params: Vec<(String, String)>,
}

/// An event the fake created, with the exact body it signs and posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub kind: String,
    pub body: String,
}

/// The event posted and what the service answered (0: no webhook URL, or no answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub status: u16,
}

/// A saved idempotent result, keyed by `Idempotency-Key`.
#[derive(Debug, Clone)]
struct Saved {
    fingerprint: String,
    /// `None` while the first request is still executing.
    response: Option<(u16, String)>,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Behaviour>,
    delay: Option<Duration>,
    requests: Vec<FakeRequest>,
    sessions: Vec<FakeSession>,
    idempotency: HashMap<String, Saved>,
    events: Vec<StoredEvent>,
    webhook_url: Option<Url>,
}

type Shared = Arc<Mutex<Inner>>;

#[derive(Clone)]
pub struct FakeStripe {
    pub base: Url,
    inner: Shared,
    http: reqwest::Client,
}

impl FakeStripe {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Shared::default();
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create))
            .route("/v1/checkout/sessions/{id}", get(retrieve))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = Url::parse(&format!("http://{}", listener.local_addr()?)).expect("loopback URL");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FakeStripe {
            base,
            inner,
            http: reqwest::Client::new(),
        })
    }

    /// A client of this fake with its secret key.
    pub fn client(&self) -> StripeClient {
        StripeClient::new(self.base.clone(), Secret::new(SECRET_KEY))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("lock")
    }

    /// Where events are posted (the service's `/webhooks/stripe`).
    pub fn set_webhook_url(&self, url: Url) {
        self.lock().webhook_url = Some(url);
    }

    /// Queues behaviours for the next create requests, in order; then it accepts again.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.lock().script.extend(behaviours);
    }

    /// The next `n` create requests answer `status` (500 `api_error`, 429 `rate_limit`, …).
    pub fn fail_next_creates(&self, n: usize, status: u16) {
        self.script(std::iter::repeat_n(Behaviour::Fail(status), n));
    }

    /// Every API answer waits this long first (a create is executed before the wait, so a client
    /// that gives up has still created the session, and a retry meanwhile gets 409).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Every API request received, in order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.lock().requests.clone()
    }

    /// Every session created, in order.
    pub fn sessions(&self) -> Vec<FakeSession> {
        self.lock().sessions.clone()
    }

    pub fn session(&self, id: &str) -> Option<FakeSession> {
        self.lock().sessions.iter().find(|s| s.id == id).cloned()
    }

    /// Every event created, in order.
    pub fn events(&self) -> Vec<StoredEvent> {
        self.lock().events.clone()
    }

    /// Changes what `GET /v1/checkout/sessions/{id}` (and later events) report as the amount,
    /// to test that the service checks amount and currency against its own purchase.
    pub fn set_session_amount(&self, session_id: &str, amount_total: i64, currency: &str) {
        self.with_session(session_id, |s| {
            s.amount_total = amount_total;
            s.currency = currency.to_string();
        });
    }

    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut FakeSession) -> T) -> T {
        let mut inner = self.lock();
        let session = inner
            .sessions
            .iter_mut()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("the fake holds no session {id}"));
        f(session)
    }

    /// The customer finished checkout. `paid`: card paid, `payment_status: paid`. Otherwise a
    /// delayed method: `complete` but `unpaid` until an async outcome. Sends
    /// `checkout.session.completed`.
    pub async fn complete(&self, session_id: &str, paid: bool) -> Delivery {
        let object = self.with_session(session_id, |s| {
            assert_eq!(s.status, "open", "only an open session completes");
            s.status = "complete".into();
            s.payment_intent = Some(random_id("pi_", 24));
            if paid {
                pay(s);
            }
            session_json(s)
        });
        self.emit("checkout.session.completed", object, automatic())
            .await
    }

    /// A delayed payment cleared: `checkout.session.async_payment_succeeded`.
    pub async fn async_payment_succeeded(&self, session_id: &str) -> Delivery {
        let object = self.with_session(session_id, |s| {
            assert!(
                s.status == "complete" && s.payment_status == "unpaid",
                "only a completed, unpaid session has an async outcome"
            );
            pay(s);
            session_json(s)
        });
        self.emit(
            "checkout.session.async_payment_succeeded",
            object,
            automatic(),
        )
        .await
    }

    /// A delayed payment failed: `checkout.session.async_payment_failed` (stays unpaid).
    pub async fn async_payment_failed(&self, session_id: &str) -> Delivery {
        let object = self.with_session(session_id, |s| {
            assert!(
                s.status == "complete" && s.payment_status == "unpaid",
                "only a completed, unpaid session has an async outcome"
            );
            session_json(s)
        });
        self.emit("checkout.session.async_payment_failed", object, automatic())
            .await
    }

    /// The session lapsed unpaid: `checkout.session.expired`.
    pub async fn expire(&self, session_id: &str) -> Delivery {
        let object = self.with_session(session_id, |s| {
            assert_eq!(s.status, "open", "only an open session expires");
            s.status = "expired".into();
            session_json(s)
        });
        self.emit("checkout.session.expired", object, automatic())
            .await
    }

    /// Refunds `amount_minor` of the session's charge (as from the Dashboard or API):
    /// `charge.refunded` with the cumulative `amount_refunded`, `refunded` true once in full, and
    /// the PaymentIntent's metadata (not the session's).
    pub async fn refund(&self, session_id: &str, amount_minor: i64) -> Delivery {
        let (object, previous) = self.with_session(session_id, |s| {
            assert_eq!(s.payment_status, "paid", "only a paid session has a charge");
            let previous = s.amount_refunded;
            assert!(
                amount_minor > 0 && previous + amount_minor <= s.amount_charged,
                "refund of {amount_minor} exceeds what is left of {}",
                s.amount_charged
            );
            s.amount_refunded += amount_minor;
            (charge_json(s), previous)
        });
        let event =
            json!({ "object": object, "previous_attributes": { "amount_refunded": previous } });
        let request = json!({
            "id": random_id("req_", 14),
            "idempotency_key": uuid::Uuid::new_v4().to_string(),
        });
        self.emit_data("charge.refunded", event, request).await
    }

    async fn emit(&self, kind: &str, object: Value, request: Value) -> Delivery {
        self.emit_data(kind, json!({ "object": object }), request)
            .await
    }

    async fn emit_data(&self, kind: &str, data: Value, request: Value) -> Delivery {
        let id = random_id("evt_", 24);
        let event = json!({
            "id": id, "object": "event", "api_version": API_VERSION, "created": Utc::now().timestamp(),
            "data": data, "livemode": false, "pending_webhooks": 1, "request": request, "type": kind,
        });
        // Stripe posts pretty-printed JSON; the signature is over these exact bytes.
        let body = serde_json::to_string_pretty(&event).expect("json");
        self.lock().events.push(StoredEvent {
            id: id.clone(),
            kind: kind.to_string(),
            body: body.clone(),
        });
        let status = self.post_signed(&body).await;
        Delivery {
            event_id: id,
            status,
        }
    }

    async fn post_signed(&self, body: &str) -> u16 {
        let header = signature::sign(WEBHOOK_SECRET, Utc::now().timestamp(), body.as_bytes());
        self.deliver(body, Some(header)).await
    }

    /// Posts `event_json` as is, with `signature_header` as `Stripe-Signature` (none when `None`),
    /// for forged, stale or malformed deliveries. Returns the service's status (0: no answer).
    pub async fn deliver(&self, event_json: &str, signature_header: Option<String>) -> u16 {
        let Some(url) = self.lock().webhook_url.clone() else {
            return 0;
        };
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(event_json.to_string());
        if let Some(h) = signature_header {
            request = request.header("Stripe-Signature", h);
        }
        match request.send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Sends a stored event again `times` times, each freshly signed (as Stripe's retries are),
    /// one after another or all at once. Returns each answer's status.
    pub async fn redeliver(&self, event_id: &str, times: usize, concurrently: bool) -> Vec<u16> {
        let body = self
            .lock()
            .events
            .iter()
            .find(|e| e.id == event_id)
            .unwrap_or_else(|| panic!("the fake sent no event {event_id}"))
            .body
            .clone();
        if concurrently {
            futures::future::join_all((0..times).map(|_| self.post_signed(&body))).await
        } else {
            let mut statuses = Vec::with_capacity(times);
            for _ in 0..times {
                statuses.push(self.post_signed(&body).await);
            }
            statuses
        }
    }
}

fn pay(s: &mut FakeSession) {
    s.payment_status = "paid".into();
    s.charge = Some(random_id("ch_", 24));
    s.amount_charged = s.amount_total;
}

/// `request` of an event no API call caused (the customer paid, the session lapsed).
fn automatic() -> Value {
    json!({ "id": null, "idempotency_key": null })
}

fn random_id(prefix: &str, len: usize) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

fn session_json(s: &FakeSession) -> Value {
    json!({
        "id": s.id, "object": "checkout.session",
        "amount_subtotal": s.amount_total, "amount_total": s.amount_total,
        "cancel_url": s.cancel_url, "client_reference_id": s.client_reference_id,
        "created": s.created, "currency": s.currency, "customer": null, "customer_details": null,
        "expires_at": s.expires_at, "livemode": false, "metadata": s.metadata, "mode": s.mode,
        "payment_intent": s.payment_intent, "payment_status": s.payment_status, "status": s.status,
        "success_url": s.success_url, "ui_mode": "hosted_page",
        "url": (s.status == "open").then_some(&s.url),
    })
}

fn charge_json(s: &FakeSession) -> Value {
    json!({
        "id": s.charge, "object": "charge", "amount": s.amount_charged,
        "amount_captured": s.amount_charged, "amount_refunded": s.amount_refunded, "captured": true,
        "created": s.created, "currency": s.currency, "livemode": false,
        "metadata": s.payment_intent_metadata, "paid": true, "payment_intent": s.payment_intent,
        "refunded": s.amount_refunded >= s.amount_charged, "status": "succeeded",
    })
}

/// Stripe's error envelope.
fn error_body(kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> String {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{code}"));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error }).to_string()
}

fn respond(status: u16, body: String) -> Response {
    let mut response = (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert("request-id", random_id("req_", 14).parse().expect("header"));
    response
}

/// A status and body not yet sent (small, unlike a `Response`).
type Answer = (u16, String);

fn invalid(message: String, param: &str) -> Answer {
    (
        400,
        error_body("invalid_request_error", None, &message, Some(param)),
    )
}

/// The error Stripe gives for a scripted failure status.
fn scripted_failure(status: u16) -> Response {
    let body = match status {
        429 => error_body(
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            None,
        ),
        s if s >= 500 => error_body(
            "api_error",
            None,
            "Sorry, something went wrong. We've already been notified of the problem.",
            None,
        ),
        _ => error_body("invalid_request_error", None, "Scripted failure.", None),
    };
    respond(status, body)
}

/// `Authorization: Bearer <SECRET_KEY>`, or Stripe's 401.
fn authenticate(headers: &HeaderMap) -> Result<(), Answer> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let message = match given {
        Some(key) if key == SECRET_KEY => return Ok(()),
        Some(key) => format!("Invalid API Key provided: {}", redact(key)),
        None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".into(),
    };
    Err((
        401,
        error_body("invalid_request_error", None, &message, None),
    ))
}

/// `sk_test_****abcd`, as Stripe echoes a wrong key.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
}

/// Parameters the create endpoint knows (others get Stripe's "unknown parameter").
fn known_param(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "mode",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "expires_at",
        "customer_email",
        "locale",
        "currency",
        "ui_mode",
    ];
    const PREFIXES: &[&str] = &[
        "line_items[",
        "metadata[",
        "payment_intent_data[metadata][",
        "payment_method_types[",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The bracket keys under `prefix[...]`, e.g. `metadata[payment_id]` -> `payment_id`.
fn bracketed(params: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    params
        .iter()
        .filter_map(|(k, v)| {
            let inner = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            (!inner.contains('[')).then(|| (inner.to_string(), v.clone()))
        })
        .collect()
}

fn fingerprint(path: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    format!(
        "POST {path} {}",
        serde_urlencoded::to_string(&sorted).unwrap_or_default()
    )
}

/// Builds a session from the form, or answers Stripe's 400 naming the parameter.
fn new_session(params: &[(String, String)], now: i64) -> Result<FakeSession, Answer> {
    if let Some((k, _)) = params.iter().find(|(k, _)| !known_param(k)) {
        return Err(invalid(format!("Received unknown parameter: {k}"), k));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let require =
        |k: &str| get(k).ok_or_else(|| invalid(format!("Missing required param: {k}."), k));
    let mode = require("mode")?;
    if !["payment", "setup", "subscription"].contains(&mode.as_str()) {
        return Err(invalid(format!("Invalid mode: {mode}"), "mode"));
    }
    let success_url = require("success_url")?;
    let currency = require("line_items[0][price_data][currency]")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid(
            format!(
                "Invalid currency: {currency}. Stripe currencies are three-letter lower-case ISO codes."
            ),
            "line_items[0][price_data][currency]",
        ));
    }
    let unit_amount = require("line_items[0][price_data][unit_amount]")?;
    let unit_amount: i64 = unit_amount.parse().ok().filter(|a| *a > 0).ok_or_else(|| {
        invalid(
            format!("Invalid positive integer: {unit_amount}"),
            "line_items[0][price_data][unit_amount]",
        )
    })?;
    let product_name = require("line_items[0][price_data][product_data][name]")?;
    let quantity = require("line_items[0][quantity]")?;
    let quantity: i64 = quantity.parse().ok().filter(|q| *q > 0).ok_or_else(|| {
        invalid(
            format!("Invalid positive integer: {quantity}"),
            "line_items[0][quantity]",
        )
    })?;
    let expires_at = match get("expires_at") {
        None => now + 24 * 3600,
        Some(raw) => {
            let at: i64 = raw
                .parse()
                .map_err(|_| invalid(format!("Invalid integer: {raw}"), "expires_at"))?;
            if at < now + 30 * 60 || at > now + 24 * 3600 {
                return Err(invalid(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.".into(),
                    "expires_at",
                ));
            }
            at
        }
    };
    let id = random_id("cs_test_", 58);
    Ok(FakeSession {
        url: format!("https://checkout.stripe.com/c/pay/{id}"),
        id,
        mode,
        status: "open".into(),
        payment_status: "unpaid".into(),
        amount_total: unit_amount * quantity,
        currency,
        product_name,
        client_reference_id: get("client_reference_id"),
        metadata: bracketed(params, "metadata"),
        payment_intent_metadata: bracketed(params, "payment_intent_data[metadata]"),
        payment_intent: None,
        charge: None,
        amount_charged: 0,
        amount_refunded: 0,
        success_url,
        cancel_url: get("cancel_url"),
        created: now,
        expires_at,
    })
}

/// The answer to a reused `Idempotency-Key`: the saved result replayed, 400 when the parameters
/// differ, or 409 while the first request is still executing.
fn replay(saved: &Saved, k: &str, print: &str) -> Response {
    if saved.fingerprint != print {
        return respond(
            400,
            error_body(
                "idempotency_error",
                None,
                &format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                ),
                None,
            ),
        );
    }
    match &saved.response {
        Some((status, body)) => {
            let mut r = respond(*status, body.clone());
            r.headers_mut()
                .insert("idempotent-replayed", "true".parse().expect("header"));
            r
        }
        None => respond(
            409,
            error_body(
                "idempotency_error",
                None,
                &format!(
                    "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {k}. Please try again later."
                ),
                None,
            ),
        ),
    }
}

async fn create(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    const PATH: &str = "/v1/checkout/sessions";
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    inner.lock().expect("lock").requests.push(FakeRequest {
        method: "POST",
        path: PATH.into(),
        idempotency_key: key.clone(),
        params: params.clone(),
    });
    if let Err((status, body)) = authenticate(&headers) {
        return respond(status, body);
    }
    let (behaviour, delay) = {
        let mut inner = inner.lock().expect("lock");
        let behaviour = inner.script.pop_front().unwrap_or(Behaviour::Accept);
        (behaviour, inner.delay)
    };
    if let Behaviour::Fail(status) = behaviour {
        return scripted_failure(status);
    }
    let print = fingerprint(PATH, &params);
    let now = Utc::now().timestamp();
    // Look up, validate and claim the key in one critical section.
    let created = {
        let mut inner = inner.lock().expect("lock");
        if let Some(k) = &key
            && let Some(saved) = inner.idempotency.get(k)
        {
            return replay(saved, k, &print);
        }
        // Validation failures are not saved under the key (Stripe saves only once execution begins).
        let session = match new_session(&params, now) {
            Ok(s) => s,
            Err((status, body)) => return respond(status, body),
        };
        let response = match behaviour {
            Behaviour::FailSaved => (
                500,
                error_body(
                    "api_error",
                    None,
                    "Sorry, something went wrong. We've already been notified of the problem.",
                    None,
                ),
            ),
            _ => {
                let body = session_json(&session).to_string();
                inner.sessions.push(session);
                (200, body)
            }
        };
        if let Some(k) = &key {
            inner.idempotency.insert(
                k.clone(),
                Saved {
                    fingerprint: print,
                    response: delay.is_none().then(|| response.clone()),
                },
            );
        }
        response
    };
    if let Some(d) = delay {
        // Stripe finishes the request even when the client hangs up (and the server then drops
        // this handler), so the key is released by a task of its own.
        let finish = {
            let (inner, created) = (inner.clone(), created.clone());
            async move {
                tokio::time::sleep(d).await;
                if let Some(k) = key
                    && let Some(saved) = inner.lock().expect("lock").idempotency.get_mut(&k)
                {
                    saved.response = Some(created);
                }
            }
        };
        let _ = tokio::spawn(finish).await;
    }
    respond(created.0, created.1)
}

async fn retrieve(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let delay = {
        let mut inner = inner.lock().expect("lock");
        inner.requests.push(FakeRequest {
            method: "GET",
            path: format!("/v1/checkout/sessions/{id}"),
            idempotency_key: None,
            params: Vec::new(),
        });
        inner.delay
    };
    if let Err((status, body)) = authenticate(&headers) {
        return respond(status, body);
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let found = inner
        .lock()
        .expect("lock")
        .sessions
        .iter()
        .find(|s| s.id == id)
        .map(session_json);
    match found {
        Some(s) => respond(200, s.to_string()),
        None => respond(
            404,
            error_body(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such checkout.session: '{id}'"),
                Some("session"),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_keys_are_echoed_redacted() {
        assert_eq!(redact("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(redact("short"), "*****");
    }

    #[test]
    fn bracket_params_are_grouped() {
        let params = vec![
            ("metadata[payment_id]".to_string(), "p".to_string()),
            (
                "payment_intent_data[metadata][company_id]".into(),
                "c".into(),
            ),
            ("mode".into(), "payment".into()),
        ];
        assert_eq!(
            bracketed(&params, "metadata"),
            BTreeMap::from([("payment_id".to_string(), "p".to_string())])
        );
        assert_eq!(
            bracketed(&params, "payment_intent_data[metadata]"),
            BTreeMap::from([("company_id".to_string(), "c".to_string())])
        );
    }
}
