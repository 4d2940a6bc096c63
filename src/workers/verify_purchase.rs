//! `VerifyPurchase { payment_id, trigger }`: confirm a payment with its provider and credit it
//! (see `payments::verify`). A push M-Pesa is still processing snoozes and looks again; a
//! provider that cannot answer is retried with backoff (`errors`: `From<PaymentError>`); anything
//! else settles the job.

use apalis::prelude::Data;
use copcca_jobs::VerifyPurchase;

use super::Deps;
use crate::domain::PaymentId;
use crate::faults;
use crate::payments::{self, Verified};
use crate::queue::JobError;
use crate::telemetry::{self, Subject};

pub async fn verify_purchase(job: VerifyPurchase, deps: Data<Deps>) -> Result<(), JobError> {
    let payment = PaymentId(job.payment_id);
    telemetry::record_subject(Subject::Payment(payment));
    let verified =
        payments::verify(&deps.pool, &deps.providers.current().payments, payment).await?;
    if let Verified::Credited { replay: false, .. } = verified {
        faults::point!(faults::PURCHASE_AFTER_CREDIT);
    }
    match verified {
        Verified::Waiting {
            recheck_in: Some(after),
        } => Err(JobError::Snooze(after)),
        outcome => {
            tracing::debug!(%payment, trigger = job.trigger, ?outcome, "payment verified");
            Ok(())
        }
    }
}
