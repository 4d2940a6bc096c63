//! A fake Safaricom Daraja: OAuth tokens (revocable), STK Push with Daraja's field checks and
//! Password check, STK Push Query (HTTP 500 while pending, string-typed results after), and the
//! STK callback posted to the push's CallBackURL in the real shapes. Each push's fate is
//! scriptable, its queries' failures too; every request is recorded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{NaiveDateTime, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;

use crate::config::Secret;
use crate::providers::mpesa::{DarajaClient, stk_password, stk_timestamp};

mod server;
#[cfg(test)]
mod tests;

use server::*;

pub const CONSUMER_KEY: &str = "fake-daraja-consumer-key";
pub const CONSUMER_SECRET: &str = "fake-daraja-consumer-secret";
/// Safaricom's public sandbox paybill and passkey.
pub const SHORTCODE: &str = "174379";
pub const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

/// What the customer does with the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Enters the PIN and pays: ResultCode 0 with CallbackMetadata.
    Paid,
    /// 1032 "Request cancelled by user".
    Cancelled,
    /// 2001 "The initiator information is invalid."
    WrongPin,
    /// 1037 "DS timeout user cannot be reached".
    Timeout,
    /// Any other ResultCode.
    Fail(i64),
}

impl PushOutcome {
    fn result(self) -> (i64, &'static str) {
        match self {
            PushOutcome::Paid => (0, "The service request is processed successfully."),
            PushOutcome::Cancelled => (1032, "Request cancelled by user"),
            PushOutcome::WrongPin => (2001, "The initiator information is invalid."),
            PushOutcome::Timeout => (1037, "DS timeout user cannot be reached"),
            PushOutcome::Fail(1) => (1, "The balance is insufficient for the transaction."),
            PushOutcome::Fail(1019) => (1019, "Transaction has expired"),
            PushOutcome::Fail(code) => (code, "Transaction failed"),
        }
    }
}

/// A synchronous Daraja error answering the push (no prompt is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncError {
    pub http: u16,
    pub code: &'static str,
    pub message: &'static str,
}

impl SyncError {
    pub const INVALID_PHONE: SyncError = SyncError {
        http: 400,
        code: "400.002.02",
        message: "Bad Request - Invalid PhoneNumber",
    };
    pub const SPIKE_ARREST: SyncError = SyncError {
        http: 500,
        code: "500.003.02",
        message: "Spike Arrest Violation",
    };
    pub const QUOTA: SyncError = SyncError {
        http: 500,
        code: "500.003.03",
        message: "Quota Violation",
    };
    pub const SUBSCRIBER_LOCKED: SyncError = SyncError {
        http: 500,
        code: "500.001.1001",
        message: "Unable to lock subscriber, a transaction is already in process for the current subscriber",
    };
}

/// How the STK Push Query about a push fails (see [`PushScript::failing_queries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFault {
    /// Daraja's error body with this HTTP status (5xx: Daraja cannot take the query now).
    Error(SyncError),
    /// No answer for this long (the client's timeout fires first).
    Hang(Duration),
}

/// The fate of one push. Build with [`PushScript::new`] (or `From<PushOutcome>`,
/// [`PushScript::sync_error`]) and the option methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushScript {
    pub outcome: PushOutcome,
    /// How long after the push the customer's outcome happens (and the callback leaves).
    pub delay: Duration,
    /// Whether the callback is posted at all (the query answers either way).
    pub callback: bool,
    /// Pending answers the query gives before the final one (besides pending until `delay`).
    pub pending_queries: u32,
    /// Answer the push with this error instead of accepting it.
    pub sync_error: Option<SyncError>,
    /// The Amount the callback reports, when it should differ from the pushed amount.
    pub callback_amount: Option<Decimal>,
    /// Accept the push but answer only after this long (the client times out first).
    pub hang: Option<Duration>,
    /// Queries that fail with `query_fault` before any answers as usual.
    pub failing_queries: u32,
    pub query_fault: Option<QueryFault>,
}

/// After the push answer has gone, so the service has stored the CheckoutRequestID.
const DEFAULT_DELAY: Duration = Duration::from_millis(100);

impl PushScript {
    pub fn new(outcome: PushOutcome) -> Self {
        PushScript {
            outcome,
            delay: DEFAULT_DELAY,
            callback: true,
            pending_queries: 0,
            sync_error: None,
            callback_amount: None,
            hang: None,
            failing_queries: 0,
            query_fault: None,
        }
    }

