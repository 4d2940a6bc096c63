//! The Daraja client: STK Push (M-Pesa Express) and STK Push Query (PROTOCOLS.md section 5).

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::error::{
    Call, DarajaError, DarajaFault, INVALID_ACCESS_TOKEN, LOCKED_OR_PROCESSING, classify, fault_of,
};
use super::password::{stk_password, stk_timestamp};
use super::token::{Credentials, TokenCache};
use crate::config::Secret;

/// Daraja's limits on the free-text fields (longer ones are blamed for 1025/9999 failures).
pub const ACCOUNT_REFERENCE_MAX: usize = 12;
pub const TRANSACTION_DESC_MAX: usize = 13;

/// ResultCode of a query whose transaction is "still under processing".
const STILL_PROCESSING: i64 = 4999;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(30);

/// A Daraja (Safaricom) client for one paybill shortcode. Clones share the HTTP pool and the
/// cached access token.
#[derive(Clone)]
pub struct DarajaClient {
    http: reqwest::Client,
    base: Url,
    consumer_key: Secret,
    consumer_secret: Secret,
    shortcode: String,
    passkey: Secret,
    token: TokenCache,
}

impl std::fmt::Debug for DarajaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DarajaClient")
            .field("base", &self.base.as_str())
            .field("shortcode", &self.shortcode)
            .finish_non_exhaustive()
    }
}

/// One STK push: ask `msisdn` to pay `amount` to our paybill.
#[derive(Debug, Clone, Copy)]
pub struct StkPush<'a> {
    /// Whole units (KES); at least 1.
    pub amount: i64,
    /// Digits only, no `+` (`2547XXXXXXXX`).
    pub msisdn: &'a str,
    /// Where Daraja posts the outcome (public HTTPS in production).
    pub callback_url: &'a Url,
    /// Shown to the customer; truncated to 12 characters.
    pub account_reference: &'a str,
    /// Truncated to 13 characters.
    pub description: &'a str,
}

/// Daraja accepted the push and prompted the phone. Not a payment: the outcome comes by
/// callback or query, keyed by `checkout_request_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkAccepted {
    pub merchant_request_id: String,
    pub checkout_request_id: String,
    pub customer_message: String,
}

/// What the STK Push Query says about a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StkQuery {
    /// The customer has not answered yet (or Daraja has not settled it): ask again later.
    Pending,
    /// Final for this CheckoutRequestID. Only `result_code == 0` means paid; the query carries no
    /// receipt and no amount.
    Completed {
        result_code: i64,
        result_desc: String,
    },
}

impl DarajaClient {
    pub fn new(
        base: Url,
        consumer_key: Secret,
        consumer_secret: Secret,
        shortcode: String,
        passkey: Secret,
    ) -> Self {
        DarajaClient {
            http: http_client(TIMEOUT),
            base,
            consumer_key,
            consumer_secret,
            shortcode,
            passkey,
            token: TokenCache::default(),
        }
    }

