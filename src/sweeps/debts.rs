//! Overdue debts, as the CRM writes them in `debts`: which are due a reminder under a company's
//! sweep settings, and claiming them for one sweep run.
//!
//! A claim is a conditional update of the debt rows (locked in id order, so concurrent sweeps
//! never deadlock): a debt is claimed only if it is still open, under its reminder cap, not
//! reminded within the interval, and has no message of this run. Made in the same transaction
//! as the reminder messages, it makes "each debt reminded once per run" hold whatever runs
//! concurrently or is re-run after a crash.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool, Row};

use crate::domain::{CompanyId, TimeZone};

/// A company's sweep settings (`companies.sweep_*`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SweepSettings {
    pub company_id: CompanyId,
    #[sqlx(try_from = "String")]
    pub timezone: TimeZone,
    /// A debt is swept once it is overdue by at least this many days (N).
    pub min_overdue_days: i32,
    /// ...and was not reminded within this many days (M).
    pub interval_days: i32,
    /// ...and has had fewer reminders than this.
    pub max_reminders: i32,
}

/// The companies to sweep: those with sweeps enabled (only `company`, when given).
pub async fn sweeping(
    pool: &PgPool,
    company: Option<CompanyId>,
) -> Result<Vec<SweepSettings>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id AS company_id, timezone, sweep_min_overdue_days AS min_overdue_days,
                sweep_interval_days AS interval_days, sweep_max_reminders AS max_reminders
         FROM companies WHERE sweep_enabled AND ($1::uuid IS NULL OR id = $1) ORDER BY id",
    )
    .bind(company)
    .fetch_all(pool)
    .await?;
    // One company's unreadable settings (a time zone nobody knows) must not stop everyone's
    // sweep, nor be guessed: it is skipped, loudly.
    Ok(rows
        .iter()
        .filter_map(|row| match SweepSettings::from_row(row) {
            Ok(settings) => Some(settings),
            Err(e) => {
                let company: Option<CompanyId> = row.try_get("company_id").ok();
                tracing::error!(alert = true, ?company, error = %e, "sweep skips a company whose settings do not decode");
                None
            }
        })
        .collect())
}

/// A debt due a reminder.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDebt {
    pub id: uuid::Uuid,
    pub customer_name: String,
    /// As the CRM wrote it: E.164 or a local number of the company's country.
    pub phone: String,
    pub amount: Decimal,
    pub currency: String,
    pub due_date: NaiveDate,
    pub invoice_number: Option<String>,
    /// `en` or `sw`.
    pub language: String,
    pub payment_link: Option<String>,
}

/// Up to `limit` debts due a reminder on `today` (the company's local date) at `now`, the most
/// overdue first.
pub async fn due(
    pool: &PgPool,
    settings: &SweepSettings,
    today: NaiveDate,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<DueDebt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, customer_name, phone, amount, currency, due_date, invoice_number, language, payment_link
         FROM debts
         WHERE company_id = $1 AND status = 'open'
           AND due_date <= $2::date - $3::int
           AND reminders_sent < $4
           AND (last_reminded_at IS NULL OR last_reminded_at <= $5 - make_interval(days => $6))
         ORDER BY due_date, id
         LIMIT $7",
    )
    .bind(settings.company_id)
    .bind(today)
    .bind(settings.min_overdue_days)
    .bind(settings.max_reminders)
    .bind(now)
    .bind(settings.interval_days)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
}

/// Claims `debts` for sweep run `run` inside the caller's transaction: counts the reminder and
/// stamps it `now`. Returns the debts claimed; the others were claimed by a concurrent or
/// earlier run (or paid meanwhile) and must not be reminded.
pub async fn claim(
    conn: &mut PgConnection,
    settings: &SweepSettings,
    debts: &[uuid::Uuid],
    run: &str,
    now: DateTime<Utc>,
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    // A separate statement: the update below then reads every row as last committed.
    sqlx::query(
        "SELECT id FROM debts WHERE company_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
    )
    .bind(settings.company_id)
    .bind(debts)
    .execute(&mut *conn)
    .await?;
    let claimed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE debts d SET reminders_sent = reminders_sent + 1, last_reminded_at = $3
         WHERE d.company_id = $1 AND d.id = ANY($2) AND d.status = 'open'
           AND d.reminders_sent < $4
           AND (d.last_reminded_at IS NULL OR d.last_reminded_at <= $3 - make_interval(days => $5))
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.debt_id = d.id AND m.sweep_run = $6)
         RETURNING d.id",
    )
    .bind(settings.company_id)
    .bind(debts)
    .bind(now)
    .bind(settings.max_reminders)
    .bind(settings.interval_days)
    .bind(run)
    .fetch_all(&mut *conn)
    .await?;
    Ok(claimed.into_iter().collect())
}
