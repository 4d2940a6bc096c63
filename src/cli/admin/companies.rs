//! `admin create-company`, `update-company`, `companies`, `company-changes`: a company's
//! settings and their recorded changes.

use clap::Subcommand;
use serde_json::json;

use super::{parse, to_value};
use crate::accounts;
use crate::config::Config;
use crate::domain::{CompanyId, Country};
use crate::messages::send::quota_changed;
use crate::queue::Queues;
use crate::ratelimit::RateLimiter;

#[derive(Debug, Subcommand)]
pub(super) enum CompanyCommand {
    /// Create a company (a tenant of the CRM) with an empty balance.
    CreateCompany {
        #[arg(long)]
        name: String,
        /// Home country: decides how local numbers are read and the default currency.
        #[arg(long, value_parser = parse::<Country>)]
        country: Country,
    },
    /// Change a company's settings; every change is recorded (who, when, before, after). A new
    /// quota applies at once, to the messages already waiting too.
    UpdateCompany {
        #[arg(long)]
        company: CompanyId,
        #[arg(long)]
        name: Option<String>,
        /// Messages per hour (1..=1000000).
        #[arg(long)]
        sms_per_hour: Option<i64>,
        /// An IANA time zone, e.g. Africa/Nairobi.
        #[arg(long)]
        timezone: Option<String>,
        /// HH:MM-HH:MM in the company's time zone, e.g. 21:00-08:00 (equal times: none).
        #[arg(long)]
        quiet_hours: Option<String>,
        /// on or off: overdue-debt sweeps for this company.
        #[arg(long, value_parser = on_off)]
        sweeps: Option<bool>,
    },
    /// List companies with their balances (creation order; a page at a time).
    Companies {
        /// Part of the name, or a whole company id.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// The previous page's next_after.
        #[arg(long)]
        after: Option<CompanyId>,
    },
    /// The recorded changes of a company's settings, newest first.
    CompanyChanges {
        #[arg(long)]
        company: CompanyId,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?} is not on or off")),
    }
}

pub(super) async fn execute(
    config: &Config,
    pool: &sqlx::PgPool,
    command: CompanyCommand,
) -> anyhow::Result<serde_json::Value> {
    match command {
        CompanyCommand::CreateCompany { name, country } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            Ok(to_value(
                &accounts::create_company(pool, &name, country).await?,
            ))
        }
        CompanyCommand::UpdateCompany {
            company,
            name,
            sms_per_hour,
            timezone,
            quiet_hours,
            sweeps,
        } => {
            let (quiet_hours_start, quiet_hours_end) = match quiet_hours {
                Some(window) => {
                    let (start, end) = window
                        .split_once('-')
                        .ok_or_else(|| anyhow::anyhow!("--quiet-hours looks like 21:00-08:00"))?;
                    (Some(start.to_string()), Some(end.to_string()))
                }
                None => (None, None),
            };
            let patch = accounts::CompanyPatch {
                name,
                sms_per_hour,
                timezone,
                quiet_hours_start,
                quiet_hours_end,
                sweep_enabled: sweeps,
            };
            let change = patch.validate().map_err(|errors| {
                let flag = |field: &str| match field {
                    "quiet_hours_start" | "quiet_hours_end" => "--quiet-hours".to_string(),
                    "sweep_enabled" => "--sweeps".to_string(),
                    "body" => "the command".to_string(),
                    f => format!("--{}", f.replace('_', "-")),
                };
                anyhow::anyhow!(
                    "{}",
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", flag(e.field), e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })?;
            let updated = accounts::update_company(pool, company, &change, "cli:admin")
                .await?
                .ok_or_else(|| anyhow::anyhow!("no company {company}"))?;
            let mut requeued = None;
            if let (true, Some(recorded)) = (change.sets_quota(), &updated.change) {
                let queues = Queues::connect(&config.redis_url, &config.redis_prefix).await?;
                let limiter = RateLimiter::new(queues.connection(), queues.prefix());
                let restart = quota_changed(pool, &queues, &limiter, company, recorded.id).await?;
                requeued = Some(restart.messages_requeued);
            }
            Ok(json!({
                "company": updated.company, "change": updated.change, "messages_requeued": requeued,
            }))
        }
        CompanyCommand::Companies {
            search,
            limit,
            after,
        } => {
            anyhow::ensure!((1..=1000).contains(&limit), "--limit must be 1..=1000");
            let search = search.as_deref().map(str::trim).filter(|s| !s.is_empty());
            let companies = accounts::list_companies(pool, search, after, limit).await?;
            let next_after = (companies.len() as i64 == limit)
                .then(|| companies.last().map(|c| c.company.id))
                .flatten();
            Ok(json!({ "companies": companies, "next_after": next_after }))
        }
        CompanyCommand::CompanyChanges { company, limit } => {
            anyhow::ensure!((1..=1000).contains(&limit), "--limit must be 1..=1000");
            anyhow::ensure!(
                accounts::find_company(pool, company).await?.is_some(),
                "no company {company}"
            );
            let changes = accounts::company_changes(pool, company, None, limit).await?;
            Ok(json!({ "company_id": company, "changes": changes }))
        }
    }
}
