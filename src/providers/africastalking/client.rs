//! The Africa's Talking SMS client: send to many numbers in one request and read each
//! recipient's answer; check the credentials against the user data endpoint.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::Secret;
use crate::domain::MessageId;
use crate::providers::bulk::{
    self, BulkError, FailureClass, Price, Recipient, RecipientAnswer, plus_form,
};

/// The most recipients this client puts in one request.
pub const MAX_RECIPIENTS: usize = 100;

const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AfricasTalkingClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    api_key: Secret,
    sender_id: Option<String>,
    timeout: Duration,
    /// `africastalking:<username>`, as recorded on each message sent through it.
    account: String,
    /// Which credentials these are (`pause::fingerprint`).
    credentials: String,
}

/// The send answer: `{"SMSMessageData":{"Message":…,"Recipients":[…]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SmsAnswer {
    #[serde(rename = "SMSMessageData")]
    pub data: SmsMessageData,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SmsMessageData {
    #[serde(rename = "Message", default)]
    pub message: String,
    #[serde(rename = "Recipients", default)]
    pub recipients: Vec<Recipients>,
}

/// One entry of `Recipients`. A refused one has `cost` `"0"` (no currency), `messageId`
/// `"None"` and no `messageParts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipients {
    pub status_code: i64,
    pub number: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub cost: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub message_parts: Option<u32>,
}

/// A recipient's statusCode: `None` when accepted (100 Processed, 101 Sent, 102 Queued),
/// otherwise what the refusal means. A code not in the published table is terminal
/// (`Permanent`) and logged.
pub fn classify(status_code: i64) -> Option<FailureClass> {
    published(status_code).unwrap_or_else(|| {
        tracing::warn!(
            status_code,
            "africastalking: unknown statusCode, treated as terminal"
        );
        Some(FailureClass::Permanent)
    })
}

