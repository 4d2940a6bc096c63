//! A fake Safaricom Daraja: OAuth tokens (revocable), STK Push with Daraja's field checks and
//! Password check, STK Push Query (HTTP 500 while pending, string-typed results after), and the
//! STK callback posted to the push's CallBackURL in the real shapes. Each push's fate is
//! scriptable; every request is recorded.

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

/// Posts a callback and records it.
async fn deliver(
    shared: &Shared,
    checkout_request_id: &str,
    url: &str,
    body: String,
) -> Result<u16, Box<reqwest::Error>> {
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16());
    shared
        .inner
        .lock()
        .expect("lock")
        .deliveries
        .push(Delivery {
            checkout_request_id: checkout_request_id.into(),
            url: url.into(),
            status: result.as_ref().ok().copied(),
        });
    result.map_err(Box::new)
}

fn fault(status: u16, code: &str, message: &str) -> Response {
    let mut rng = rand::rng();
    let request_id = format!(
        "{}-{}-1",
        rng.random_range(10000..99999),
        rng.random_range(1_000_000..99_999_999)
    );
    let body = json!({"requestId": request_id, "errorCode": code, "errorMessage": message});
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

fn refuse(shared: &Shared, status: u16, code: &str, message: &str) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .refusals
        .push(format!("{code} {message}"));
    fault(status, code, message)
}

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

async fn generate(
    State(shared): St,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    shared.inner.lock().expect("lock").token_requests += 1;
    if q.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse(&shared, 400, "400.008.02", "Invalid grant type passed");
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{CONSUMER_KEY}:{CONSUMER_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return refuse(&shared, 400, "400.008.01", "Invalid Authentication passed");
    }
    let token = random_text(28, ALNUM);
    shared
        .inner
        .lock()
        .expect("lock")
        .tokens
        .insert(token.clone());
    Json(json!({"access_token": token, "expires_in": "3599"})).into_response()
}

fn bearer_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| shared.inner.lock().expect("lock").tokens.contains(t))
}

/// The fields Daraja checks on a push or query. The fake answers a wrong Password with
/// 400.002.02 so a client bug fails loudly (real Daraja may say 500.001.1001 "Wrong credentials").
fn check_password(body: &Value) -> Result<String, String> {
    let shortcode = text_or_number(&body["BusinessShortCode"]);
    if shortcode.as_deref() != Some(SHORTCODE) {
        return Err("BusinessShortCode".into());
    }
    let timestamp = body["Timestamp"].as_str().unwrap_or_default();
    if timestamp.len() != 14
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
        || NaiveDateTime::parse_from_str(timestamp, "%Y%m%d%H%M%S").is_err()
    {
        return Err("Timestamp".into());
    }
    if body["Password"].as_str() != Some(stk_password(SHORTCODE, PASSKEY, timestamp).as_str()) {
        return Err("Password".into());
    }
    Ok(timestamp.to_string())
}

