//! `Refund { message_id, reason }`: give a failed message's credits back, exactly once however
//! often it runs. A message that failed before it was charged only has a hold: release it.

use apalis::prelude::Data;
use copcca_jobs::Refund;

use super::Deps;
use crate::domain::MessageId;
use crate::faults;
use crate::ledger::{self, LedgerError};
use crate::queue::{JobError, JobResultExt};
use crate::telemetry::{self, Subject};

pub async fn refund(job: Refund, deps: Data<Deps>) -> Result<(), JobError> {
    let message = MessageId(job.message_id);
    telemetry::record_subject(Subject::Message(message));
    match ledger::refund(
        &mut *deps.pool.acquire().await?,
        message,
        job.reason.as_str(),
        "refund_job",
    )
    .await
    {
        Ok(r) => {
            if !r.replay {
                tracing::info!(%message, credits = r.value.credits, reason = job.reason.as_str(), "refunded");
            }
        }
        Err(LedgerError::NotCharged(_)) => {
            if let Some(hold) = ledger::active_hold(&deps.pool, message).await? {
                ledger::release(&mut *deps.pool.acquire().await?, hold.id)
                    .await
                    .retry()?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    faults::point!(faults::REFUND_AFTER_REFUND);
    Ok(())
}