/// The published table (PROTOCOLS.md section 9); `None` for a code not in it.
fn published(status_code: i64) -> Option<Option<FailureClass>> {
    Some(match status_code {
        100..=102 => None,
        401 | 402 | 405 | 407 => Some(FailureClass::Configuration),
        403 | 404 | 406 | 409 => Some(FailureClass::Permanent),
        500..=502 => Some(FailureClass::Transient),
        _ => return None,
    })
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

impl AfricasTalkingClient {
    /// `base` is `https://api.africastalking.com` (or the sandbox host, username `sandbox`);
    /// `sender_id` the registered sender id or short code (none: AT's shared sender).
    pub fn new(base: Url, username: &str, api_key: Secret, sender_id: Option<String>) -> Self {
        let credentials = crate::providers::pause::fingerprint(username, api_key.expose());
        AfricasTalkingClient {
            account: format!("africastalking:{username}"),
            credentials,
            http: http_client(TIMEOUT),
            base,
            username: username.to_string(),
            api_key,
            sender_id,
            timeout: TIMEOUT,
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

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn sender_id(&self) -> Option<&str> {
        self.sender_id.as_deref()
    }

    /// The account as recorded on each message sent through it.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The fingerprint of the username and API key (`pause::fingerprint`).
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    /// The secret segment of this account's delivery-report URL (`bulk::report_token`).
    pub fn report_token(&self) -> String {
        bulk::report_token(self.api_key.expose())
    }

    pub fn report_token_matches(&self, given: &str) -> bool {
        bulk::report_token_matches(self.api_key.expose(), given)
    }

    /// `POST /version1/messaging` with `bulkSMSMode=1` and `enqueue=1`; each recipient's answer
    /// is found by its number (a batch never names a number twice). A recipient the answer
    /// leaves out is unknown until its report.
    pub async fn send(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> Result<Vec<(MessageId, RecipientAnswer)>, BulkError> {
        bulk::check_batch(recipients, MAX_RECIPIENTS)?;
        bulk::timed("africastalking", "send", async {
            let to = recipients
                .iter()
                .map(|r| r.to.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let mut form = vec![
                ("username", self.username.as_str()),
                ("to", to.as_str()),
                ("message", body),
                ("bulkSMSMode", "1"),
                ("enqueue", "1"),
            ];
            if let Some(from) = &self.sender_id {
                form.push(("from", from));
            }
            let response = self
                .http
                .post(self.base.join("/version1/messaging").expect("valid path"))
                .header("apiKey", self.api_key.expose())
                .header("Accept", "application/json")
                .form(&form)
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
            if !(200..300).contains(&status) {
                let reason: String = text.chars().take(200).collect();
                tracing::warn!(status, reason, "africastalking refused a send");
                return Err(BulkError::Refused {
                    code: format!("http_{status}"),
                    reason,
                });
            }
            let answer: SmsAnswer = serde_json::from_str(&text)
                .map_err(|e| BulkError::Ambiguous(format!("unreadable {status} answer: {e}")))?;
            answers(recipients, answer.data)
        })
        .await
    }

    /// `GET /version1/user?username=`: the account's balance (e.g. `KES 1785.50`).
    pub async fn balance(&self) -> Result<Price, BulkError> {
        bulk::timed("africastalking", "user", async {
            let mut url = self.base.join("/version1/user").expect("valid path");
            url.query_pairs_mut()
                .append_pair("username", &self.username);
            let response = self
                .http
                .get(url)
                .header("apiKey", self.api_key.expose())
                .header("Accept", "application/json")
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
            if status != 200 {
                return Err(BulkError::Refused {
                    code: format!("http_{status}"),
                    reason: text.chars().take(200).collect(),
                });
            }
            #[derive(Deserialize)]
            struct User {
                #[serde(rename = "UserData")]
                user_data: UserData,
            }
            #[derive(Deserialize)]
            struct UserData {
                balance: String,
            }
            let user: User = serde_json::from_str(&text)
                .map_err(|e| BulkError::Ambiguous(format!("unreadable user data: {e}")))?;
            Price::parse(&user.user_data.balance).ok_or_else(|| {
                BulkError::Ambiguous(format!("unreadable balance {:?}", user.user_data.balance))
            })
        })
        .await
    }

    /// Checks that AT accepts our username and API key (the user data must answer).
    pub async fn check_credentials(&self) -> Result<(), BulkError> {
        self.balance().await.map(|_| ())
    }
}

/// Each of our recipients' answers, found by number in `Recipients`.
fn answers(
    recipients: &[Recipient],
    data: SmsMessageData,
) -> Result<Vec<(MessageId, RecipientAnswer)>, BulkError> {
    if data.recipients.is_empty() {
        // Refused as a whole: the answer names nobody. `InvalidSenderId` is our sender.
        tracing::warn!(
            message = data.message,
            "africastalking: a send answered with no recipients"
        );
        return Err(if data.message.contains("InvalidSenderId") {
            BulkError::Configuration {
                reason: data.message,
            }
        } else {
            BulkError::Refused {
                code: "no_recipients".into(),
                reason: data.message,
            }
        });
    }
    let mut by_number: HashMap<String, Recipients> = HashMap::new();
    for entry in data.recipients {
        let number = plus_form(&entry.number);
        if by_number.insert(number.clone(), entry).is_some() {
            tracing::warn!(number, "africastalking: one number answered twice");
        }
    }
    let out = recipients
        .iter()
        .map(|r| {
            let answer = match by_number.remove(r.to.as_str()) {
                Some(entry) => answer_of(entry),
                None => RecipientAnswer::UnknownUntilReport { provider_id: None },
            };
            (r.message, answer)
        })
        .collect();
    for number in by_number.keys() {
        tracing::warn!(
            number,
            "africastalking answered for a number we did not send to"
        );
    }
    Ok(out)
}

fn answer_of(entry: Recipients) -> RecipientAnswer {
    match classify(entry.status_code) {
        None => match entry.message_id.filter(|id| !id.is_empty() && id != "None") {
            Some(provider_id) => RecipientAnswer::Accepted {
                provider_id,
                segments: entry.message_parts,
                cost: entry.cost.as_deref().and_then(Price::parse),
            },
            // Accepted without an id: no report could be matched to it; say so, do not guess.
            None => RecipientAnswer::UnknownUntilReport { provider_id: None },
        },
        Some(class) => RecipientAnswer::Failed {
            class,
            code: entry.status_code.to_string(),
            reason: entry.status,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::E164;

    fn recipient(n: &str) -> Recipient {
        Recipient {
            message: MessageId::new(),
            to: E164::try_from(n.to_string()).unwrap(),
        }
    }

    fn data(body: &str) -> SmsMessageData {
        serde_json::from_str::<SmsAnswer>(body).unwrap().data
    }

    #[test]
    fn africastalking_the_published_codes_are_all_known() {
        for code in [100, 101, 102] {
            assert_eq!(published(code), Some(None), "{code}");
        }
        for code in [401, 402, 405, 407] {
            assert_eq!(
                published(code),
                Some(Some(FailureClass::Configuration)),
                "{code}"
            );
        }
        for code in [403, 404, 406, 409] {
            assert_eq!(
                published(code),
                Some(Some(FailureClass::Permanent)),
                "{code}"
            );
        }
        for code in [500, 501, 502] {
            assert_eq!(
                published(code),
                Some(Some(FailureClass::Transient)),
                "{code}"
            );
        }
        for code in [0, 103, 400, 408, 410, 503, 999] {
            assert_eq!(published(code), None, "{code}");
        }
    }

    #[test]
    fn africastalking_a_recipient_left_out_or_without_an_id_is_unknown() {
        let ours = [recipient("+254711000111"), recipient("+254711000222")];
        let body = r#"{"SMSMessageData":{"Message":"Sent to 1/2 Total Cost: KES 0.8000","Recipients":[{"statusCode":102,"number":"+254711000111","status":"Queued","cost":"KES 0.8000","messageId":"None"}]}}"#;
        let got = answers(&ours, data(body)).unwrap();
        assert_eq!(
            got[0],
            (
                ours[0].message,
                RecipientAnswer::UnknownUntilReport { provider_id: None }
            )
        );
        assert_eq!(
            got[1],
            (
                ours[1].message,
                RecipientAnswer::UnknownUntilReport { provider_id: None }
            )
        );
    }

    #[test]
    fn africastalking_a_refused_recipient_has_no_cost_and_an_answer_naming_nobody_is_refused() {
        let ours = [recipient("+254790904509")];
        let body = r#"{"SMSMessageData":{"Message":"Sent to 0/1 Total Cost: 0","Recipients":[{"cost":"0","messageId":"None","number":"+254790904509","status":"InsufficientBalance","statusCode":405}]}}"#;
        let got = answers(&ours, data(body)).unwrap();
        assert_eq!(
            got[0].1,
            RecipientAnswer::Failed {
                class: FailureClass::Configuration,
                code: "405".into(),
                reason: "InsufficientBalance".into()
            }
        );
        let none = r#"{"SMSMessageData":{"Message":"InvalidSenderId","Recipients":[]}}"#;
        assert!(matches!(
            answers(&ours, data(none)),
            Err(BulkError::Configuration { .. })
        ));
        let other = r#"{"SMSMessageData":{"Message":"Something else","Recipients":[]}}"#;
        assert!(matches!(
            answers(&ours, data(other)),
            Err(BulkError::Refused { .. })
        ));
    }
}