fn text_or_number(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A 12-digit Kenyan or Tanzanian MSISDN as a JSON number.
fn msisdn(v: &Value) -> Option<u64> {
    let n = v.as_u64()?;
    let s = n.to_string();
    (s.len() == 12 && (s.starts_with("254") || s.starts_with("255"))).then_some(n)
}

fn bounded_text(v: &Value, max: usize) -> Option<String> {
    let s = v.as_str()?;
    (!s.is_empty() && s.chars().count() <= max).then(|| s.to_string())
}

struct ValidPush {
    amount: i64,
    phone: u64,
    account_reference: String,
    transaction_desc: String,
    callback_url: String,
    timestamp: String,
}

fn validate_push(body: &Value) -> Result<ValidPush, String> {
    let timestamp = check_password(body)?;
    if !matches!(
        body["TransactionType"].as_str(),
        Some("CustomerPayBillOnline" | "CustomerBuyGoodsOnline")
    ) {
        return Err("TransactionType".into());
    }
    let amount = body["Amount"]
        .as_i64()
        .filter(|a| *a >= 1)
        .ok_or("Amount")?;
    let party_a = msisdn(&body["PartyA"]).ok_or("PartyA")?;
    if text_or_number(&body["PartyB"]).as_deref() != Some(SHORTCODE) {
        return Err("PartyB".into());
    }
    let phone = msisdn(&body["PhoneNumber"]).ok_or("PhoneNumber")?;
    if party_a != phone {
        return Err("PartyA".into());
    }
    let callback_url = body["CallBackURL"]
        .as_str()
        .and_then(|s| Url::parse(s).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("CallBackURL")?;
    let account_reference =
        bounded_text(&body["AccountReference"], 12).ok_or("AccountReference")?;
    let transaction_desc = bounded_text(&body["TransactionDesc"], 13).ok_or("TransactionDesc")?;
    Ok(ValidPush {
        amount,
        phone,
        account_reference,
        transaction_desc,
        callback_url: callback_url.to_string(),
        timestamp,
    })
}

async fn push(State(shared): St, headers: HeaderMap, body: String) -> Response {
    if !bearer_ok(&shared, &headers) {
        return refuse(&shared, 404, "404.001.03", "Invalid Access Token");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(&shared, 400, "400.002.02", "Bad Request - Invalid JSON");
    };
    let valid = match validate_push(&body) {
        Ok(v) => v,
        Err(field) => {
            return refuse(
                &shared,
                400,
                "400.002.02",
                &format!("Bad Request - Invalid {field}"),
            );
        }
    };
    let mut record = FakePush {
        amount: valid.amount,
        phone: valid.phone,
        account_reference: valid.account_reference,
        transaction_desc: valid.transaction_desc,
        callback_url: valid.callback_url.clone(),
        timestamp: valid.timestamp,
        checkout_request_id: None,
        merchant_request_id: None,
    };
    let (script, n) = {
        let mut inner = shared.inner.lock().expect("lock");
        inner.counter += 1;
        (
            inner
                .script
                .pop_front()
                .unwrap_or_else(|| PushScript::new(PushOutcome::Paid)),
            inner.counter,
        )
    };
    if let Some(e) = script.sync_error {
        shared.inner.lock().expect("lock").pushes.push(record);
        return fault(e.http, e.code, e.message);
    }
    let now = Utc::now().with_timezone(&chrono_tz::Africa::Nairobi);
    let checkout = format!("ws_CO_{}{:09}", now.format("%d%m%Y%H%M%S%3f"), n);
    let merchant = format!(
        "{}-{}-{}",
        rand::rng().random_range(10000..99999),
        rand::rng().random_range(1_000_000..99_999_999),
        n
    );
    record.checkout_request_id = Some(checkout.clone());
    record.merchant_request_id = Some(merchant.clone());
    {
        let mut inner = shared.inner.lock().expect("lock");
        inner.pushes.push(record);
        inner.txns.insert(
            checkout.clone(),
            Txn {
                merchant_request_id: merchant.clone(),
                pending_queries: script.pending_queries,
                script: script.clone(),
                phone: valid.phone,
                amount: valid.amount,
                callback_url: valid.callback_url,
                callback_body: None,
                settled: false,
            },
        );
    }
    tokio::spawn(settle(shared.clone(), checkout.clone(), script.delay));
    if let Some(hang) = script.hang {
        tokio::time::sleep(hang).await;
    }
    Json(json!({
        "MerchantRequestID": merchant,
        "CheckoutRequestID": checkout,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }))
    .into_response()
}

/// The customer's outcome after `delay`: fixes the callback body and posts it if scripted.
async fn settle(shared: Arc<Shared>, checkout: String, delay: Duration) {
    tokio::time::sleep(delay).await;
    let (url, body, send) = {
        let mut inner = shared.inner.lock().expect("lock");
        let receipt = loop {
            let r = format!(
                "{}{}",
                random_text(1, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                random_text(9, UPPER_DIGITS)
            );
            if inner.receipts.insert(r.clone()) {
                break r;
            }
        };
        let txn = inner.txns.get_mut(&checkout).expect("txn");
        let body = callback_json(txn, &checkout, &receipt);
        txn.callback_body = Some(body.clone());
        (txn.callback_url.clone(), body, txn.script.callback)
    };
    if send {
        // A refused or failed delivery is recorded; Daraja does not retry.
        let _ = deliver(&shared, &checkout, &url, body).await;
    }
    if let Some(txn) = shared.inner.lock().expect("lock").txns.get_mut(&checkout) {
        txn.settled = true;
    }
}

/// The callback in Daraja's shapes, written by hand so Amount keeps its `1.00` form.
fn callback_json(txn: &Txn, checkout: &str, receipt: &str) -> String {
    let (code, desc) = txn.script.outcome.result();
    let head = format!(
        r#""MerchantRequestID":{},"CheckoutRequestID":{},"ResultCode":{code},"ResultDesc":{}"#,
        json!(txn.merchant_request_id),
        json!(checkout),
        json!(desc)
    );
    if code != 0 {
        return format!(r#"{{"Body":{{"stkCallback":{{{head}}}}}}}"#);
    }
    let mut amount = txn
        .script
        .callback_amount
        .unwrap_or_else(|| Decimal::from(txn.amount))
        .round_dp(2);
    amount.rescale(2);
    let date = stk_timestamp(Utc::now());
    format!(
        r#"{{"Body":{{"stkCallback":{{{head},"CallbackMetadata":{{"Item":[{{"Name":"Amount","Value":{amount}}},{{"Name":"MpesaReceiptNumber","Value":"{receipt}"}},{{"Name":"Balance"}},{{"Name":"TransactionDate","Value":{date}}},{{"Name":"PhoneNumber","Value":{phone}}}]}}}}}}}}"#,
        phone = txn.phone
    )
}

async fn query(State(shared): St, headers: HeaderMap, body: String) -> Response {
    if !bearer_ok(&shared, &headers) {
        return refuse(&shared, 404, "404.001.03", "Invalid Access Token");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(&shared, 400, "400.002.02", "Bad Request - Invalid JSON");
    };
    if let Err(field) = check_password(&body) {
        return refuse(
            &shared,
            400,
            "400.002.02",
            &format!("Bad Request - Invalid {field}"),
        );
    }
    let checkout = body["CheckoutRequestID"].as_str().unwrap_or_default();
    let mut inner = shared.inner.lock().expect("lock");
    inner.queries.push(checkout.to_string());
    let Some(txn) = inner.txns.get_mut(checkout) else {
        drop(inner);
        return refuse(
            &shared,
            400,
            "400.002.02",
            "Bad Request - Invalid CheckoutRequestID",
        );
    };
    if txn.pending_queries > 0 || txn.callback_body.is_none() {
        txn.pending_queries = txn.pending_queries.saturating_sub(1);
        return fault(500, "500.001.1001", "The transaction is being processed");
    }
    let (code, desc) = txn.script.outcome.result();
    Json(json!({
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": checkout,
        "ResultCode": code.to_string(),
        "ResultDesc": desc,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::mpesa::StkCallback;

    fn txn(outcome: PushOutcome, amount: Option<Decimal>) -> Txn {
        let mut script = PushScript::new(outcome);
        script.callback_amount = amount;
        Txn {
            merchant_request_id: "29115-34620561-1".into(),
            script,
            phone: 254708374149,
            amount: 1,
            callback_url: "http://127.0.0.1:1/cb".into(),
            pending_queries: 0,
            callback_body: None,
            settled: false,
        }
    }

    #[test]
    fn the_success_callback_has_the_real_shape() {
        let body = callback_json(&txn(PushOutcome::Paid, None), "ws_CO_1", "QKH94M1Z11");
        assert!(body.contains(r#"{"Name":"Amount","Value":1.00}"#), "{body}");
        assert!(body.contains(r#"{"Name":"Balance"}"#), "{body}");
        assert!(body.contains(r#""ResultCode":0,"#), "{body}");
        let cb = StkCallback::parse(body.as_bytes()).unwrap();
        assert_eq!(cb.amount, Some(Decimal::ONE));
        assert_eq!(cb.receipt.as_deref(), Some("QKH94M1Z11"));
        assert_eq!(cb.phone.as_deref(), Some("254708374149"));
        assert_eq!(cb.transaction_date.map(|d| d.len()), Some(14));
    }

    #[test]
    fn a_failure_callback_has_no_metadata_and_an_amount_can_be_overridden() {
        let body = callback_json(&txn(PushOutcome::WrongPin, None), "ws_CO_1", "R");
        assert!(!body.contains("CallbackMetadata"), "{body}");
        assert_eq!(
            StkCallback::parse(body.as_bytes()).unwrap().result_code,
            2001
        );
        let body = callback_json(
            &txn(PushOutcome::Paid, Some(Decimal::new(5, 1))),
            "ws_CO_1",
            "R",
        );
        assert!(body.contains(r#""Value":0.50}"#), "{body}");
    }
}
