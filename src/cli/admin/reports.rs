//! `admin report ...`: reports for the operator, as JSON or CSV.

use std::process::ExitCode;

use clap::Subcommand;

use super::{parse, to_value};
use crate::config::Config;
use crate::db;
use crate::domain::CompanyId;
use crate::reports::revenue::{self, GroupBy, RevenueQuery};

#[derive(Debug, Subcommand)]
pub(super) enum ReportCommand {
    /// Revenue and margin per day or month and company (UTC days, both included): credits sold,
    /// money received per currency, messages, provider cost, refunds, margin per currency.
    Revenue {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day, YYYY-MM-DD (included).
        #[arg(long)]
        to: chrono::NaiveDate,
        #[arg(long, default_value = "day", value_parser = parse::<GroupBy>)]
        group_by: GroupBy,
        #[arg(long)]
        company: Option<CompanyId>,
        /// Print CSV instead (header first), whatever --json says.
        #[arg(long)]
        csv: bool,
    },
}

impl ReportCommand {
    /// `--csv`: the report goes to stdout as CSV, whatever `--json` says.
    pub(super) fn csv(&self) -> bool {
        match self {
            ReportCommand::Revenue { csv, .. } => *csv,
        }
    }
}

pub(super) async fn execute(
    pool: &sqlx::PgPool,
    command: ReportCommand,
) -> anyhow::Result<serde_json::Value> {
    let ReportCommand::Revenue {
        from,
        to,
        group_by,
        company,
        csv: _,
    } = command;
    Ok(to_value(
        &revenue_report(pool, from, to, group_by, company).await?,
    ))
}

/// `admin report revenue --csv`: the report as CSV on stdout (errors on stderr, exit 1).
pub(super) async fn print_csv(config: &Config, command: ReportCommand) -> anyhow::Result<ExitCode> {
    let ReportCommand::Revenue {
        from,
        to,
        group_by,
        company,
        ..
    } = command;
    let pool = db::migrate(&config.database_url, &config.database_schema).await?;
    let report = revenue_report(&pool, from, to, group_by, company).await?;
    print!("{}", revenue::to_csv(&report)?);
    Ok(ExitCode::SUCCESS)
}

async fn revenue_report(
    pool: &sqlx::PgPool,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    group_by: GroupBy,
    company: Option<CompanyId>,
) -> anyhow::Result<revenue::RevenueReport> {
    let query = RevenueQuery {
        from,
        to,
        group_by,
        company,
    };
    query
        .check()
        .map_err(|(field, message)| anyhow::anyhow!("--{}: {message}", field.replace('_', "-")))?;
    Ok(revenue::revenue(pool, &query).await?)
}
