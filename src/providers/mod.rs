//! Wire clients of the providers. Each speaks the real protocol (paths, auth, bodies, errors,
//! signatures); tests and the demo point them at the loopback fakes in `crate::fakes`.

pub mod africastalking;
pub mod answer;
pub mod beem;
pub mod bulk;
pub mod grouped;
pub mod mpesa;
pub mod pause;
pub mod stripe;
pub mod twilio;
pub mod vodacom;

use chrono::{DateTime, Utc};

use crate::domain::{E164, MessageId, Segments};
use crate::pacing::Pacer;
use crate::routing::RouteName;
use africastalking::AfricasTalkingClient;
use answer::{SendError, Sent};
use beem::BeemClient;
use bulk::Recipient;
use grouped::{BulkClient, Grouped};
use twilio::{TwilioClient, TwilioError, TwilioMessage};

/// One route's account: the central Twilio account, Beem's or Africa's Talking's, or, with no
/// Twilio account configured, the demo provider, which stands for the Twilio route, logs the
/// message as sent and sends nothing (credits are charged as for real).
#[derive(Clone)]
pub enum SmsGateway {
    Twilio(Box<TwilioClient>),
    Beem(Box<Grouped<BeemClient>>),
    AfricasTalking(Box<Grouped<AfricasTalkingClient>>),
    Demo,
}

impl BulkClient for BeemClient {
    const STEP: &'static str = "beem_send";

    fn send_bulk(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> impl Future<Output = Result<Vec<(MessageId, bulk::RecipientAnswer)>, bulk::BulkError>> + Send
    {
        self.send(recipients, body)
    }

    fn account(&self) -> &str {
        self.account()
    }

    fn timeout(&self) -> std::time::Duration {
        self.timeout()
    }
}

impl BulkClient for AfricasTalkingClient {
    const STEP: &'static str = "africastalking_send";

    fn send_bulk(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> impl Future<Output = Result<Vec<(MessageId, bulk::RecipientAnswer)>, bulk::BulkError>> + Send
    {
        self.send(recipients, body)
    }

    fn account(&self) -> &str {
        self.account()
    }

    fn timeout(&self) -> std::time::Duration {
        self.timeout()
    }
}

/// The prefix of a Beem account as recorded on a message (`provider_account`).
const BEEM_ACCOUNT: &str = "beem:";
/// The prefix of an Africa's Talking account as recorded on a message.
const AT_ACCOUNT: &str = "africastalking:";

impl SmsGateway {
    /// Beem, its sends grouped (`grouped`), at most `in_flight` requests at once fleet-wide.
    pub fn beem(client: BeemClient, in_flight: u32) -> Self {
        SmsGateway::Beem(Box::new(Grouped::new(client, in_flight)))
    }

    /// Africa's Talking, its sends grouped (`grouped`), at most `in_flight` requests at once
    /// fleet-wide.
    pub fn africastalking(client: AfricasTalkingClient, in_flight: u32) -> Self {
        SmsGateway::AfricasTalking(Box::new(Grouped::new(client, in_flight)))
    }

    /// Whether the send path takes each message's lease in flight (`pacing`'s leases):
    /// Twilio's, one message per request. A bulk route's runner takes one per grouped request.
    pub fn leases_requests(&self) -> bool {
        matches!(self, SmsGateway::Twilio(_))
    }

    /// `provider` as stored on the message.
    pub fn name(&self) -> &'static str {
        match self {
            SmsGateway::Twilio(_) => "twilio",
            SmsGateway::Beem(_) => "beem",
            SmsGateway::AfricasTalking(_) => "africastalking",
            SmsGateway::Demo => "demo",
        }
    }

    /// The route this account serves.
    pub fn route(&self) -> RouteName {
        match self {
            SmsGateway::Twilio(_) | SmsGateway::Demo => RouteName::Twilio,
            SmsGateway::Beem(_) => RouteName::Beem,
            SmsGateway::AfricasTalking(_) => RouteName::Africastalking,
        }
    }

    /// The provider account messages go through, as recorded on each message before its
    /// request leaves: a Twilio account SID, `beem:<key fingerprint>`,
    /// `africastalking:<username>`; none for the demo.
    pub fn account(&self) -> Option<&str> {
        match self {
            SmsGateway::Twilio(c) => Some(c.account_sid()),
            SmsGateway::Beem(c) => Some(c.client().account()),
            SmsGateway::AfricasTalking(c) => Some(c.client().account()),
            SmsGateway::Demo => None,
        }
    }

    /// The route an account recorded on a message belongs to.
    pub fn route_of_account(account: &str) -> RouteName {
        if account.starts_with(BEEM_ACCOUNT) {
            RouteName::Beem
        } else if account.starts_with(AT_ACCOUNT) {
            RouteName::Africastalking
        } else {
            RouteName::Twilio
        }
    }

    /// The fingerprint of the credentials in use (`pause::fingerprint`).
    pub fn credentials(&self) -> Option<&str> {
        match self {
            SmsGateway::Twilio(c) => Some(c.credentials()),
            SmsGateway::Beem(c) => Some(c.client().credentials()),
            SmsGateway::AfricasTalking(c) => Some(c.client().credentials()),
            SmsGateway::Demo => None,
        }
    }