    /// A shorter overall timeout, for tests that make Daraja hang.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self
    }

    pub fn shortcode(&self) -> &str {
        &self.shortcode
    }

    /// `POST /mpesa/stkpush/v1/processrequest`: prompts the phone to pay.
    ///
    /// Never call it again for the same purchase after [`DarajaError::Ambiguous`]: each push
    /// prompts the phone again. A 500.001.1001 answer ("unable to lock subscriber": another
    /// M-Pesa session is in progress) is permanent for this push: no prompt was sent.
    pub async fn stk_push(&self, push: &StkPush<'_>) -> Result<StkAccepted, DarajaError> {
        timed("stk_push", self.push_once(push)).await
    }

    async fn push_once(&self, push: &StkPush<'_>) -> Result<StkAccepted, DarajaError> {
        let timestamp = stk_timestamp(Utc::now());
        let body = self.push_body(push, &timestamp)?;
        let (status, text) = self
            .post(Call::Push, "/mpesa/stkpush/v1/processrequest", &body)
            .await?;
        if status != 200 {
            return Err(classify(Call::Push, status, &text));
        }
        parse_accepted(&text)
    }

    /// `POST /mpesa/stkpushquery/v1/query`: where a push stands. Safe to repeat.
    pub async fn stk_query(&self, checkout_request_id: &str) -> Result<StkQuery, DarajaError> {
        timed("stk_query", self.query_once(checkout_request_id)).await
    }

    async fn query_once(&self, checkout_request_id: &str) -> Result<StkQuery, DarajaError> {
        let timestamp = stk_timestamp(Utc::now());
        let body = json!({
            "BusinessShortCode": self.shortcode,
            "Password": stk_password(&self.shortcode, self.passkey.expose(), &timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        });
        let (status, text) = self
            .post(Call::Query, "/mpesa/stkpushquery/v1/query", &body)
            .await?;
        if status != 200 {
            if fault_of(status, &text).is_some_and(|f| f.error_code == LOCKED_OR_PROCESSING) {
                // "The transaction is being processed".
                return Ok(StkQuery::Pending);
            }
            return Err(classify(Call::Query, status, &text));
        }
        parse_query(&text)
    }

    /// The push request body. It holds the Password: never log it.
    fn push_body(&self, push: &StkPush<'_>, timestamp: &str) -> Result<Value, DarajaError> {
        if push.amount < 1 {
            return Err(DarajaError::Invalid(format!(
                "amount {} is below 1",
                push.amount
            )));
        }
        let phone = msisdn_number(push.msisdn)?;
        if !matches!(push.callback_url.scheme(), "https" | "http") {
            return Err(DarajaError::Invalid("CallBackURL must be HTTP(S)".into()));
        }
        let reference = truncate(push.account_reference.trim(), ACCOUNT_REFERENCE_MAX);
        let description = truncate(push.description.trim(), TRANSACTION_DESC_MAX);
        if reference.is_empty() || description.is_empty() {
            return Err(DarajaError::Invalid(
                "AccountReference and TransactionDesc must not be empty".into(),
            ));
        }
        // PartyB is a number in Safaricom's sample; keep a non-numeric shortcode as given.
        let party_b = self
            .shortcode
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(self.shortcode.clone()));
        Ok(json!({
            "BusinessShortCode": self.shortcode,
            "Password": stk_password(&self.shortcode, self.passkey.expose(), timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": push.amount,
            "PartyA": phone,
            "PartyB": party_b,
            "PhoneNumber": phone,
            "CallBackURL": push.callback_url.as_str(),
            "AccountReference": reference,
            "TransactionDesc": description,
        }))
    }

    /// Posts `body` with a bearer token; when Daraja says the token is invalid (404.001.03),
    /// fetches a new one and sends the request once more. Returns the status and body text.
    async fn post(
        &self,
        call: Call,
        path: &str,
        body: &Value,
    ) -> Result<(u16, String), DarajaError> {
        let url = self.base.join(path).expect("valid path");
        let token = self.token.get(&self.credentials()).await?;
        let (status, text) = self.send(call, &url, &token, body).await?;
        if status == 404
            && fault_of(status, &text).is_some_and(|f| f.error_code == INVALID_ACCESS_TOKEN)
        {
            // Revoked or expired early. Daraja did nothing with the request, so resending is safe.
            self.token.invalidate(&token).await;
            let token = self.token.get(&self.credentials()).await?;
            return self.send(call, &url, &token, body).await;
        }
        Ok((status, text))
    }

    async fn send(
        &self,
        call: Call,
        url: &Url,
        token: &Secret,
        body: &Value,
    ) -> Result<(u16, String), DarajaError> {
        let response = self
            .http
            .post(url.clone())
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| unanswered(call, &e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| unanswered(call, &e))?;
        Ok((status, text))
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            http: &self.http,
            base: &self.base,
            consumer_key: &self.consumer_key,
            consumer_secret: &self.consumer_secret,
        }
    }
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// A transport failure: before the connection, nothing was sent; after it, a push is ambiguous.
fn unanswered(call: Call, e: &reqwest::Error) -> DarajaError {
    if e.is_connect() || e.is_builder() {
        return DarajaError::NotSent(e.to_string());
    }
    match call {
        Call::Push => DarajaError::Ambiguous(e.to_string()),
        Call::Query => DarajaError::Unanswered(e.to_string()),
    }
}

