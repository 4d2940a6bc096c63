//! The OpenAPI client (PROTOCOLS.md section 8): `getSession/`, the C2B single-stage payment and
//! `queryTransactionStatus/`, with the session refreshed once when the platform refuses it.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;

use super::answers::{C2bAccepted, QueryAnswer, parse_c2b, parse_query, session_refused, text_of};
use super::bearer::BearerKey;
use super::error::VodacomError;
use super::session::{Session, SessionStore};
use crate::config::{Secret, VodacomAccount};

/// `input_TransactionReference` is at most 20 characters (INS-17 beyond).
pub const REFERENCE_MAX: usize = 20;
/// The portal's sample waits this long before using a new session.
const SESSION_WAIT: Duration = Duration::from_secs(30);
/// A session older than this is replaced ahead of need (no lifetime is documented).
const SESSION_MAX_AGE: Duration = Duration::from_secs(3600);
/// In Tanzania the C2B call holds until the customer enters the PIN or the prompt times out.
const PAYMENT_TIMEOUT: Duration = Duration::from_secs(120);
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `Origin` must match the application's setting in the portal.
const ORIGIN_ANY: &str = "*";

/// A Vodacom OpenAPI client for one API key and one service provider code. Clones share the
/// HTTP pools and the session store.
#[derive(Clone)]
pub struct VodacomClient {
    payments: reqwest::Client,
    queries: reqwest::Client,
    /// `https://openapi.m-pesa.com/openapi` (or `/sandbox`): routes are `{base}/ipg/v2/{market}/…/`.
    base: Url,
    market: String,
    country: &'static str,
    currency: &'static str,
    api_key: Secret,
    key: BearerKey,
    provider_code: String,
    sessions: SessionStore,
    session_wait: Duration,
}

impl std::fmt::Debug for VodacomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodacomClient")
            .field("base", &self.base.as_str())
            .field("market", &self.market)
            .field("service_provider_code", &self.provider_code)
            .finish_non_exhaustive()
    }
}

/// One C2B single-stage payment: prompt `msisdn` to pay `amount` TZS.
#[derive(Debug, Clone, Copy)]
pub struct C2bPayment<'a> {
    /// Whole shillings.
    pub amount: Decimal,
    /// `255…`, digits only.
    pub msisdn: &'a str,
    /// Ours, unique per payment (the payment id, 32 hex digits): the status query finds the
    /// payment by it even when this call's answer was lost.
    pub third_party_conversation_id: &'a str,
    /// At most [`REFERENCE_MAX`] characters, no spaces.
    pub reference: &'a str,
    pub description: &'a str,
}

/// The call a request is, which decides what an unclear answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Payment,
    Query,
}

