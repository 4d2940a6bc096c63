use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::{CompanyId, Country, Currency, TimeZone};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub country: Country,
    #[sqlx(try_from = "String")]
    pub currency: Currency,
    #[sqlx(try_from = "String")]
    pub timezone: TimeZone,
    pub sms_per_hour: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, country, currency, timezone, sms_per_hour, created_at";

/// Creates a company with an empty balance (both in one transaction).
pub async fn create_company(
    pool: &PgPool,
    name: &str,
    country: Country,
) -> Result<Company, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let company: Company = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO companies (id, name, country, currency, timezone) VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    )))
    .bind(CompanyId::new())
    .bind(name.trim())
    .bind(country.code())
    .bind(country.currency().code())
    .bind(country.default_timezone())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO balances (company_id) VALUES ($1)")
        .bind(company.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(company)
}

pub async fn find_company(pool: &PgPool, id: CompanyId) -> Result<Option<Company>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM companies WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}
