//! A fake Stripe: the Checkout Sessions API (Bearer key, Stripe's bracket form, required params,
//! Stripe's error bodies, `Idempotency-Key` replay / mismatch / in-progress conflict), scripted
//! 5xx / 429 and slow answers, scripted errors on session reads, a record of every request, and
//! test drivers that move a session along (paid, unpaid, async outcome, expired, refunded) and
//! post the signed event Stripe would send to the service's webhook URL.
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

mod disputes;
mod server;
#[cfg(test)]
mod tests;

use server::*;

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

/// A dispute the cardholder's bank opened on a session's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDispute {
    pub id: String,
    pub session: String,
    pub amount: i64,
    pub reason: String,
    pub status: String,
    pub created: i64,
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
    /// Statuses the next session reads answer with, in order.
    retrieve_script: VecDeque<u16>,
    delay: Option<Duration>,
    requests: Vec<FakeRequest>,
    sessions: Vec<FakeSession>,
    idempotency: HashMap<String, Saved>,
    /// `POST /v1/refunds` answers by `Idempotency-Key`.
    refunds: HashMap<String, String>,
    events: Vec<StoredEvent>,
    webhook_url: Option<Url>,
    disputes: Vec<FakeDispute>,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = Url::parse(&format!("http://{}", listener.local_addr()?)).expect("loopback URL");
        let fake = FakeStripe {
            base,
            inner: Shared::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create))
            .route("/v1/checkout/sessions/{id}", get(retrieve))
            .with_state(fake.inner.clone())
            .merge(
                Router::new()
                    .route(DRIVER_COMPLETE, post(drive_complete))
                    .route("/v1/refunds", post(create_refund))
                    .with_state(fake.clone()),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(fake)
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

    /// The next `n` session reads (`GET /v1/checkout/sessions/{id}`) answer `status` with Stripe's
    /// error body instead of the session (500 `api_error`, 429 `rate_limit`, 401 an expired API
    /// key, 404 `resource_missing`, …); then they answer as usual. The session is not changed.
    pub fn fail_next_retrieves(&self, n: usize, status: u16) {
        self.lock()
            .retrieve_script
            .extend(std::iter::repeat_n(status, n));
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

/// The one test driver served over HTTP, for tests in another process than the fake's (the
/// TypeScript client's, against `copcca-sms fakes`): the customer pays on the hosted checkout page
/// of session `{id}`, as [`FakeStripe::complete`] with `paid`, and the fake posts the signed
/// `checkout.session.completed` to its webhook URL. Not part of Stripe's API. Answers the
/// delivery (`{event_id, status}`: what the webhook answered), 404 for an unknown session, 409
/// for one that is no longer open.
pub const DRIVER_COMPLETE: &str = "/_fake/checkout/sessions/{id}/pay";

async fn drive_complete(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Response {
    match fake.session(&id) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(s) if s.status != "open" => StatusCode::CONFLICT.into_response(),
        Some(_) => {
            let delivery = fake.complete(&id, true).await;
            axum::Json(json!({"event_id": delivery.event_id, "status": delivery.status}))
                .into_response()
        }
    }
}
