//! `SendSms { message_id }`: the send flow of `messages::send` (DESIGN.md section 5), run as a
//! job. Job in, outcome out: the flow says whether the queue retries, snoozes or gives up.

use apalis::prelude::{Attempt, Data};
use copcca_jobs::SendSms;

use super::Deps;
use crate::domain::MessageId;
use crate::messages::send::{self, Sending};
use crate::queue::JobError;
use crate::telemetry::{self, Subject};

pub async fn send_sms(job: SendSms, attempt: Attempt, deps: Data<Deps>) -> Result<(), JobError> {
    let id = MessageId(job.message_id);
    telemetry::record_subject(Subject::Message(id));
    send::send(&deps.sending(), id, attempt.current() as u32).await
}

impl Deps {
    /// What the send flow needs, borrowed from the workers' dependencies.
    pub fn sending(&self) -> Sending<'_> {
        Sending {
            pool: &self.pool,
            gateway: &self.gateway,
            limiter: &self.limiter,
            account_rate: self.account_rate,
            hold_ttl: self.hold_ttl,
            clock: &*self.clock,
            steps: &self.steps,
        }
    }
}
