//! Overdue-debt sweeps: for each company with sweeps enabled, the debts due a reminder
//! ([`debts`]) are rendered from the `payment_reminder` template in the debt's language and
//! sent as one batch, through the same code as `POST /v1/messages/batch`. The job that runs a
//! sweep is `workers::sweep_overdue_debts`.
//!
//! Once per run: the debts are claimed (reminder count and time) in the same transaction as
//! the batch's messages, and a debt already reminded in this run, or within the company's
//! interval, cannot be claimed again. Two schedulers, a retried job or an operator's re-run
//! remind nobody twice. Reminders respect quiet hours (the send job holds them until morning).

pub mod debts;

use chrono::{DateTime, Utc};
use copcca_jobs::SweepOverdueDebts;
use sqlx::PgPool;

use self::debts::{DueDebt, SweepSettings};
use crate::accounts;
use crate::domain::CompanyId;
use crate::faults;
use crate::ledger;
use crate::messages::batch::{self, BatchError, BatchItem, Content, MAX_BATCH, NewBatch};
use crate::messages::rates;
use crate::queue::Queues;
use crate::templates::{Language, PAYMENT_REMINDER, Vars};

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub run: String,
    pub companies: usize,
    /// Reminders written and enqueued.
    pub reminded: usize,
    /// Debts due a reminder that could not get one (bad number, opted out, missing value,
    /// credits short); each is logged with its reason.
    pub refused: usize,
    pub batches: Vec<uuid::Uuid>,
}

/// Runs the sweep `job` describes at `now`. Safe to run any number of times, concurrently too.
pub async fn sweep(
    pool: &PgPool,
    queues: &Queues,
    job: &SweepOverdueDebts,
    now: DateTime<Utc>,
) -> Result<SweepReport, BatchError> {
    let run = run_name(job, now);
    let mut report = SweepReport {
        run: run.clone(),
        ..Default::default()
    };
    let mut failed = None;
    for settings in debts::sweeping(pool, job.company_id.map(CompanyId)).await? {
        report.companies += 1;
        // One company's failure must not hold up the others; the retry redoes only what is left.
        if let Err(e) = sweep_company(pool, queues, &settings, &run, now, &mut report).await {
            tracing::warn!(company = %settings.company_id, run = %run, error = %e, "sweep failed for company");
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The job's run, or the current UTC day.
fn run_name(job: &SweepOverdueDebts, now: DateTime<Utc>) -> String {
    job.run
        .clone()
        .unwrap_or_else(|| format!("day:{}", now.date_naive()))
}

async fn sweep_company(
    pool: &PgPool,
    queues: &Queues,
    settings: &SweepSettings,
    run: &str,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), BatchError> {
    let Some(company) = accounts::find_company(pool, settings.company_id).await? else {
        return Ok(());
    };
    let today = now.with_timezone(&settings.timezone.tz()).date_naive();
    let due = debts::due(pool, settings, today, now, MAX_BATCH).await?;
    if due.is_empty() {
        return Ok(());
    }
    let items = due.iter().map(reminder).collect();
    // Read afresh: a sweep is rare, and prices what it sends as the card is now.
    let card = rates::load(pool).await?;
    let mut prepared = batch::prepare(pool, &card, &company, items).await?;
    prepared.annotate_rejected(|r| format!("debt {}: {}", due[r.index].id, r.detail));
    let available = ledger::balance(pool, company.id).await?.available.get();
    prepared.fit_credits(available, true)?;

    let mut tx = pool.begin().await?;
    let claimed = debts::claim(&mut tx, settings, &prepared.debt_ids(), run, now).await?;
    prepared.retain_debts(&claimed);
    for r in prepared.rejected() {
        tracing::warn!(company = %company.id, run, code = %r.code, detail = %r.detail, "debt not reminded");
    }
    report.refused += prepared.rejected().len();
    if prepared.accepted() == 0 {
        return Ok(()); // nothing of ours to write; the transaction rolls back
    }
    let header = NewBatch {
        allow_partial: true,
        idempotency_key: None,
        sender: "sweep",
        sweep_run: Some(run),
    };
    let written = batch::write(&mut tx, company.id, &prepared, &header)
        .await?
        .expect("a batch without an idempotency key cannot conflict");
    tx.commit().await?;
    faults::point!(faults::SWEEP_AFTER_CLAIM);
    batch::enqueue(queues, &written).await;
    tracing::info!(company = %company.id, run, batch = %written.batch_id, reminders = written.message_ids.len(), "debts reminded");
    report.reminded += written.message_ids.len();
    report.batches.push(written.batch_id);
    Ok(())
}

/// The reminder of one debt: the `payment_reminder` template in the debt's language, with the
/// debt's values (the company fills in its name, and its payment link if the debt has none).
fn reminder(debt: &DueDebt) -> BatchItem {
    let mut vars = Vars::new();
    vars.insert("customer_name".into(), debt.customer_name.clone());
    vars.insert("amount".into(), debt.amount.to_string());
    vars.insert("currency".into(), debt.currency.clone());
    vars.insert("due_date".into(), debt.due_date.to_string());
    if let Some(n) = &debt.invoice_number {
        vars.insert("invoice_number".into(), n.clone());
    }
    if let Some(l) = &debt.payment_link {
        vars.insert("payment_link".into(), l.clone());
    }
    BatchItem {
        to: debt.phone.clone(),
        content: Content::Template {
            name: PAYMENT_REMINDER.into(),
            language: debt.language.parse().unwrap_or(Language::En),
            vars,
        },
        debt_id: Some(debt.id),
        invoice_number: debt.invoice_number.clone(),
    }
}
