//! `SweepOverdueDebts { company_id?, run? }`: one overdue-debt sweep ([`crate::sweeps`]), and
//! the cron that enqueues one on each tick (for `copcca-sms schedule`).

use apalis::prelude::Data;
use copcca_jobs::{Job, SweepOverdueDebts};

use super::Deps;
use crate::messages::batch::BatchError;
use crate::queue::{JobError, JobResultExt, QueueError, Queues, cron};
use crate::sweeps::{self, SweepReport};

pub async fn sweep_overdue_debts(job: SweepOverdueDebts, deps: Data<Deps>) -> Result<(), JobError> {
    let report = sweep(&deps, &job).await.retry()?;
    tracing::info!(run = %report.run, companies = report.companies, reminded = report.reminded,
        refused = report.refused, "overdue-debt sweep done");
    Ok(())
}

/// Runs the sweep `job` describes, at the time of `deps`' clock. Safe to run any number of
/// times, concurrently too.
pub async fn sweep(deps: &Deps, job: &SweepOverdueDebts) -> Result<SweepReport, BatchError> {
    sweeps::sweep(&deps.pool, &deps.queues, job, (deps.clock)()).await
}

/// Enqueues a sweep of every company on each tick of `schedule` (cron, seconds first, UTC)
/// until `stop`, once per fleet however many schedulers run; the tick names the run.
pub async fn schedule(
    queues: &Queues,
    schedule: &str,
    stop: impl std::future::Future<Output = ()>,
) -> Result<u64, QueueError> {
    let make = |tick: u64| SweepOverdueDebts {
        company_id: None,
        run: Some(format!("cron:{tick}")),
    };
    cron::run(queues, SweepOverdueDebts::NAME, schedule, make, stop).await
}
