//! The Beem SMS client: send to up to [`MAX_RECIPIENTS`] numbers in one request, pull delivery
//! reports, read the balance.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::report::{PulledReport, provider_id, text_of};
use crate::config::Secret;
use crate::providers::bulk::{
    self, BulkError, DeliveryReport, FailureClass, Recipient, RecipientAnswer,
};

/// The most recipients this client puts in one request.
pub const MAX_RECIPIENTS: usize = 100;

/// Beem's code for "Message Submitted Successfully".
pub const SUBMITTED: i64 = 100;

const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct BeemClient {
    http: reqwest::Client,
    base_send: Url,
    base_dlr: Url,
    api_key: String,
    secret_key: Secret,
    source_addr: String,
    timeout: Duration,
    /// `beem:<fingerprint of the API key>`, as recorded on each message sent through it.
    account: String,
    /// Which credentials these are (`pause::fingerprint`).
    credentials: String,
}

/// The answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SendAnswer {
    #[serde(default)]
    pub successful: bool,
    /// A number in Beem's answers; read either way.
    #[serde(default, deserialize_with = "text_or_number")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub valid: Option<u64>,
    #[serde(default)]
    pub invalid: Option<u64>,
    #[serde(default)]
    pub duplicates: Option<u64>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<Value> = Option::deserialize(d)?;
    Ok(v.as_ref().and_then(text_of))
}

