//! A fake Vodacom Tanzania M-Pesa OpenAPI (market `vodacomTZN`, sandbox routes): `getSession/`,
//! the C2B single-stage payment, `queryTransactionStatus/` and `reversal/`. It decrypts every
//! bearer with its private key (the API key for a session, a session id for everything else),
//! checks `Origin`, the content headers and every field as the platform does, and answers in
//! the platform's shapes and HTTP statuses. Each payment's fate is scriptable (PIN entered,
//! cancelled, a timeout, INS-1, any code, a hang, what the query says later); sessions can be
//! made slow to go live or refused; every request is recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use url::Url;

use crate::config::{Secret, VodacomAccount};
use crate::providers::vodacom::{SessionStore, VodacomClient};

mod server;
#[cfg(test)]
mod tests;

use server::*;

/// The API key the fake accepts.
pub const API_KEY: &str = "fake-vodacom-api-key-6b1f0c2e";
/// The sandbox's service provider code.
pub const SERVICE_PROVIDER_CODE: &str = "000000";
pub const MARKET: &str = "vodacomTZN";
/// The fake's public key as the portal shows it: base64 DER SubjectPublicKeyInfo, 4096 bits
/// like the sandbox's. Its private half is `private_key.pem` next to this file (a test key,
/// made for the fake; it protects nothing).
pub const PUBLIC_KEY: &str = "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAvnAyxU9RU8a/pvEtS1Nz5TAagtR/QCytIMI19sh/jrJ+oLLrrxSz14wUajrNYr0SUDEYXdMKyIifnZyYG/tGFjPdxUSN3RIiLeBL7YqqEh0jFywb09w/ji3DTbM7kPogaOesr5A99b0ZydRbZzvTK7HjFG+KgUa1HesqmvlCXYgZjJf9eZBi2LilmWOPhWJFyuT0Pc0PvKisqQrjBlsZXWu7skyjtSAr8M17H/U498H6umcybGGdd7nAZqoNalkhC5OHxUItazFJTpoeiSYsMrt45UJV0JrS/3z1jet05TbTzttn6PjIcI5urAyAV94QkAaDsmWtbIQvU3l9/2b5CET8YVn9deRF0OVQm30wJhTA2Y+mQ+vzceR4C0LX+7GSCR4KL0B4YOSnmnFS4biZ62RL+HY/iSgxRGjNzPSv+y54d0dy5jJ2pKJsV0Iodfsj/ZUTD+LY28Ct+DQw1YSDda/Wi2fLaPZTUd+eaO1P4zyfv4Dq+s9a4IAGqEennBZRhz1Xbg2/+0tTQ+iSmuILL9WN1nhfD5KpKNranfvTKc+qJQ62Pn93VSYGUrA4XBcKON4axXx5cjb+vAwNAKqaXKBhAP3I71sBtHjE3EG6ZxcZ1byBJdoryKISUWNoxb9NuE1wNPjubrEhlmwRSxgBQE57Oi7OgmluA9HjLWjg9I0CAwEAAQ==";
const PRIVATE_KEY_PEM: &str = include_str!("private_key.pem");

/// What the customer (or the platform) does with one C2B payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C2bOutcome {
    /// Enters the PIN: 200 INS-0 with a transaction id; the query says `Completed`.
    PinEntered,
    /// 401 INS-5 "Transaction cancelled by customer"; the query says `Cancelled`.
    Cancelled,
    /// 401 INS-6 "Transaction Failed"; the query says `Failed`.
    Failed,
    /// 422 INS-2006 "Insufficient balance"; the query says `Failed`.
    InsufficientBalance,
    /// 408 INS-9 "Request timeout": the prompt timed out; the query says `Expired` unless
    /// [`C2bScript::then`] says otherwise (the PIN entered late).
    Timeout,
    /// 500 INS-1 "Internal Error"; the query says `Completed` unless [`C2bScript::then`] says
    /// otherwise (INS-1 has been seen masking a payment that went through).
    InternalError,
    /// 503 INS-16: overloaded, nothing recorded.
    Busy,
    /// Any status and code; nothing recorded.
    Code(u16, &'static str),
}

/// The fate of one C2B call. Build with [`C2bScript::new`] or `From<C2bOutcome>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bScript {
    pub outcome: C2bOutcome,
    /// What the status query says once the outcome has happened (overrides the outcome's).
    pub then: Option<&'static str>,
    /// Queries that say `N/A` before the final status.
    pub pending_queries: u32,
    /// Answer only after this long (the client may time out first; the outcome happens anyway).
    pub hang: Option<Duration>,
    /// Where to POST the asynchronous result after answering (none by default).
    pub result_to: Option<Url>,
}

impl C2bScript {
    pub fn new(outcome: C2bOutcome) -> Self {
        C2bScript {
            outcome,
            then: None,
            pending_queries: 0,
            hang: None,
            result_to: None,
        }
    }

    pub fn then(mut self, status: &'static str) -> Self {
        self.then = Some(status);
        self
    }

    pub fn pending_queries(mut self, n: u32) -> Self {
        self.pending_queries = n;
        self
    }

    pub fn hang(mut self, hang: Duration) -> Self {
        self.hang = Some(hang);
        self
    }

    pub fn result_to(mut self, url: Url) -> Self {
        self.result_to = Some(url);
        self
    }
}