    pub fn sync_error(error: SyncError) -> Self {
        PushScript {
            sync_error: Some(error),
            ..PushScript::new(PushOutcome::Paid)
        }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The outcome happens but its callback never arrives.
    pub fn no_callback(mut self) -> Self {
        self.callback = false;
        self
    }

    pub fn pending_queries(mut self, n: u32) -> Self {
        self.pending_queries = n;
        self
    }

    pub fn callback_amount(mut self, amount: Decimal) -> Self {
        self.callback_amount = Some(amount);
        self
    }

    pub fn hang(mut self, hang: Duration) -> Self {
        self.hang = Some(hang);
        self
    }

    /// The first `n` queries about this push fail with `fault` (whatever the customer did);
    /// the ones after answer as usual (still processing, then the outcome).
    pub fn failing_queries(mut self, n: u32, fault: QueryFault) -> Self {
        self.failing_queries = n;
        self.query_fault = Some(fault);
        self
    }
}

impl From<PushOutcome> for PushScript {
    fn from(outcome: PushOutcome) -> Self {
        PushScript::new(outcome)
    }
}

/// A push request that passed the fake's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePush {
    pub amount: i64,
    pub phone: u64,
    pub account_reference: String,
    pub transaction_desc: String,
    pub callback_url: String,
    pub timestamp: String,
    /// None when a scripted sync error answered it.
    pub checkout_request_id: Option<String>,
    pub merchant_request_id: Option<String>,
}

/// A callback the fake posted, and the receiver's HTTP status (None: it could not connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub checkout_request_id: String,
    pub url: String,
    pub status: Option<u16>,
}

struct Txn {
    merchant_request_id: String,
    script: PushScript,
    phone: u64,
    amount: i64,
    callback_url: String,
    pending_queries: u32,
    failing_queries: u32,
    /// The customer's outcome has happened; the callback body is fixed from then on.
    callback_body: Option<String>,
    settled: bool,
}

#[derive(Default)]
struct Inner {
    tokens: HashSet<String>,
    token_requests: usize,
    script: VecDeque<PushScript>,
    pushes: Vec<FakePush>,
    queries: Vec<String>,
    refusals: Vec<String>,
    deliveries: Vec<Delivery>,
    txns: HashMap<String, Txn>,
    receipts: HashSet<String>,
    counter: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    http: reqwest::Client,
}

type St = State<Arc<Shared>>;

#[derive(Clone)]
pub struct FakeDaraja {
    pub base: Url,
    shared: Arc<Shared>,
}

impl FakeDaraja {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        });
        let app = Router::new()
            .route("/oauth/v1/generate", get(generate))
            .route("/mpesa/stkpush/v1/processrequest", post(push))
            .route("/mpesa/stkpushquery/v1/query", post(query))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = Url::parse(&format!("http://{}", listener.local_addr()?)).expect("loopback URL");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FakeDaraja { base, shared })
    }

    /// A client of this fake with the right credentials.
    pub fn client(&self) -> DarajaClient {
        DarajaClient::new(
            self.base.clone(),
            Secret::new(CONSUMER_KEY),
            Secret::new(CONSUMER_SECRET),
            SHORTCODE.into(),
            Secret::new(PASSKEY),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("lock")
    }

    /// Queues the fates of the next accepted-looking pushes, in order; then pushes are paid.
    pub fn script(&self, pushes: impl IntoIterator<Item = PushScript>) {
        self.lock().script.extend(pushes);
    }

    /// Invalidates every issued token: the next call with one gets 404 404.001.03.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// How many token requests came (good credentials or not).
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// Every push that passed the checks, in order.
    pub fn pushes(&self) -> Vec<FakePush> {
        self.lock().pushes.clone()
    }

    /// The CheckoutRequestID of every query, in order.
    pub fn queries(&self) -> Vec<String> {
        self.lock().queries.clone()
    }

    /// Why requests were refused (bad token, invalid field): empty when the client is correct.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    /// Every callback posted (scripted or replayed), in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// The callback body of a push whose outcome has happened.
    pub fn callback_body(&self, checkout_request_id: &str) -> Option<String> {
        self.lock()
            .txns
            .get(checkout_request_id)
            .and_then(|t| t.callback_body.clone())
    }

    /// Waits (up to 10 s, then panics) until the push's outcome has happened and its callback,
    /// if any, has been answered.
    pub async fn wait_settled(&self, checkout_request_id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self
                .lock()
                .txns
                .get(checkout_request_id)
                .is_some_and(|t| t.settled)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "push {checkout_request_id} did not settle"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Posts the push's callback again, byte for byte, to its CallBackURL (even when the script
    /// said no callback: a late delivery). Panics before the outcome has happened.
    pub async fn replay_callback(&self, checkout_request_id: &str) -> reqwest::Result<u16> {
        let (url, body) = {
            let inner = self.lock();
            let txn = inner
                .txns
                .get(checkout_request_id)
                .expect("a push the fake accepted");
            (
                txn.callback_url.clone(),
                txn.callback_body.clone().expect("the outcome has happened"),
            )
        };
        let status = deliver(&self.shared, checkout_request_id, &url, body).await;
        status.map_err(|e| *e)
    }

    /// Posts any body to any URL as Daraja would (JSON, no auth): for forged callbacks.
    pub async fn post_callback(&self, url: &str, body: &str) -> reqwest::Result<u16> {
        let response = self
            .shared
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}
