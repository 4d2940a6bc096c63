//! A fake Beem: `POST /v1/send` with Basic auth (API key and secret), its JSON fields checked,
//! answered with counts (`valid`, `invalid`, `duplicates`) as Beem does; delivery reports
//! posted as JSON to a set URL after a send, with a scriptable final status per number; the
//! pull (`GET /public/v1/delivery-reports`) and the balance answered from the same records.
//! Scriptable outages (5xx, 429, a hang after recording the send, refused connections), a cap
//! per second and in flight, a settable price per segment. Every request is recorded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;

use super::traffic::{self, Traffic};
use crate::config::Secret;
use crate::providers::beem::BeemClient;

mod server;
#[cfg(test)]
mod tests;

pub const API_KEY: &str = "fake-beem-api-key";
pub const SECRET_KEY: &str = "fake-beem-secret-key";
/// The sender name registered for the fake account.
pub const SOURCE_ADDR: &str = "COPCCA";

/// What the fake does with the next send that passes the auth and load checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Answers this 5xx; nothing is sent.
    ServerError(u16),
    /// Answers 429 with this `Retry-After` (seconds); nothing is sent.
    RateLimit(u64),
    /// Sends (records the send, reports follow), then answers only after this long: the client
    /// has given up by then, and the send is ambiguous to it.
    Hang(Duration),
    /// Sends, then answers with the body cut in half (the answer is lost on the way).
    DropAnswer,
}

/// One recipient of a send the fake took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRecipient {
    pub recipient_id: String,
    pub dest_addr: String,
    /// Counted valid (sent); an invalid or duplicate one is not sent and gets no report.
    pub valid: bool,
    /// `PENDING` until its report has been posted; then its final status.
    pub status: String,
}

/// A send the fake took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSend {
    pub request_id: u64,
    pub source_addr: String,
    pub message: String,
    pub encoding: i64,
    pub segments: u32,
    pub recipients: Vec<FakeRecipient>,
}

/// A delivery report the fake posted, and the receiver's HTTP status (`None`: no connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub body: String,
    pub status: Option<u16>,
}

pub(super) struct Inner {
    script: VecDeque<Behaviour>,
    /// Every send body received, in order (refused ones too).
    requests: Vec<String>,
    sends: Vec<FakeSend>,
    refusals: Vec<String>,
    invalid: HashSet<String>,
    final_status: HashMap<String, String>,
    report_url: Option<String>,
    report_delay: Duration,
    /// How long a refused report is posted again (zero: once).
    report_retry_for: Duration,
    deliveries: Vec<Delivery>,
    pulls: Vec<(String, String)>,
    /// Every pull is answered this status (503: the report host is down; 401: the key is
    /// refused there) until cleared.
    pull_outage: Option<u16>,
    price: Decimal,
    balance: Decimal,
    next_request_id: u64,
}

pub(super) struct Shared {
    inner: Mutex<Inner>,
    traffic: Arc<Mutex<Traffic>>,
    http: reqwest::Client,
}

type St = State<Arc<Shared>>;

#[derive(Clone)]
pub struct FakeBeem {
    pub base: Url,
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
}

impl FakeBeem {
    /// Starts the fake on a free loopback port (send, pull and balance on one host).
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                script: VecDeque::new(),
                requests: Vec::new(),
                sends: Vec::new(),
                refusals: Vec::new(),
                invalid: HashSet::new(),
                final_status: HashMap::new(),
                report_url: None,
                report_delay: Duration::from_millis(20),
                report_retry_for: Duration::ZERO,
                deliveries: Vec::new(),
                pulls: Vec::new(),
                pull_outage: None,
                price: Decimal::ONE,
                balance: Decimal::new(10_000, 0),
                next_request_id: 27_104_651,
            }),
            traffic: Arc::new(Mutex::new(Traffic::default())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        });
        let app = Router::new()
            .route("/v1/send", post(server::send))
            .route("/public/v1/delivery-reports", get(server::pull))
            .route("/public/v1/vendors/balance", get(server::balance))
            .with_state(shared.clone());
        let stop = Arc::new(tokio::sync::Notify::new());
        let base = traffic::serve(app, stop.clone()).await?;
        Ok(FakeBeem { base, shared, stop })
    }

    /// A client of this fake with the right credentials and sender.
    pub fn client(&self) -> BeemClient {
        BeemClient::new(
            self.base.clone(),
            self.base.clone(),
            API_KEY,
            Secret::new(SECRET_KEY),
            SOURCE_ADDR,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("lock")
    }

    /// Queues behaviours for the next sends, in order; then it accepts again.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.lock().script.extend(behaviours);
    }

    /// Counts `dest_addr` (digits, no `+`) invalid from now on: not sent, no report.
    pub fn invalid_number(&self, dest_addr: &str) {
        self.lock().invalid.insert(dest_addr.into());
    }

    /// The final status the report of `dest_addr` will carry (by default `DELIVERED`).
    pub fn final_status(&self, dest_addr: &str, status: &str) {
        self.lock()
            .final_status
            .insert(dest_addr.into(), status.into());
    }

    /// Each sent recipient reaches its final status `delay` after its send, and its report is
    /// posted to `url` (none: nothing is posted; the pull still tells).
    pub fn report_to(&self, url: Option<&str>, delay: Duration) {
        let mut inner = self.lock();
        inner.report_url = url.map(str::to_string);
        inner.report_delay = delay;
    }

    /// Posts a report that was refused (no connection, not 2xx) again every half second for up to
    /// `limit`, as a provider retries a receiver that is down; by default each is posted once.
    pub fn retry_reports_for(&self, limit: Duration) {
        self.lock().report_retry_for = limit;
    }

    /// Credits charged per segment per valid recipient (1 by default).
    pub fn set_price(&self, price: Decimal) {
        self.lock().price = price;
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.lock().balance = balance;
    }

    pub fn balance(&self) -> Decimal {
        self.lock().balance
    }

    /// Refuses past `per_second` requests in a second or `in_flight` at once (429).
    pub fn limit(&self, per_second: Option<u32>, in_flight: Option<usize>) {
        let mut t = self.shared.traffic.lock().expect("lock");
        t.per_second = per_second;
        t.max_in_flight = in_flight;
    }

    /// (most requests answered at once, requests refused for load).
    pub fn load(&self) -> (usize, usize) {
        let t = self.shared.traffic.lock().expect("lock");
        (t.peak_in_flight, t.refused)
    }

    /// Stops the server: connections are refused from now on.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Every send body received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Every send the fake took.
    pub fn sends(&self) -> Vec<FakeSend> {
        self.lock().sends.clone()
    }

    /// Why requests were refused (auth, field checks): empty when the client is correct.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    /// Every report posted, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Answers every pull with `status` (a 5xx, or 401 as Beem refuses a key) until `None`.
    pub fn fail_pulls(&self, status: Option<u16>) {
        self.lock().pull_outage = status;
    }

    /// Every pull received: (dest_addr, request_id).
    pub fn pulls(&self) -> Vec<(String, String)> {
        self.lock().pulls.clone()
    }

    /// Waits (up to 10 s, then panics) until `n` reports have been posted.
    pub async fn wait_deliveries(&self, n: usize) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let d = self.deliveries();
            if d.len() >= n {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} reports not posted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
