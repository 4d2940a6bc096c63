//! PostgreSQL: connecting (inside the configured schema), creating the database, migrating;
//! [`group_commit`] runs concurrent callers' statements as one, [`sqlstate`] tells what an error
//! says about running a statement again, [`patiently`] waits out a transient one while recording
//! what a provider already did, [`fleet_counters`] keeps the counts `/metrics` reports.

pub mod cached;
pub mod fleet_counters;
pub mod group_commit;
mod patience;
pub mod sqlstate;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres};

pub use patience::patiently;
/// Test support: database errors with a chosen SQLSTATE.
#[cfg(test)]
pub(crate) use sqlstate::testing;
pub use sqlstate::transient;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects a pool whose sessions all use `schema` as their search path.
pub async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Why migrating failed: the database could not be created or reached, or a migration failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Creates the database named in `url` if it does not exist, then the schema, then applies every
/// pending migration. Safe to run concurrently from several processes (sqlx takes an advisory lock).
pub async fn migrate(url: &str, schema: &str) -> Result<PgPool, MigrateError> {
    if !Postgres::database_exists(url).await?
        && let Err(e) = Postgres::create_database(url).await
        // Another process may have created it in the meantime.
        && !Postgres::database_exists(url).await?
    {
        return Err(e.into());
    }
    let pool = connect(url, schema, 8).await?;
    // The schema name is validated by Config as a plain identifier, so quoting is enough here.
    pool.execute(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
    )))
    .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
