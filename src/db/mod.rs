//! PostgreSQL: connecting (inside the configured schema), creating the database, migrating;
//! [`group_commit`] runs concurrent callers' statements as one.

pub mod group_commit;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres};

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

/// Creates the database named in `url` if it does not exist, then the schema, then applies every
/// pending migration. Safe to run concurrently from several processes (sqlx takes an advisory lock).
pub async fn migrate(url: &str, schema: &str) -> anyhow::Result<PgPool> {
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

/// Whether `e` may go away if the same statement is simply run again: a lost or refused
/// connection, a serialization failure or deadlock (class 40), a lock timeout, a cancelled
/// statement, the server restarting or short of resources. Not a constraint violation, a data
/// error or a raised exception: those answer the same every time.
pub fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            ["08", "40", "53", "57"]
                .iter()
                .any(|class| c.starts_with(class))
                || c == "55P03"
        }),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Test support: database errors with a chosen SQLSTATE, as sqlx reports PostgreSQL's.
#[cfg(test)]
pub(crate) mod testing {
    /// A database error with its SQLSTATE.
    #[derive(Debug)]
    pub struct Refused(pub &'static str);

    impl Refused {
        pub fn error(code: &'static str) -> sqlx::Error {
            sqlx::Error::Database(Box::new(Refused(code)))
        }
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused with SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Refused {}

    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            "refused"
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Refused;
    use super::*;

    #[test]
    fn only_errors_that_can_pass_are_transient() {
        for code in [
            "40001", "40P01", "55P03", "57014", "57P01", "08006", "53300",
        ] {
            assert!(transient(&Refused::error(code)), "{code}");
        }
        // Constraint violations, data errors and raised exceptions answer the same every time.
        for code in ["23505", "23514", "22003", "P0001", "42883"] {
            assert!(!transient(&Refused::error(code)), "{code}");
        }
        assert!(transient(&sqlx::Error::PoolTimedOut));
        assert!(!transient(&sqlx::Error::PoolClosed));
        assert!(!transient(&sqlx::Error::Protocol(
            "unexpected outcome".into()
        )));
    }
}
