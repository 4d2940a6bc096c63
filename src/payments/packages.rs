//! SMS credit packages and their prices per currency.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::Currency;

/// A package as the API shows it: prices per currency as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Package {
    /// `starter`, `business`, `pro`, `enterprise` or `mega`.
    pub id: String,
    pub name: String,
    pub credits: i64,
    /// Currency code -> price, e.g. `{"USD": "8.00", "TZS": "20000.00"}`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub prices: BTreeMap<String, Decimal>,
}

/// Active packages in display order.
pub async fn list_packages(pool: &PgPool) -> Result<Vec<Package>, sqlx::Error> {
    type Row = (String, String, i64, Option<String>, Option<Decimal>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.id, p.name, p.credits, pr.currency, pr.amount
         FROM sms_packages p LEFT JOIN sms_package_prices pr ON pr.package_id = p.id
         WHERE p.active ORDER BY p.sort_order, p.id, pr.currency",
    )
    .fetch_all(pool)
    .await?;
    let mut packages: Vec<Package> = Vec::new();
    for (id, name, credits, currency, amount) in rows {
        if packages.last().is_none_or(|p| p.id != id) {
            packages.push(Package {
                id,
                name,
                credits,
                prices: BTreeMap::new(),
            });
        }
        if let (Some(currency), Some(amount), Some(p)) = (currency, amount, packages.last_mut()) {
            p.prices.insert(currency, amount);
        }
    }
    Ok(packages)
}

/// The credits of package `id`; `None` when no active package has that id.
pub async fn credits(pool: &PgPool, id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT credits FROM sms_packages WHERE id = $1 AND active")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The price of package `id` in `currency`; `None` when it is not sold in that currency.
pub async fn price(
    pool: &PgPool,
    id: &str,
    currency: Currency,
) -> Result<Option<Decimal>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT amount FROM sms_package_prices WHERE package_id = $1 AND currency = $2",
    )
    .bind(id)
    .bind(currency.code())
    .fetch_optional(pool)
    .await
}