fn msisdn_number(msisdn: &str) -> Result<u64, DarajaError> {
    let digits = msisdn.trim();
    if !(9..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DarajaError::Invalid(
            "the phone number must be 9-15 digits without +".into(),
        ));
    }
    digits
        .parse()
        .map_err(|_| DarajaError::Invalid("the phone number is not a number".into()))
}

/// The first `max` characters (never splitting one).
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A string field that may come as a number.
fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_accepted(text: &str) -> Result<StkAccepted, DarajaError> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "MerchantRequestID", default)]
        merchant_request_id: String,
        #[serde(rename = "CheckoutRequestID", default)]
        checkout_request_id: String,
        #[serde(rename = "ResponseCode", default)]
        response_code: Value,
        #[serde(rename = "ResponseDescription", default)]
        response_description: String,
        #[serde(rename = "CustomerMessage", default)]
        customer_message: String,
    }
    // Daraja answered 200, so the push may have gone out: anything unreadable is ambiguous.
    let body: Body = serde_json::from_str(text)
        .map_err(|e| DarajaError::Ambiguous(format!("unreadable push answer: {e}")))?;
    let code = code_text(&body.response_code)
        .ok_or_else(|| DarajaError::Ambiguous("push answer without ResponseCode".into()))?;
    if code != "0" {
        return Err(DarajaError::Refused(DarajaFault {
            http_status: 200,
            error_code: code,
            error_message: body.response_description,
            request_id: body.merchant_request_id,
        }));
    }
    if body.checkout_request_id.is_empty() {
        return Err(DarajaError::Ambiguous(
            "push accepted without a CheckoutRequestID".into(),
        ));
    }
    Ok(StkAccepted {
        merchant_request_id: body.merchant_request_id,
        checkout_request_id: body.checkout_request_id,
        customer_message: body.customer_message,
    })
}

fn parse_query(text: &str) -> Result<StkQuery, DarajaError> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "ResponseCode", default)]
        response_code: Value,
        #[serde(rename = "ResponseDescription", default)]
        response_description: String,
        #[serde(rename = "ResultCode", default)]
        result_code: Value,
        #[serde(rename = "ResultDesc", default)]
        result_desc: String,
    }
    let body: Body = serde_json::from_str(text)
        .map_err(|e| DarajaError::Unanswered(format!("unreadable query answer: {e}")))?;
    if let Some(code) = code_text(&body.response_code)
        && code != "0"
    {
        return Err(DarajaError::Refused(DarajaFault {
            http_status: 200,
            error_code: code,
            error_message: body.response_description,
            request_id: String::new(),
        }));
    }
    let result_code = code_text(&body.result_code)
        .and_then(|c| c.parse::<i64>().ok())
        .ok_or_else(|| DarajaError::Unanswered("query answer without a ResultCode".into()))?;
    if result_code == STILL_PROCESSING {
        return Ok(StkQuery::Pending);
    }
    Ok(StkQuery::Completed {
        result_code,
        result_desc: body.result_desc,
    })
}

