//! A fake Africa's Talking: `POST /version1/messaging` with the `apiKey` header and `username`
//! checked (401 with AT's plain-text body otherwise), its form fields checked, answered 201 with
//! `SMSMessageData` naming every recipient (statusCode, cost `"KES 0.8000"` or `"0"`,
//! `messageId` `ATXid_…` or `"None"`, messageParts); delivery reports posted form-encoded to a
//! set URL after a send, with a scriptable final status per number; the user data endpoint.
//! Scriptable per-number refusals (403, 405, 406…), outages (5xx, 429, a hang after recording
//! the send, refused connections), a cap per second and in flight, a settable price per segment.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde_json::json;
use url::Url;

use super::traffic::{self, Traffic};
use crate::config::Secret;
use crate::providers::africastalking::AfricasTalkingClient;

mod server;
#[cfg(test)]
mod tests;

pub const USERNAME: &str = "copcca";
pub const API_KEY: &str = "atsk_fake0000000000000000000000000000000000000000000000000000";
/// The sender id registered for the fake account.
pub const SENDER_ID: &str = "COPCCA";

/// What the fake does with the next send that passes the auth and load checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Answers this 5xx (plain text); nothing is sent.
    ServerError(u16),
    /// Answers 429 with this `Retry-After` (seconds); nothing is sent.
    RateLimit(u64),
    /// Sends (records it, reports follow), then answers only after this long.
    Hang(Duration),
    /// Sends, then answers with the body cut in half (the answer is lost on the way).
    DropAnswer,
}

/// AT's name for a per-recipient statusCode.
pub fn status_name(code: i64) -> &'static str {
    match code {
        100 => "Processed",
        101 => "Success",
        102 => "Queued",
        401 => "RiskHold",
        402 => "InvalidSenderId",
        403 => "InvalidPhoneNumber",
        404 => "UnsupportedNumberType",
        405 => "InsufficientBalance",
        406 => "UserInBlacklist",
        407 => "CouldNotRoute",
        409 => "DoNotDisturbRejection",
        500 => "InternalServerError",
        501 => "GatewayError",
        502 => "RejectedByGateway",
        _ => "Unknown",
    }
}

/// One recipient of a send the fake took, as it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRecipient {
    pub number: String,
    pub status_code: i64,
    /// `None` for a refused recipient (answered `"None"`).
    pub message_id: Option<String>,
    pub parts: u32,
    /// The status its last report carried (none yet: `None`).
    pub reported: Option<String>,
}

/// A send the fake took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSend {
    pub params: Vec<(String, String)>,
    pub recipients: Vec<FakeRecipient>,
}

/// A report the fake posted, and the receiver's HTTP status (`None`: no connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub body: String,
    pub status: Option<u16>,
}

/// The final report of a number: its status and failureReason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalReport {
    pub status: String,
    pub failure_reason: Option<String>,
}

pub(super) struct Inner {
    script: VecDeque<Behaviour>,
    /// Every send's form, in order (refused ones too).
    requests: Vec<Vec<(String, String)>>,
    sends: Vec<FakeSend>,
    refusals: Vec<String>,
    failing: HashMap<String, i64>,
    finals: HashMap<String, FinalReport>,
    report_url: Option<String>,
    report_delay: Duration,
    deliveries: Vec<Delivery>,
    currency: String,
    price: Decimal,
    balance: Decimal,
}

pub(super) struct Shared {
    inner: Mutex<Inner>,
    traffic: Arc<Mutex<Traffic>>,
    http: reqwest::Client,
}

type St = State<Arc<Shared>>;

#[derive(Clone)]
pub struct FakeAfricasTalking {
    pub base: Url,
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
}

impl FakeAfricasTalking {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                script: VecDeque::new(),
                requests: Vec::new(),
                sends: Vec::new(),
                refusals: Vec::new(),
                failing: HashMap::new(),
                finals: HashMap::new(),
                report_url: None,
                report_delay: Duration::from_millis(20),
                deliveries: Vec::new(),
                currency: "KES".into(),
                price: Decimal::new(8, 1),
                balance: Decimal::new(1000, 0),
            }),
            traffic: Arc::new(Mutex::new(Traffic::default())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        });
        let app = Router::new()
            .route("/version1/messaging", post(server::send))
            .route("/version1/user", get(server::user))
            .with_state(shared.clone());
        let stop = Arc::new(tokio::sync::Notify::new());
        let base = traffic::serve(app, stop.clone()).await?;
        Ok(FakeAfricasTalking { base, shared, stop })
    }

    /// A client of this fake with the right credentials and the registered sender id.
    pub fn client(&self) -> AfricasTalkingClient {
        AfricasTalkingClient::new(
            self.base.clone(),
            USERNAME,
            Secret::new(API_KEY),
            Some(SENDER_ID.into()),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("lock")
    }

    /// Queues behaviours for the next sends, in order; then it accepts again.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.lock().script.extend(behaviours);
    }

    /// Answers `number` (`+2547…`) with this statusCode from now on (403, 405, 406…).
    pub fn fail_number(&self, number: &str, status_code: i64) {
        self.lock().failing.insert(number.into(), status_code);
    }

    /// The final report `number` will get (by default `Success`).
    pub fn final_report(&self, number: &str, status: &str, failure_reason: Option<&str>) {
        self.lock().finals.insert(
            number.into(),
            FinalReport {
                status: status.into(),
                failure_reason: failure_reason.map(str::to_string),
            },
        );
    }

    /// Posts each accepted recipient's report to `url`, `delay` after its send.
    pub fn report_to(&self, url: Option<&str>, delay: Duration) {
        let mut inner = self.lock();
        inner.report_url = url.map(str::to_string);
        inner.report_delay = delay;
    }

    /// The price of one segment (KES 0.8000 by default).
    pub fn set_price(&self, currency: &str, price: Decimal) {
        let mut inner = self.lock();
        inner.currency = currency.into();
        inner.price = price;
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.lock().balance = balance;
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

    pub fn requests(&self) -> Vec<Vec<(String, String)>> {
        self.lock().requests.clone()
    }

    pub fn sends(&self) -> Vec<FakeSend> {
        self.lock().sends.clone()
    }

    /// Why requests were refused (auth, field checks): empty when the client is correct.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
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
