//! The routing table in PostgreSQL (`sms_routes`, migration 0029), replaced whole with its
//! history.

use sqlx::PgPool;

use super::{RouteName, RouteRule, RoutingTable};
use crate::db::cached::Cached;
use crate::domain::CompanyId;

/// Reads the table.
pub async fn load(pool: &PgPool) -> Result<RoutingTable, sqlx::Error> {
    read(&mut *pool.acquire().await?).await
}

async fn read(conn: &mut sqlx::PgConnection) -> Result<RoutingTable, sqlx::Error> {
    let rows: Vec<(String, Option<CompanyId>, Vec<String>)> =
        sqlx::query_as("SELECT destination, company_id, routes FROM sms_routes ORDER BY position")
            .fetch_all(conn)
            .await?;
    let rules = rows
        .into_iter()
        .map(|(destination, company_id, routes)| RouteRule {
            destination,
            company_id,
            // The column's CHECK admits only route names.
            routes: routes
                .iter()
                .filter_map(|r| r.parse::<RouteName>().ok())
                .collect(),
        })
        .collect();
    Ok(RoutingTable { rules })
}

/// Why a table was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error("rule {0}: no such company")]
    UnknownCompany(usize),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Replaces the table with `table` (already validated) and records the change by `actor`, in
/// one transaction; the table before. A rule for a company that does not exist is refused.
pub async fn replace(
    pool: &PgPool,
    table: &RoutingTable,
    actor: &str,
) -> Result<RoutingTable, ReplaceError> {
    let mut tx = pool.begin().await?;
    let named: Vec<CompanyId> = table.rules.iter().filter_map(|r| r.company_id).collect();
    let known: Vec<CompanyId> = sqlx::query_scalar("SELECT id FROM companies WHERE id = ANY($1)")
        .bind(&named)
        .fetch_all(&mut *tx)
        .await?;
    if let Some(i) = table
        .rules
        .iter()
        .position(|r| r.company_id.is_some_and(|c| !known.contains(&c)))
    {
        return Err(ReplaceError::UnknownCompany(i));
    }
    // One replacement at a time, so the history's before and after chain.
    sqlx::query("LOCK TABLE sms_routes IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let before = read(&mut tx).await?;
    sqlx::query("DELETE FROM sms_routes")
        .execute(&mut *tx)
        .await?;
    let n = table.rules.len();
    sqlx::query(
        "INSERT INTO sms_routes (position, destination, company_id, routes)
         SELECT position, destination, company_id, string_to_array(routes, ',')
         FROM unnest($1::int[], $2::text[], $3::uuid[], $4::text[])
              AS r(position, destination, company_id, routes)",
    )
    .bind((0..n as i32).collect::<Vec<_>>())
    .bind(
        table
            .rules
            .iter()
            .map(|r| r.destination.clone())
            .collect::<Vec<_>>(),
    )
    .bind(table.rules.iter().map(|r| r.company_id).collect::<Vec<_>>())
    .bind(
        table
            .rules
            .iter()
            .map(|r| {
                r.routes
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO sms_route_changes (actor, before, after) VALUES ($1, $2, $3)")
        .bind(actor)
        .bind(sqlx::types::Json(&before.rules))
        .bind(sqlx::types::Json(&table.rules))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(before)
}

/// The table as this process sees it, read again once older than its time to live
/// (`db::cached`).
#[derive(Clone)]
pub struct Tables {
    pool: PgPool,
    cached: Cached<RoutingTable>,
}

impl Tables {
    pub fn new(pool: PgPool, ttl: std::time::Duration) -> Self {
        Tables {
            pool,
            cached: Cached::new("the routing table", ttl),
        }
    }

    pub async fn table(&self) -> Result<std::sync::Arc<RoutingTable>, sqlx::Error> {
        self.cached.get(|| load(&self.pool)).await
    }

    /// Forgets the table held (after a change through this process).
    pub fn invalidate(&self) {
        self.cached.invalidate();
    }
}
