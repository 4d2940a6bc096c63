//! Beem's delivery-report pull. Beem posts its reports to the URL set in its portal; a report
//! that never comes (the portal's URL is wrong, the post failed, our service was down) would
//! leave the message `sent` until it is marked unconfirmed. So the reconciler asks Beem about
//! each such message, first after [`Pulls::after`] without a report and then ever further
//! apart, through the account that sent it.
//!
//! A pulled report goes where a pushed one goes: stored in the inbox as Beem would have pushed
//! it (under the same dedupe key, so a report pushed and pulled counts once) and applied by
//! [`reports::apply`], which moves only messages sent through Beem.

use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;

use super::reports;
use crate::domain::{E164, MessageId};
use crate::inbox;
use crate::providers::SmsGateway;
use crate::providers::beem::{self, BeemClient};
use crate::providers::bulk::{BulkError, DeliveryReport};
use crate::queue::Queues;
use crate::routing::{RouteName, SmsRoutes};

/// Pulls made at once (Beem's report host is not the send host, and has no published limit).
const CONCURRENCY: usize = 4;
/// The longest wait between two pulls of one message.
const MAX_SPACING: Duration = Duration::from_secs(6 * 3600);

/// When and how many messages are pulled.
#[derive(Debug, Clone, Copy)]
pub struct Pulls {
    /// A `sent` message without a report this long is pulled; the n-th pull waits
    /// `after × 2ⁿ` (at most [`MAX_SPACING`]) for the next.
    pub after: Duration,
    /// At most this many pulls per pass.
    pub per_pass: i64,
}

/// What one pass of pulls did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pulled {
    /// Messages asked about.
    pub asked: usize,
    /// Final reports that moved a message.
    pub applied: usize,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: MessageId,
    #[sqlx(try_from = "String")]
    to_number: E164,
    provider_id: String,
}

/// Asks Beem about the `sent` messages due a pull, through the Beem account in force: a message
/// sent through another Beem account (the key was replaced) cannot be asked about and waits
/// for its push or to be marked unconfirmed. A passing failure (Beem unreachable, 5xx, our key
/// refused) ends the pass without counting a pull.
pub async fn pull_beem(
    pool: &PgPool,
    queues: &Queues,
    routes: &SmsRoutes,
    pulls: Pulls,
) -> Result<Pulled, sqlx::Error> {
    let Some(SmsGateway::Beem(beem)) = routes.get(RouteName::Beem) else {
        return Ok(Pulled::default());
    };
    let client = beem.client();
    let due: Vec<Due> = sqlx::query_as(
        "SELECT m.id, m.to_number, m.provider_id
         FROM messages m LEFT JOIN report_pulls p ON p.message_id = m.id
         WHERE m.status = 'sent' AND m.unconfirmed_at IS NULL AND m.provider = 'beem'
           AND m.provider_id IS NOT NULL AND m.provider_account = $1
           AND m.updated_at < now() - make_interval(secs => $2)
           AND (p.next_at IS NULL OR p.next_at <= now())
         ORDER BY p.next_at NULLS FIRST, m.updated_at LIMIT $3",
    )
    .bind(client.account())
    .bind(pulls.after.as_secs_f64())
    .bind(pulls.per_pass)
    .fetch_all(pool)
    .await?;
    let mut answers = futures::stream::iter(due)
        .map(|m| async move {
            let answer = ask(client, &m).await;
            (m, answer)
        })
        .buffer_unordered(CONCURRENCY);
    let mut done = Pulled::default();
    while let Some((message, answer)) = answers.next().await {
        let report = match answer {
            Ok(report) => report,
            // This message's question was refused or its answer unreadable: counted, and
            // asked again later.
            Err(e @ (BulkError::Refused { .. } | BulkError::Ambiguous(_))) => {
                tracing::warn!(message = %message.id, error = %e, "Beem report pull refused");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "Beem report pulls stopped for this pass");
                break;
            }
        };
        done.asked += 1;
        if let Some(report) = report
            && store_and_apply(pool, queues, &report).await?
        {
            done.applied += 1;
        }
        schedule_next(pool, message.id, pulls.after).await?;
    }
    Ok(done)
}

/// Beem's final report of `message`, if it has one. The pull is asked by number and request;
/// an item that names another of our messages is not this one's.
async fn ask(client: &BeemClient, message: &Due) -> Result<Option<DeliveryReport>, BulkError> {
    let (request_id, _) = message
        .provider_id
        .split_once(':')
        .unwrap_or((&message.provider_id, ""));
    let reports = client
        .delivery_reports(&message.to_number, request_id)
        .await?;
    Ok(reports
        .into_iter()
        .filter(|r| r.is_final)
        .find_map(|mut r| {
            // An item without `recipient_id` is named by the request alone: with the number it
            // was asked by, it is this message's.
            if r.provider_id == request_id {
                r.provider_id.clone_from(&message.provider_id);
            }
            (r.provider_id == message.provider_id).then_some(r)
        }))
}

/// Stores `report` as if Beem had pushed it and applies it; whether it moved the message.
async fn store_and_apply(
    pool: &PgPool,
    queues: &Queues,
    report: &DeliveryReport,
) -> Result<bool, sqlx::Error> {
    let Some(payload) = beem::as_push(report) else {
        return Ok(false);
    };
    let provider = RouteName::Beem.as_str();
    let mut conn = pool.acquire().await?;
    let Some(event) = inbox::accept_report(
        &mut conn,
        provider,
        &report.inbox_key(),
        &report.provider_id,
        &payload,
    )
    .await?
    else {
        return Ok(false); // pushed (or pulled) before: applied then, or pending
    };
    drop(conn);
    let applied = reports::Report::from_bulk(RouteName::Beem, report);
    let outcome = reports::apply(pool, queues, event, applied).await?;
    Ok(matches!(outcome, reports::ReportOutcome::Applied(_)))
}

/// Counts a pull of `message` and sets when it may be pulled again.
async fn schedule_next(pool: &PgPool, message: MessageId, after: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO report_pulls AS p (message_id, pulls, next_at)
         VALUES ($1, 1, now() + make_interval(secs => least($2 * 2, $3)))
         ON CONFLICT (message_id) DO UPDATE
         SET pulls = p.pulls + 1,
             next_at = now() + make_interval(secs => least($2 * power(2, p.pulls + 1), $3))",
    )
    .bind(message)
    .bind(after.as_secs_f64())
    .bind(MAX_SPACING.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}