    /// The secret segment of the route's delivery-report URL, where the provider's reports are
    /// unsigned (Beem, Africa's Talking); `None` for Twilio, whose reports are signed.
    pub fn report_token(&self) -> Option<String> {
        match self {
            SmsGateway::Beem(c) => Some(c.client().report_token()),
            SmsGateway::AfricasTalking(c) => Some(c.client().report_token()),
            SmsGateway::Twilio(_) | SmsGateway::Demo => None,
        }
    }

    /// Whether `given` is the route's delivery-report token (compared in constant time).
    pub fn report_token_matches(&self, given: &str) -> bool {
        match self {
            SmsGateway::Beem(c) => c.client().report_token_matches(given),
            SmsGateway::AfricasTalking(c) => c.client().report_token_matches(given),
            SmsGateway::Twilio(_) | SmsGateway::Demo => false,
        }
    }

    /// Checks that the provider accepts our credentials (the demo always does).
    pub async fn check_credentials(&self) -> Result<(), SendError> {
        match self {
            SmsGateway::Twilio(c) => c.check_account().await.map_err(SendError::from),
            SmsGateway::Beem(c) => c
                .client()
                .check_credentials()
                .await
                .map_err(SendError::from),
            SmsGateway::AfricasTalking(c) => {
                (c.client().check_credentials().await).map_err(SendError::from)
            }
            SmsGateway::Demo => Ok(()),
        }
    }

    /// The key of the account-wide send rate (one per sender).
    pub fn rate_key(&self) -> String {
        match self {
            SmsGateway::Twilio(c) => format!("twilio:{}:{}", c.account_sid(), c.sender().key()),
            SmsGateway::Beem(c) => {
                let c = c.client();
                format!("{}:{}", c.account(), c.source_addr())
            }
            SmsGateway::AfricasTalking(c) => {
                let c = c.client();
                format!("{}:{}", c.account(), c.sender_id().unwrap_or("-"))
            }
            SmsGateway::Demo => "demo".into(),
        }
    }

    /// The longest a send can be in flight: once an attempt is older than this, the run that
    /// made it has its answer or has given up on it.
    pub fn longest_send(&self) -> std::time::Duration {
        match self {
            SmsGateway::Twilio(c) => c.timeout(),
            SmsGateway::Beem(c) => c.client().timeout(),
            SmsGateway::AfricasTalking(c) => c.client().timeout(),
            // Nothing to wait for, but two overlapping runs still must not both log a send.
            SmsGateway::Demo => std::time::Duration::from_secs(5),
        }
    }

    /// [`RouteName::can_be_asked`] of its route.
    pub fn can_be_asked(&self) -> bool {
        self.route().can_be_asked()
    }

    /// Sends `message`'s `body` to `to` (through a bulk route, in the next group, whose request
    /// takes its lease in flight through `pacer`).
    pub async fn send(
        &self,
        message: MessageId,
        to: &E164,
        body: &str,
        pacer: &Pacer,
    ) -> Result<Sent, SendError> {
        let recipient = || Recipient {
            message,
            to: to.clone(),
        };
        match self {
            SmsGateway::Twilio(c) => c
                .send(message, to, body)
                .await
                .map(|m| Sent::from(&m))
                .map_err(SendError::from),
            SmsGateway::Beem(c) => c.send(recipient(), body, pacer).await,
            SmsGateway::AfricasTalking(c) => c.send(recipient(), body, pacer).await,
            SmsGateway::Demo => {
                tracing::info!(to = %to, "demo provider: message logged as sent, nothing left the machine");
                Ok(Sent {
                    provider_id: format!("DM{}", uuid::Uuid::new_v4().simple()),
                    segments: Some(Segments::count(body).count),
                    price: None,
                    price_currency: None,
                })
            }
        }
    }

    /// The provider's message `sid` now (for the price it reports once final); `None` from
    /// every route but Twilio (the bulk providers report their price with the send, the demo
    /// provider charges the platform nothing).
    pub async fn fetch_message(&self, sid: &str) -> Result<Option<TwilioMessage>, TwilioError> {
        match self {
            SmsGateway::Twilio(c) => c.fetch_message(sid).await.map(Some),
            _ => Ok(None),
        }
    }

    /// Messages the provider holds to `to` since `since` (reconciliation of an unanswered
    /// send); `None` where the provider cannot list them (Beem and Africa's Talking: an
    /// unanswered send there waits for its delivery report).
    pub async fn messages_to(
        &self,
        to: &E164,
        since: DateTime<Utc>,
    ) -> Result<Option<Vec<TwilioMessage>>, SendError> {
        match self {
            SmsGateway::Twilio(c) => c.messages_to(to, since).await.map(Some).map_err(Into::into),
            SmsGateway::Demo => Ok(Some(Vec::new())),
            SmsGateway::Beem(_) | SmsGateway::AfricasTalking(_) => Ok(None),
        }
    }
}