fn http_client(timeout: Duration) -> reqwest::Client {
    // Certificates are always verified: Beem's own samples switch that off; we never do.
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

impl BeemClient {
    /// `base_send` is `https://apisms.beem.africa`, `base_dlr` `https://dlrapi.beem.africa`
    /// (Beem's own samples disagree: one pulls reports from the send host, hence two bases);
    /// `source_addr` the sender name registered through Beem (with TCRA). Every body is sent
    /// with `encoding` 0.
    pub fn new(
        base_send: Url,
        base_dlr: Url,
        api_key: &str,
        secret_key: Secret,
        source_addr: &str,
    ) -> Self {
        let credentials = crate::providers::pause::fingerprint(api_key, secret_key.expose());
        BeemClient {
            http: http_client(TIMEOUT),
            base_send,
            base_dlr,
            api_key: api_key.to_string(),
            secret_key,
            source_addr: source_addr.to_string(),
            timeout: TIMEOUT,
            account: format!(
                "beem:{}",
                crate::providers::pause::fingerprint("beem", api_key)
            ),
            credentials,
        }
    }

    /// The longest a request may take, connection included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self.timeout = timeout;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn source_addr(&self) -> &str {
        &self.source_addr
    }

    /// The account as recorded on each message sent through it (the API key is not shown).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The fingerprint of the API key and secret (`pause::fingerprint`).
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    /// The secret segment of this account's delivery-report URL (`bulk::report_token`).
    pub fn report_token(&self) -> String {
        bulk::report_token(self.secret_key.expose())
    }

    pub fn report_token_matches(&self, given: &str) -> bool {
        bulk::report_token_matches(self.secret_key.expose(), given)
    }

    fn url(base: &Url, path: &str) -> Url {
        base.join(path).expect("valid path")
    }

    fn get(&self, url: Url) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .basic_auth(&self.api_key, Some(self.secret_key.expose()))
            .header("Accept", "application/json")
    }

    /// `POST /v1/send`: `body` to every recipient, `recipient_id` our message id. Beem names no
    /// recipient in its answer, only counts: when every one is `valid`, all are accepted (with
    /// `provider_id` `"<request_id>:<message id>"`, as its delivery report names them); when all
    /// are invalid, all failed permanently; otherwise each is unknown until its report.
    pub async fn send(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> Result<Vec<(crate::domain::MessageId, RecipientAnswer)>, BulkError> {
        bulk::check_batch(recipients, MAX_RECIPIENTS)?;
        bulk::timed("beem", "send", async {
            let payload = json!({
                "source_addr": self.source_addr,
                "encoding": 0,
                "schedule_time": "",
                "message": body,
                "recipients": recipients.iter().map(|r| json!({
                    "recipient_id": r.message.to_string(),
                    "dest_addr": r.to.digits(),
                })).collect::<Vec<_>>(),
            });
            let response = self
                .http
                .post(Self::url(&self.base_send, "/v1/send"))
                .basic_auth(&self.api_key, Some(self.secret_key.expose()))
                .header("Accept", "application/json")
                .json(&payload)
                .send()
                .await
                .map_err(bulk::transport_error)?;
            let status = response.status().as_u16();
            let retry_after = bulk::retry_after(&response);
            let text = response
                .text()
                .await
                .map_err(|e| BulkError::Ambiguous(e.to_string()))?;
            if let Some(e) = bulk::http_class(status, retry_after, &text) {
                return Err(e);
            }
            let answer: Option<SendAnswer> = serde_json::from_str(&text).ok();
            match answer {
                Some(a) if (200..300).contains(&status) && a.successful => answers(recipients, &a),
                Some(a) if (200..300).contains(&status) && a.code.is_none() => Err(
                    BulkError::Ambiguous(format!("a 2xx answer without a code: {text:.200}")),
                ),
                None if (200..300).contains(&status) => Err(BulkError::Ambiguous(format!(
                    "unreadable 2xx answer: {text:.200}"
                ))),
                _ => Err(refusal(status, &text)),
            }
        })
        .await
    }

    /// `GET /public/v1/delivery-reports?dest_addr=..&request_id=..` (on the DLR host): the
    /// reports Beem holds for one number of one request (empty while it holds none).
    pub async fn delivery_reports(
        &self,
        dest_addr: &crate::domain::E164,
        request_id: &str,
    ) -> Result<Vec<DeliveryReport>, BulkError> {
        bulk::timed("beem", "delivery_reports", async {
            let mut url = Self::url(&self.base_dlr, "/public/v1/delivery-reports");
            url.query_pairs_mut()
                .append_pair("dest_addr", dest_addr.digits())
                .append_pair("request_id", request_id);
            let value = self.get_json(url).await?;
            let items = match &value {
                Value::Array(a) => a.clone(),
                Value::Object(o) => match o.get("data") {
                    Some(Value::Array(a)) => a.clone(),
                    Some(v @ Value::Object(_)) => vec![v.clone()],
                    _ => vec![value.clone()],
                },
                _ => Vec::new(),
            };
            items
                .iter()
                .map(|item| {
                    serde_json::from_value::<PulledReport>(item.clone())
                        .map(|r| r.neutral(request_id))
                        .map_err(|e| BulkError::Ambiguous(format!("unreadable report: {e}")))
                })
                .collect()
        })
        .await
    }

    /// `GET /public/v1/vendors/balance`: the SMS credits left on the account.
    pub async fn balance(&self) -> Result<Decimal, BulkError> {
        bulk::timed("beem", "balance", async {
            let value = self
                .get_json(Self::url(&self.base_send, "/public/v1/vendors/balance"))
                .await?;
            let credits = value
                .pointer("/data/credit_balance")
                .or_else(|| value.get("credit_balance"))
                .and_then(text_of)
                .and_then(|s| s.parse::<Decimal>().ok());
            credits.ok_or_else(|| BulkError::Ambiguous(format!("no credit_balance in {value}")))
        })
        .await
    }

    /// Checks that Beem accepts our key pair (the balance must answer).
    pub async fn check_credentials(&self) -> Result<(), BulkError> {
        self.balance().await.map(|_| ())
    }

    async fn get_json(&self, url: Url) -> Result<Value, BulkError> {
        let response = self.get(url).send().await.map_err(bulk::transport_error)?;
        let status = response.status().as_u16();
        let retry_after = bulk::retry_after(&response);
        let text = response
            .text()
            .await
            .map_err(|e| BulkError::Ambiguous(e.to_string()))?;
        if let Some(e) = bulk::http_class(status, retry_after, &text) {
            return Err(e);
        }
        if status != 200 {
            return Err(refusal(status, &text));
        }
        serde_json::from_str(&text)
            .map_err(|e| BulkError::Ambiguous(format!("unreadable answer: {e}")))
    }
}

