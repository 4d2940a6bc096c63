//! What must not grow with the tables (issue 17, `cargo bench --bench growth` measures it): the
//! message listing walks an index in its own order, the reconciler's pass reads only what is
//! still open, and `/metrics` reads counters kept as the tables change instead of counting them.

mod counters;
mod reads;
mod reconciler;

use sqlx::PgPool;

/// Brings the planner's statistics of `messages` up to date after a test wrote its history (as
/// autovacuum would on a real table).
async fn analyze_messages(pool: &PgPool) {
    sqlx::query("ANALYZE messages").execute(pool).await.unwrap();
}