/// Runs one API call and records its latency and outcome (`crate::metrics::provider_call`).
async fn timed<T>(
    operation: &str,
    call: impl std::future::Future<Output = Result<T, DarajaError>>,
) -> Result<T, DarajaError> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_ambiguous() => "ambiguous",
        Err(e) if e.is_transient() => "transient",
        Err(_) => "refused",
    };
    crate::metrics::provider_call("mpesa", operation, status, started.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> DarajaClient {
        DarajaClient::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            Secret::new("key"),
            Secret::new("secret"),
            "174379".into(),
            Secret::new("bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"),
        )
    }

    #[test]
    fn the_push_body_matches_safaricoms_sample_types() {
        let cb = Url::parse("https://crm.example/mpesa/cb/p1/t1").unwrap();
        let push = StkPush {
            amount: 1,
            msisdn: "254708374149",
            callback_url: &cb,
            account_reference: "SMS42",
            description: "SMS credits",
        };
        let body = client().push_body(&push, "20160216165627").unwrap();
        assert_eq!(
            body,
            json!({"BusinessShortCode":"174379","Password":"MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3",
             "Timestamp":"20160216165627","TransactionType":"CustomerPayBillOnline","Amount":1,
             "PartyA":254708374149u64,"PartyB":174379,"PhoneNumber":254708374149u64,
             "CallBackURL":"https://crm.example/mpesa/cb/p1/t1","AccountReference":"SMS42","TransactionDesc":"SMS credits"})
        );
    }

    #[test]
    fn long_texts_are_truncated_on_character_boundaries() {
        let cb = Url::parse("https://crm.example/cb").unwrap();
        let push = StkPush {
            amount: 500,
            msisdn: "254708374149",
            callback_url: &cb,
            account_reference: "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉ",
            description: "Malipo ya SMS za COPCCA",
        };
        let body = client().push_body(&push, "20160216165627").unwrap();
        assert_eq!(body["AccountReference"], "ÉÉÉÉÉÉÉÉÉÉÉÉ");
        assert_eq!(body["TransactionDesc"], "Malipo ya SMS");
    }

    #[test]
    fn unsendable_pushes_are_refused_before_sending() {
        let cb = Url::parse("https://crm.example/cb").unwrap();
        let good = StkPush {
            amount: 1,
            msisdn: "254708374149",
            callback_url: &cb,
            account_reference: "SMS42",
            description: "SMS credits",
        };
        let c = client();
        for bad in [
            StkPush { amount: 0, ..good },
            StkPush {
                msisdn: "+254708374149",
                ..good
            },
            StkPush {
                msisdn: "0708 374149",
                ..good
            },
            StkPush {
                account_reference: "  ",
                ..good
            },
            StkPush {
                description: "",
                ..good
            },
        ] {
            let e = c.push_body(&bad, "20160216165627").unwrap_err();
            assert!(e.is_permanent(), "{e}");
        }
    }

    #[test]
    fn the_sync_answer_is_parsed_and_a_non_zero_code_refused() {
        let ok = parse_accepted(r#"{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925","ResponseCode":"0","ResponseDescription":"Success. Request accepted for processing","CustomerMessage":"Success. Request accepted for processing"}"#).unwrap();
        assert_eq!(ok.checkout_request_id, "ws_CO_191220191020363925");
        assert_eq!(ok.merchant_request_id, "29115-34620561-1");
        assert_eq!(
            ok.customer_message,
            "Success. Request accepted for processing"
        );
        let refused = parse_accepted(r#"{"MerchantRequestID":"1","CheckoutRequestID":"","ResponseCode":"1","ResponseDescription":"Rejected"}"#).unwrap_err();
        assert!(refused.is_permanent());
        assert!(parse_accepted("<html>").unwrap_err().is_ambiguous());
        assert!(
            parse_accepted(r#"{"ResponseCode":"0"}"#)
                .unwrap_err()
                .is_ambiguous()
        );
    }

    #[test]
    fn query_answers_are_read_as_strings_or_numbers() {
        let done = parse_query(r#"{"ResponseCode":"0","ResponseDescription":"The service request has been accepted successsfully","MerchantRequestID":"22205-34066-1","CheckoutRequestID":"ws_CO_13012021093521236557","ResultCode":"1032","ResultDesc":"Request cancelled by user"}"#).unwrap();
        assert_eq!(
            done,
            StkQuery::Completed {
                result_code: 1032,
                result_desc: "Request cancelled by user".into()
            }
        );
        let paid = parse_query(r#"{"ResponseCode":0,"ResultCode":0,"ResultDesc":"The service request is processed successfully."}"#).unwrap();
        assert!(matches!(paid, StkQuery::Completed { result_code: 0, .. }));
        let pending = parse_query(r#"{"ResponseCode":"0","ResultCode":"4999","ResultDesc":"The transaction is still under processing"}"#).unwrap();
        assert_eq!(pending, StkQuery::Pending);
        assert!(
            parse_query(r#"{"ResponseCode":"0"}"#)
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", client());
        assert!(
            !shown.contains("bfb279") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