/// The recipients' answers to a successful send.
fn answers(
    recipients: &[Recipient],
    a: &SendAnswer,
) -> Result<Vec<(crate::domain::MessageId, RecipientAnswer)>, BulkError> {
    let Some(request_id) = a.request_id.clone() else {
        return Err(BulkError::Ambiguous(
            "a successful send without request_id".into(),
        ));
    };
    if a.code != Some(SUBMITTED) {
        tracing::warn!(code = ?a.code, message = ?a.message, "beem: unexpected code on a successful send");
    }
    let n = recipients.len() as u64;
    let valid = a.valid.unwrap_or(0);
    let invalid = a.invalid.unwrap_or(0);
    let out = recipients.iter().map(|r| {
        let id = provider_id(&request_id, &r.message.to_string());
        let answer = if valid == n && invalid == 0 {
            RecipientAnswer::Accepted {
                provider_id: id,
                segments: None,
                cost: None,
            }
        } else if valid == 0 && invalid == n {
            RecipientAnswer::Failed {
                class: FailureClass::Permanent,
                code: "invalid".into(),
                reason: "Beem counted every recipient invalid".into(),
            }
        } else {
            RecipientAnswer::UnknownUntilReport {
                provider_id: Some(id),
            }
        };
        (r.message, answer)
    });
    if !(valid == n && invalid == 0) {
        tracing::warn!(
            request_id, valid, invalid, duplicates = ?a.duplicates, sent = n,
            "beem: not every recipient was valid, and Beem does not say which"
        );
    }
    Ok(out.collect())
}

/// A refusal other than credentials or an outage: Beem publishes no table of codes, so every
/// one is terminal, and logged.
fn refusal(status: u16, text: &str) -> BulkError {
    let value: Option<Value> = serde_json::from_str(text).ok();
    let field = |name: &str| {
        value.as_ref().and_then(|v| {
            v.get(name)
                .or_else(|| v.pointer(&format!("/data/{name}")))
                .and_then(text_of)
        })
    };
    let code = field("code").unwrap_or_else(|| format!("http_{status}"));
    let reason = field("message").unwrap_or_else(|| text.chars().take(200).collect());
    tracing::warn!(status, code, reason, "beem refused a request");
    BulkError::Refused { code, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beem_refusals_keep_beems_code_and_message() {
        assert_eq!(
            refusal(400, r#"{"code":111,"message":"Invalid Sender Id"}"#),
            BulkError::Refused {
                code: "111".into(),
                reason: "Invalid Sender Id".into()
            }
        );
        assert_eq!(
            refusal(
                400,
                r#"{"data":{"code":116,"message":"Missing parameter"}}"#
            ),
            BulkError::Refused {
                code: "116".into(),
                reason: "Missing parameter".into()
            }
        );
        assert_eq!(
            refusal(404, "<html>Not Found</html>"),
            BulkError::Refused {
                code: "http_404".into(),
                reason: "<html>Not Found</html>".into()
            }
        );
    }

    #[test]
    fn beem_the_send_answer_reads_a_numeric_request_id() {
        let a: SendAnswer = serde_json::from_str(
            r#"{"successful":true,"request_id":27104651,"code":100,"message":"Message Submitted Successfully","valid":1,"invalid":0,"duplicates":0}"#,
        )
        .unwrap();
        assert_eq!(a.request_id.as_deref(), Some("27104651"));
        assert_eq!(
            (a.code, a.valid, a.invalid),
            (Some(SUBMITTED), Some(1), Some(0))
        );
        let unsent = SendAnswer {
            request_id: None,
            ..a
        };
        assert!(matches!(
            answers(&[], &unsent),
            Err(BulkError::Ambiguous(_))
        ));
    }
}