impl VodacomClient {
    /// A client of the API under `base` (see [`super::DEFAULT_API_BASE`]; a base without a path
    /// means production's `/openapi`).
    pub fn new(
        base: Url,
        settings: VodacomAccount,
        sessions: SessionStore,
    ) -> Result<Self, String> {
        let key = BearerKey::parse(&settings.public_key).map_err(|e| e.to_string())?;
        let (country, currency) = market_country(&settings.market)?;
        let code = settings.service_provider_code.trim();
        if !(4..=12).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("the service provider code must be 4-12 letters or digits".into());
        }
        let mut base = base;
        if base.path() == "/" {
            base.set_path("/openapi");
        }
        Ok(VodacomClient {
            payments: http_client(PAYMENT_TIMEOUT),
            queries: http_client(QUERY_TIMEOUT),
            base,
            market: settings.market.trim().to_string(),
            country,
            currency,
            api_key: settings.api_key,
            key,
            provider_code: code.to_string(),
            sessions,
            session_wait: SESSION_WAIT,
        })
    }

    /// How long a new session is left before it is used (30 s; tests shorten it).
    pub fn with_session_wait(mut self, wait: Duration) -> Self {
        self.session_wait = wait;
        self
    }

    /// Shorter timeouts for the payment call and the query (tests that make Vodacom hang).
    pub fn with_timeouts(mut self, payment: Duration, query: Duration) -> Self {
        self.payments = http_client(payment);
        self.queries = http_client(query);
        self
    }

    /// The currency this market's wallets pay in (`TZS`).
    pub fn currency(&self) -> &'static str {
        self.currency
    }

    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Opens the session if there is none, and replaces one older than an hour ahead of need
    /// (the old one is used until the new one is live). Called by the reconciler and the purchase
    /// job, never by a customer's request.
    pub async fn warm(&self) -> Result<(), VodacomError> {
        match self.sessions.load().await? {
            Some(s) if s.age() < SESSION_MAX_AGE => Ok(()),
            Some(s) => {
                let _opening = self.sessions.opening().await;
                match self.sessions.load().await? {
                    Some(now) if now != s => Ok(()),
                    _ => self.open(Some(s.id)).await.map(|_| ()),
                }
            }
            None => match self.session().await {
                Ok(_) | Err(VodacomError::SessionNotLive(_)) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// Opens a new session now, which checks the API key and the public key (an operator saving
    /// them); the current session stays in use until the new one is live.
    pub async fn check(&self) -> Result<(), VodacomError> {
        let _opening = self.sessions.opening().await;
        let current = self.sessions.load().await?.map(|s| s.id);
        self.open(current).await.map(|_| ())
    }

    /// A live session is there to pay with (opened now if there is none): call before a
    /// payment, so that a session not live yet delays the payment instead of failing it.
    pub async fn ready(&self) -> Result<(), VodacomError> {
        self.session().await.map(|_| ())
    }

    /// `POST c2bPayment/singleStage/`: prompts the customer and holds until the PIN is entered
    /// or the prompt times out.
    ///
    /// Ok only for INS-0 with a transaction id. [`VodacomError::Unknown`] (INS-1, INS-9, INS-10,
    /// INS-23, a timeout): query, and never call this again for the payment.
    pub async fn c2b(&self, payment: &C2bPayment<'_>) -> Result<C2bAccepted, VodacomError> {
        let body = self.c2b_body(payment)?;
        timed("c2b", async {
            let (status, text) = self
                .call(
                    Call::Payment,
                    reqwest::Method::POST,
                    "c2bPayment/singleStage/",
                    &[],
                    Some(&body),
                )
                .await?;
            parse_c2b(status, &text)
        })
        .await
    }

    /// `PUT reversal/`: gives the customer back `amount` of the C2B transaction `transaction_id`.
    /// An operator's decision, never automatic. Ok with the reversal's own transaction id;
    /// [`VodacomError::Unknown`] when it may or may not have happened (check with Vodacom before
    /// asking again).
    pub async fn reversal(
        &self,
        transaction_id: &str,
        amount: Decimal,
        third_party_conversation_id: &str,
    ) -> Result<C2bAccepted, VodacomError> {
        if amount <= Decimal::ZERO || !amount.fract().is_zero() {
            return Err(VodacomError::Invalid(format!(
                "the amount {amount} is not a whole number of shillings"
            )));
        }
        let body = json!({
            "input_ReversalAmount": amount.trunc().normalize().to_string(),
            "input_Country": self.country,
            "input_ServiceProviderCode": self.provider_code,
            "input_ThirdPartyConversationID": third_party_conversation_id,
            "input_TransactionID": transaction_id,
        });
        timed("reversal", async {
            let (status, text) = self
                .call(
                    Call::Payment,
                    reqwest::Method::PUT,
                    "reversal/",
                    &[],
                    Some(&body),
                )
                .await?;
            parse_c2b(status, &text)
        })
        .await
    }

    /// `GET queryTransactionStatus/`: where the transaction named by `reference` (its
    /// TransactionID, ConversationID or our ThirdPartyConversationID) stands. Safe to repeat.
    pub async fn query(&self, reference: &str) -> Result<QueryAnswer, VodacomError> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let params = [
            ("input_QueryReference", reference),
            ("input_ServiceProviderCode", self.provider_code.as_str()),
            ("input_ThirdPartyConversationID", fresh.as_str()),
            ("input_Country", self.country),
        ];
        timed("query", async {
            let (status, text) = self
                .call(
                    Call::Query,
                    reqwest::Method::GET,
                    "queryTransactionStatus/",
                    &params,
                    None,
                )
                .await?;
            parse_query(status, &text)
        })
        .await
    }

    /// Opens a new session with `getSession/` (the API key as bearer) and stores it.
    /// `replacing`: the session it replaces ahead of need, used until this one is live.
    async fn open(&self, replacing: Option<String>) -> Result<Session, VodacomError> {
        let bearer = self
            .key
            .encrypt(self.api_key.expose())
            .map_err(|e| VodacomError::Session(e.to_string()))?;
        let url = self.route("getSession/");
        let response = self
            .queries
            .get(url)
            .headers(headers(&bearer))
            .send()
            .await
            .map_err(|e| VodacomError::Session(format!("getSession: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| VodacomError::Session(format!("getSession: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = text_of(&body["output_ResponseCode"]);
        let id = text_of(&body["output_SessionID"]);
        if status != 200 || code != "INS-0" || id.is_empty() {
            let desc = text_of(&body["output_ResponseDesc"]);
            tracing::error!(
                status,
                code,
                desc,
                "vodacom refused to open a session; check VODACOM_API_KEY and VODACOM_PUBLIC_KEY"
            );
            return Err(VodacomError::Session(format!(
                "getSession: HTTP {status} {code}: {desc}"
            )));
        }
        let session = Session {
            id,
            opened_ms: chrono::Utc::now().timestamp_millis(),
            previous: replacing,
        };
        self.sessions.save(&session).await?;
        tracing::info!(market = %self.market, "vodacom session opened");
        Ok(session)
    }

    /// The session id to use now, opening a session when there is none.
    async fn session(&self) -> Result<String, VodacomError> {
        if let Some(s) = self.sessions.load().await? {
            return s.usable(self.session_wait);
        }
        let _opening = self.sessions.opening().await;
        if let Some(s) = self.sessions.load().await? {
            return s.usable(self.session_wait);
        }
        self.open(None).await?.usable(self.session_wait)
    }

    /// The session was refused: open a new one, unless another caller already did.
    async fn refresh(&self, refused: &str) -> Result<String, VodacomError> {
        let _opening = self.sessions.opening().await;
        if let Some(s) = self.sessions.load().await?
            && s.id != refused
            && s.previous.as_deref() != Some(refused)
        {
            return s.usable(self.session_wait);
        }
        self.open(None).await?.usable(self.session_wait)
    }

    /// Sends one call with the session; when the platform refuses the session (HTTP 401,
    /// INS-2, INS-989), opens a new one and sends the call once more (nothing was done with a
    /// refused call). Returns the status and the body text.
    async fn call(
        &self,
        call: Call,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, String), VodacomError> {
        let session = self.session().await?;
        let (status, text) = self
            .send(call, &method, path, params, body, &session)
            .await?;
        if !session_refused(status, &text) {
            return Ok((status, text));
        }
        tracing::warn!(status, "vodacom refused the session; opening a new one");
        let session = self.refresh(&session).await?;
        self.send(call, &method, path, params, body, &session).await
    }

    async fn send(
        &self,
        call: Call,
        method: &reqwest::Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
        session: &str,
    ) -> Result<(u16, String), VodacomError> {
        let bearer = self
            .key
            .encrypt(session)
            .map_err(|e| VodacomError::Session(e.to_string()))?;
        let http = match call {
            Call::Payment => &self.payments,
            Call::Query => &self.queries,
        };
        let mut url = self.route(path);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        let mut request = http.request(method.clone(), url).headers(headers(&bearer));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.map_err(|e| unanswered(call, &e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| unanswered(call, &e))?;
        Ok((status, text))
    }

    fn route(&self, call: &str) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/ipg/v2/{}/{call}",
            self.base.path().trim_end_matches('/'),
            self.market
        );
        url.set_path(&path);
        url
    }

    /// The C2B body; refuses what the platform would (INS-14/15/17/2051) before sending.
    fn c2b_body(&self, p: &C2bPayment<'_>) -> Result<Value, VodacomError> {
        if p.amount <= Decimal::ZERO || !p.amount.fract().is_zero() {
            return Err(VodacomError::Invalid(format!(
                "the amount {} is not a whole number of shillings",
                p.amount
            )));
        }
        let msisdn = p.msisdn.trim();
        if !(12..=14).contains(&msisdn.len()) || !msisdn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VodacomError::Invalid(
                "the MSISDN must be 12-14 digits without +".into(),
            ));
        }
        let reference = p.reference.trim();
        if reference.is_empty()
            || reference.chars().count() > REFERENCE_MAX
            || reference.chars().any(char::is_whitespace)
        {
            return Err(VodacomError::Invalid(format!(
                "the transaction reference must be 1-{REFERENCE_MAX} characters without spaces"
            )));
        }
        if p.third_party_conversation_id.trim().is_empty() {
            return Err(VodacomError::Invalid(
                "the ThirdPartyConversationID is empty".into(),
            ));
        }
        Ok(json!({
            "input_Amount": p.amount.trunc().normalize().to_string(),
            "input_Country": self.country,
            "input_Currency": self.currency,
            "input_CustomerMSISDN": msisdn,
            "input_ServiceProviderCode": self.provider_code,
            "input_ThirdPartyConversationID": p.third_party_conversation_id,
            "input_TransactionReference": reference,
            "input_PurchasedItemsDesc": p.description,
        }))
    }
}

/// The country and currency of a market (only Tanzania's is supported).
fn market_country(market: &str) -> Result<(&'static str, &'static str), String> {
    match market.trim() {
        "vodacomTZN" => Ok(("TZN", "TZS")),
        other => Err(format!(
            "market {other:?} is not supported (only vodacomTZN)"
        )),
    }
}

fn headers(bearer: &str) -> reqwest::header::HeaderMap {
    use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, ORIGIN};
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {bearer}")).expect("base64 is a header value"),
    );
    h.insert(ORIGIN, HeaderValue::from_static(ORIGIN_ANY));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    h
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// A transport failure: before the connection, nothing was sent; after it, a payment's outcome
/// is unknown.
fn unanswered(call: Call, e: &reqwest::Error) -> VodacomError {
    if e.is_connect() || e.is_builder() {
        return VodacomError::NotSent(e.to_string());
    }
    match call {
        Call::Payment => VodacomError::Unknown(e.to_string()),
        Call::Query => VodacomError::Unanswered(e.to_string()),
    }
}

/// Runs one API call and records its latency and outcome (`crate::metrics::provider_call`).
async fn timed<T>(
    operation: &str,
    call: impl std::future::Future<Output = Result<T, VodacomError>>,
) -> Result<T, VodacomError> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_unknown() => "ambiguous",
        Err(e) if e.is_transient() => "transient",
        Err(_) => "refused",
    };
    crate::metrics::provider_call("vodacom", operation, status, started.elapsed());
    result
}
