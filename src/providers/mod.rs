//! Wire clients of the providers. Each speaks the real protocol (paths, auth, bodies, errors,
//! signatures); tests and the demo point them at the loopback fakes in `crate::fakes`.

pub mod africastalking;
pub mod beem;
pub mod bulk;
pub mod mpesa;
pub mod pause;
pub mod stripe;
pub mod twilio;
pub mod vodacom;

use chrono::{DateTime, Utc};

use crate::domain::{E164, MessageId, Segments};
use twilio::{TwilioClient, TwilioError, TwilioMessage};

/// Where messages go: the central Twilio account, or, with none configured, the demo provider,
/// which logs the message as sent and sends nothing (credits are charged as for real).
#[derive(Clone)]
pub enum SmsGateway {
    Twilio(Box<TwilioClient>),
    Demo,
}

impl SmsGateway {
    /// `provider` as stored on the message.
    pub fn name(&self) -> &'static str {
        match self {
            SmsGateway::Twilio(_) => "twilio",
            SmsGateway::Demo => "demo",
        }
    }

    /// The provider account messages go through (a Twilio account SID); none for the demo.
    pub fn account(&self) -> Option<&str> {
        match self {
            SmsGateway::Twilio(c) => Some(c.account_sid()),
            SmsGateway::Demo => None,
        }
    }

    /// The fingerprint of the credentials in use (`pause::fingerprint`).
    pub fn credentials(&self) -> Option<&str> {
        match self {
            SmsGateway::Twilio(c) => Some(c.credentials()),
            SmsGateway::Demo => None,
        }
    }

    /// Checks that the provider accepts our credentials (the demo always does).
    pub async fn check_credentials(&self) -> Result<(), TwilioError> {
        match self {
            SmsGateway::Twilio(c) => c.check_account().await,
            SmsGateway::Demo => Ok(()),
        }
    }

    /// The key of the account-wide send rate (one per sender).
    pub fn rate_key(&self) -> String {
        match self {
            SmsGateway::Twilio(c) => format!("twilio:{}:{}", c.account_sid(), c.sender().key()),
            SmsGateway::Demo => "demo".into(),
        }
    }

    /// The longest a send can be in flight: once an attempt is older than this, the run that
    /// made it has its answer or has given up on it.
    pub fn longest_send(&self) -> std::time::Duration {
        match self {
            SmsGateway::Twilio(c) => c.timeout(),
            // Nothing to wait for, but two overlapping runs still must not both log a send.
            SmsGateway::Demo => std::time::Duration::from_secs(5),
        }
    }

    /// Sends `message`'s `body` to `to`.
    pub async fn send(
        &self,
        message: MessageId,
        to: &E164,
        body: &str,
    ) -> Result<TwilioMessage, TwilioError> {
        match self {
            SmsGateway::Twilio(c) => c.send(message, to, body).await,
            SmsGateway::Demo => {
                tracing::info!(to = %to, "demo provider: message logged as sent, nothing left the machine");
                Ok(TwilioMessage {
                    sid: format!("DM{}", uuid::Uuid::new_v4().simple()),
                    status: "sent".into(),
                    to: to.to_string(),
                    body: Some(body.to_string()),
                    num_segments: Some(Segments::count(body).count),
                    price: None,
                    price_unit: None,
                    error_code: None,
                    error_message: None,
                    date_created: Some(Utc::now()),
                })
            }
        }
    }

    /// The provider's message `sid` now (for the price it reports once final); `None` from the
    /// demo provider, which charges the platform nothing.
    pub async fn fetch_message(&self, sid: &str) -> Result<Option<TwilioMessage>, TwilioError> {
        match self {
            SmsGateway::Twilio(c) => c.fetch_message(sid).await.map(Some),
            SmsGateway::Demo => Ok(None),
        }
    }

    /// Messages the provider holds to `to` since `since` (reconciliation of an unanswered send).
    pub async fn messages_to(
        &self,
        to: &E164,
        since: DateTime<Utc>,
    ) -> Result<Vec<TwilioMessage>, TwilioError> {
        match self {
            SmsGateway::Twilio(c) => c.messages_to(to, since).await,
            SmsGateway::Demo => Ok(Vec::new()),
        }
    }
}