impl From<C2bOutcome> for C2bScript {
    fn from(outcome: C2bOutcome) -> Self {
        C2bScript::new(outcome)
    }
}

/// A C2B request that passed the fake's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeC2b {
    pub amount: String,
    pub msisdn: String,
    pub third_party_conversation_id: String,
    pub reference: String,
    pub description: String,
    /// None when the script answered without a transaction.
    pub transaction_id: Option<String>,
}

/// A query that passed the checks: its `input_QueryReference` and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeQuery {
    pub reference: String,
    pub status: String,
}

/// A reversal that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReversal {
    pub transaction_id: String,
    pub amount: String,
}

/// A recorded transaction (a C2B call the platform took).
pub(super) struct Txn {
    pub transaction_id: String,
    pub conversation_id: String,
    pub third_party: String,
    pub amount: String,
    pub final_status: &'static str,
    pub pending_queries: u32,
    /// The customer's outcome has happened (after any hang).
    pub settled: bool,
    pub reversed: bool,
}

pub(super) struct FakeSession {
    pub opened: tokio::time::Instant,
    pub revoked: bool,
}

#[derive(Default)]
pub(super) struct Inner {
    pub sessions: HashMap<String, FakeSession>,
    pub session_requests: usize,
    pub live_after: Duration,
    pub script: VecDeque<C2bScript>,
    pub payments: Vec<FakeC2b>,
    pub queries: Vec<FakeQuery>,
    pub reversals: Vec<FakeReversal>,
    pub refusals: Vec<String>,
    pub results: Vec<(String, Option<u16>)>,
    pub txns: Vec<Txn>,
    pub counter: u64,
}

pub(super) struct Shared {
    pub inner: Mutex<Inner>,
    pub key: rsa::RsaPrivateKey,
    pub http: reqwest::Client,
}

#[derive(Clone)]
pub struct FakeVodacom {
    /// The API base to configure (`VODACOM_API_BASE`): `http://127.0.0.1:port/sandbox`.
    pub base: Url,
    shared: Arc<Shared>,
}

impl FakeVodacom {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        use rsa::pkcs8::DecodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(PRIVATE_KEY_PEM).expect("the fake's key");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        });
        let prefix = format!("/sandbox/ipg/v2/{MARKET}");
        let app = Router::new()
            .route(&format!("{prefix}/getSession/"), get(session))
            .route(&format!("{prefix}/c2bPayment/singleStage/"), post(c2b))
            .route(&format!("{prefix}/queryTransactionStatus/"), get(query))
            .route(&format!("{prefix}/reversal/"), put(reversal))
            .fallback(not_found)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = Url::parse(&format!("http://{}/sandbox", listener.local_addr()?))
            .expect("loopback URL");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FakeVodacom { base, shared })
    }

    /// The account the fake accepts.
    pub fn settings() -> VodacomAccount {
        VodacomAccount {
            api_key: Secret::new(API_KEY),
            public_key: PUBLIC_KEY.into(),
            service_provider_code: SERVICE_PROVIDER_CODE.into(),
            market: MARKET.into(),
        }
    }

    /// A client of this fake with the right credentials, its session kept under `prefix` in
    /// the Redis at `redis_url`, used as soon as it is opened.
    pub fn client(&self, redis_url: &str, prefix: &str) -> VodacomClient {
        let settings = Self::settings();
        let sessions = SessionStore::new(redis_url, prefix, &settings.api_key).expect("redis URL");
        VodacomClient::new(self.base.clone(), settings, sessions)
            .expect("the fake's settings are valid")
            .with_session_wait(Duration::ZERO)
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("lock")
    }

    /// Queues the fates of the next C2B calls, in order; after them the PIN is entered.
    pub fn script(&self, payments: impl IntoIterator<Item = C2bScript>) {
        self.lock().script.extend(payments);
    }

    /// Sessions opened from now on are refused (401 INS-2) until they are this old.
    pub fn sessions_live_after(&self, wait: Duration) {
        self.lock().live_after = wait;
    }

    /// Every session opened so far is refused from now on (400 INS-989).
    pub fn expire_sessions(&self) {
        for s in self.lock().sessions.values_mut() {
            s.revoked = true;
        }
    }

    /// How many `getSession/` calls came (good API key or not).
    pub fn session_requests(&self) -> usize {
        self.lock().session_requests
    }

    /// Every C2B call that passed the checks, in order.
    pub fn payments(&self) -> Vec<FakeC2b> {
        self.lock().payments.clone()
    }

    /// Every query that passed the checks, in order.
    pub fn queries(&self) -> Vec<FakeQuery> {
        self.lock().queries.clone()
    }

    /// Every reversal that passed the checks, in order.
    pub fn reversals(&self) -> Vec<FakeReversal> {
        self.lock().reversals.clone()
    }

    /// Why requests were refused (a bad bearer, Origin or field): empty when the client is right.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    /// Asynchronous results posted: (URL, the receiver's status; None if it could not connect).
    pub fn results(&self) -> Vec<(String, Option<u16>)> {
        self.lock().results.clone()
    }

    /// Posts an asynchronous result for `third_party` (a payment of ours) to `url`, as the
    /// platform would (JSON, unsigned): for late, repeated or forged results.
    pub async fn post_result(
        &self,
        url: &str,
        third_party: &str,
        transaction_id: &str,
        code: &str,
    ) -> reqwest::Result<u16> {
        post_result(&self.shared, url, third_party, transaction_id, code).await
    }
}
