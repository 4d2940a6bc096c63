#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// A job payload: what it is called, which queue carries it and how often a
/// worker may try it before giving up.
///
/// Implementors are plain data. The handler that runs a job lives in the
/// `copcca-sms` binary; it must be idempotent, since every job may be
/// delivered more than once.
pub trait Job: Serialize + DeserializeOwned + JsonSchema {
    /// Stable name of the job, snake_case. Used as the job type on the queue
    /// and as the schema file name (`jobs/schemas/<NAME>.json`); renaming it
    /// strands jobs already enqueued.
    const NAME: &'static str;
    /// Queue the job is pushed to. Each kind of work has its own queue so
    /// that a backlog of one (say, a large reminder batch) does not delay
    /// another (crediting a payment).
    const QUEUE: &'static str;
    /// Attempts (the first one included) before the job is given up.
    const MAX_ATTEMPTS: u32;
    /// Names the unit of work: two payloads with the same key ask for the
    /// same effect, so a producer may drop the second and a log line can
    /// tie retries together.
    fn idempotency_key(&self) -> String;
}

/// Confirm a payment with its provider (M-Pesa, Stripe, or an operator's
/// approval of a bank transfer) and, if it succeeded, credit the company.
///
/// Guarantee: the company is credited at most once per payment, however
/// often the job runs; the `payments` row (its status) is the truth, and a
/// payment already credited or already failed makes the job a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPurchase {
    /// Id of the payment row to verify.
    pub payment_id: Uuid,
    /// What asked for the check (`mpesa_callback`, `stripe:<event id>`, `approval`,
    /// `sweep:<tick>`). Each trigger is its own unit of work: a Stripe session first seen
    /// unpaid must be looked at again when its `async_payment_succeeded` event arrives.
    #[serde(default)]
    pub trigger: String,
}

/// Send one SMS: rate limit, reserve the credits, hand it to Twilio, then
/// commit the reservation (accepted) or release it (rejected), and log.
///
/// Guarantee: the message is handed to Twilio at most once and charged at
/// most once; the `messages` row (its status) is the truth. A message that
/// is `sent` or final makes the job a no-op; a `sending` one (an earlier
/// run got no answer, or died) is first looked up at Twilio and adopted if
/// Twilio has it, and only sent again if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// Id of the message row to send.
    pub message_id: Uuid,
}

/// Give back the credits of a message that failed after it was charged.
///
/// Guarantee: a message is refunded at most once, whatever the reason and
/// however many refund jobs name it; the ledger entry for the message's
/// refund is the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// Id of the message whose credits go back.
    pub message_id: Uuid,
    /// Why the credits go back; recorded with the refund.
    pub reason: RefundReason,
}

/// Why a message's credits are given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// Twilio reported the message `failed`.
    Failed,
    /// Twilio reported the message `undelivered`.
    Undelivered,
    /// The platform operator refunded it by hand.
    Operator,
    /// The reconciler found a charged message that never went out.
    Reconciler,
}

impl RefundReason {
    /// The wire (and database) spelling, the same as its JSON form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Undelivered => "undelivered",
            Self::Operator => "operator",
            Self::Reconciler => "reconciler",
        }
    }
}

impl std::fmt::Display for RefundReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Find overdue debts and enqueue reminder messages from the companies'
/// templates.
///
/// Guarantee: a debt gets at most one reminder per sweep run and per
/// reminder period, however often the sweep runs or is retried; the
/// messages and the debt's reminder count, written in one transaction, are
/// the truth. Two jobs with the same `run` (two schedulers, a retry after a
/// crash) remind each debt once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepOverdueDebts {
    /// Company to sweep; absent or null means every company that has
    /// sweeps enabled.
    #[serde(default)]
    pub company_id: Option<Uuid>,
    /// Names this sweep run: the scheduler's tick (`cron:<unix seconds>`)
    /// or an operator's id. Absent or null means the current UTC day
    /// (`day:<YYYY-MM-DD>`), so a producer that sets none still sweeps a
    /// debt at most once a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Job for VerifyPurchase {
    const NAME: &'static str = "verify_purchase";
    const QUEUE: &'static str = "purchases";
    const MAX_ATTEMPTS: u32 = 10;
    fn idempotency_key(&self) -> String {
        format!("{}:{}:{}", Self::NAME, self.payment_id, self.trigger)
    }
}

impl Job for SendSms {
    const NAME: &'static str = "send_sms";
    const QUEUE: &'static str = "sms";
    const MAX_ATTEMPTS: u32 = 8;
    fn idempotency_key(&self) -> String {
        format!("{}:{}", Self::NAME, self.message_id)
    }
}

impl Job for Refund {
    const NAME: &'static str = "refund";
    const QUEUE: &'static str = "refunds";
    const MAX_ATTEMPTS: u32 = 10;
    // The reason is left out on purpose: a message is refunded once, so a
    // Twilio callback and the reconciler naming it are the same work.
    fn idempotency_key(&self) -> String {
        format!("{}:{}", Self::NAME, self.message_id)
    }
}

impl Job for SweepOverdueDebts {
    const NAME: &'static str = "sweep_overdue_debts";
    const QUEUE: &'static str = "sweeps";
    const MAX_ATTEMPTS: u32 = 3;
    // The run is part of the key: a new run (say, an operator's) is new
    // work, the same run enqueued twice is not.
    fn idempotency_key(&self) -> String {
        let scope = match self.company_id {
            Some(id) => id.to_string(),
            None => "all".to_owned(),
        };
        match &self.run {
            Some(run) => format!("sweep:{scope}:{run}"),
            None => format!("sweep:{scope}"),
        }
    }
}

fn schema_of<J: Job>() -> (&'static str, serde_json::Value) {
    (J::NAME, schemars::schema_for!(J).to_value())
}

/// `(Job::NAME, JSON Schema)` for every job, in a fixed order.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        schema_of::<VerifyPurchase>(),
        schema_of::<SendSms>(),
        schema_of::<Refund>(),
        schema_of::<SweepOverdueDebts>(),
    ]
}

/// `(file name, exact contents)` of each file under `jobs/schemas/`: the
/// schema as pretty JSON with a trailing newline. Shared by the exporter and
/// the test that checks the committed files, so the two cannot disagree.
pub fn schema_files() -> Vec<(String, String)> {
    schemas()
        .into_iter()
        .map(|(name, schema)| {
            let mut text = serde_json::to_string_pretty(&sort_keys(schema))
                .expect("a JSON value always serializes");
            text.push('\n');
            (format!("{name}.json"), text)
        })
        .collect()
}

/// Rebuilds every object with its keys in sorted order. serde_json's map is
/// sorted already unless some crate in the build turns on its
/// `preserve_order` feature (features unify across the workspace); sorting
/// here keeps the exported files byte-for-byte stable either way.
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
