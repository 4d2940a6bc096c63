//! The bulk routes' report tokens over time. A route's report URL carries a token derived from
//! its secret (`bulk::report_token`), so a rotated secret (or a removed route) changes it while
//! the provider's portal still posts to the old URL until the operator updates it. A report
//! there is the only word on a message's delivery (and on whether it is refunded), so the token
//! a route served before is accepted for a grace period after it was replaced.
//!
//! Every process records the tokens it serves each time it loads its providers (at start and
//! on every settings change); a token is replaced from the moment a process serves another one
//! for its route, or none. Only a SHA-256 of each token is stored.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{RouteName, SmsRoutes};

/// The routes whose reports come to a token URL.
const TOKEN_ROUTES: [RouteName; 2] = [RouteName::Beem, RouteName::Africastalking];

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Records the tokens `routes` serve, and that every other token of those routes is replaced.
pub async fn serve(pool: &PgPool, routes: &SmsRoutes) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for route in TOKEN_ROUTES {
        let served = routes
            .get(route)
            .and_then(|g| g.report_token())
            .map(|t| digest(&t));
        if let Some(served) = &served {
            sqlx::query(
                "INSERT INTO report_tokens (route, token_sha256) VALUES ($1, $2)
                 ON CONFLICT (route, token_sha256) DO UPDATE SET replaced_at = NULL",
            )
            .bind(route.as_str())
            .bind(served)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE report_tokens SET replaced_at = now()
             WHERE route = $1 AND replaced_at IS NULL AND token_sha256 IS DISTINCT FROM $2",
        )
        .bind(route.as_str())
        .bind(served)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Whether `token` was `route`'s and was replaced less than `grace` ago (or is still served by
/// some process).
pub async fn recently_served(
    pool: &PgPool,
    route: RouteName,
    token: &str,
    grace: Duration,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM report_tokens WHERE route = $1 AND token_sha256 = $2
                         AND (replaced_at IS NULL OR replaced_at > now() - make_interval(secs => $3)))",
    )
    .bind(route.as_str())
    .bind(digest(token))
    .bind(grace.as_secs_f64())
    .fetch_one(pool)
    .await
}
