//! `SendSms { message_id }`: the send flow of `messages::send` (DESIGN.md section 5), run as a
//! job. Job in, outcome out: the flow says whether the queue retries, snoozes or gives up.

use apalis::prelude::{Attempt, Data};
use copcca_jobs::SendSms;

use super::Deps;
use crate::domain::MessageId;
use crate::messages::send::{self, Sending};
use crate::queue::JobError;
use crate::routing::SmsRoutes;
use crate::telemetry::{self, Subject};

pub async fn send_sms(job: SendSms, attempt: Attempt, deps: Data<Deps>) -> Result<(), JobError> {
    let id = MessageId(job.message_id);
    telemetry::record_subject(Subject::Message(id));
    // One snapshot of the providers for the whole run: one send, one account per route.
    let providers = deps.providers.current();
    send::send(&deps.sending(&providers.sms), id, attempt.current() as u32).await
}

impl Deps {
    /// What the send flow needs, borrowed from the workers' dependencies and a snapshot of the
    /// providers in force.
    pub fn sending<'a>(&'a self, routes: &'a SmsRoutes) -> Sending<'a> {
        Sending {
            pool: &self.pool,
            routes,
            tables: &self.routing,
            circuits: &self.circuits,
            gateway: &routes.twilio,
            failover: false,
            pauses: &self.pauses,
            resend_unanswered_after: self.twilio_timing.resend_unanswered_after,
            limiter: &self.limiter,
            pacer: &self.pacer,
            paces: &self.paces,
            pace: self.paces.twilio,
            max_in_flight: self.max_in_flight,
            hold_ttl: self.hold_ttl,
            clock: &*self.clock,
            steps: &self.steps,
        }
    }
}
