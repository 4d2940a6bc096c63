//! The reconciler (run by `schedule`): PostgreSQL is the truth, Redis may forget. Each pass
//! finds what is not final and makes sure something will finish it:
//! - messages left `queued` (the enqueue failed, Redis lost the job, or the job ran out of
//!   attempts and was dead-lettered, which released its idempotency key) are enqueued again
//!   (deduplicated: a job still waiting in Redis is not doubled); every such message each pass,
//!   a page at a time, so messages legitimately waiting never hide lost ones;
//! - messages left `sending` (a send without an answer, a worker that died) get a send job, which
//!   asks Twilio before anything is resent;
//! - expired holds of messages that never reached Twilio are released;
//! - failed (or refundable undelivered) messages still charged get their `Refund`;
//! - delivery reports that arrived before their message had its SID are applied once it has
//!   it; those no message took within `sent_unconfirmed_after` are set aside;
//! - Beem is asked for the reports of its `sent` messages that have none yet
//!   (`messages::report_pulls`), a few per pass;
//! - `sent` messages silent for too long are marked unconfirmed;
//! - open payments are checked with their provider (an M-Pesa push whose callback never came,
//!   a checkout past its expiry) and paid ones not yet credited get their `VerifyPurchase`;
//! - final Twilio messages without a price are fetched for it, a few per pass (`messages::prices`);
//! - rejected webhooks past their retention are deleted;
//! - the fleet counters' deltas are folded into their totals (`db::fleet_counters`), so they stay
//!   few even when nothing scrapes `/metrics`.

use std::time::Duration;

use copcca_jobs::{Refund, RefundReason, SendSms, VerifyPurchase};
use serde::Serialize;

use super::Deps;
use crate::faults;
use crate::inbox;
use crate::ledger;
use crate::messages::recovery::{self, StaleMessages};
use crate::messages::{MessageStatus, prices, report_pulls, reports};
use crate::payments;
use crate::queue::{Enqueued, QueueError, now_ms};
use crate::routing::RouteName;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A `queued` message untouched this long is enqueued again.
    pub stale_queued: Duration,
    /// A `sending` message untouched this long is reconciled. Its job snoozes while its
    /// attempt may still be in flight (three times the route's longest send: 90 s at most), so
    /// a shorter wait costs nothing but an early look; it bounds how long a message whose job a
    /// Redis flush deleted mid-send waits.
    pub stale_sending: Duration,
    /// A `sent` message with no final report after this long is marked unconfirmed.
    pub sent_unconfirmed_after: Duration,
    /// A delivery report stored this long ago and not applied yet (it came before the message
    /// was charged) is applied.
    pub pending_report_after: Duration,
    /// A charged message that failed this long ago without a refund gets its `Refund` (its own
    /// refund job normally comes first).
    pub unrefunded_after: Duration,
    /// An open M-Pesa payment (or a paid, uncredited one) quiet this long is checked.
    pub stale_payment: Duration,
    /// Rejected webhooks older than this are deleted (`REJECTED_WEBHOOK_RETENTION_DAYS`).
    pub rejected_webhooks_kept: Duration,
    /// Final messages fetched from Twilio for their price per pass.
    pub price_lookups: i64,
    /// When Beem is asked for a missing delivery report, and how many per pass.
    pub report_pulls: report_pulls::Pulls,
    /// Rows per read: the stale-message reads go through every stale message this many at a
    /// time; the other reads take at most this many per pass.
    pub batch: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stale_queued: Duration::from_secs(60),
            stale_sending: Duration::from_secs(120),
            sent_unconfirmed_after: Duration::from_secs(72 * 3600),
            pending_report_after: Duration::from_secs(30),
            unrefunded_after: Duration::from_secs(60),
            stale_payment: Duration::from_secs(90),
            rejected_webhooks_kept: Duration::from_secs(30 * 86_400),
            price_lookups: 100,
            report_pulls: report_pulls::Pulls {
                after: Duration::from_secs(15 * 60),
                per_pass: 100,
            },
            batch: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub requeued: usize,
    pub reconciling: usize,
    pub holds_released: usize,
    pub refunds: usize,
    pub reports_applied: usize,
    /// Stored reports that no message took before it would have been marked unconfirmed.
    pub reports_set_aside: u64,
    pub reports_pulled: report_pulls::Pulled,
    pub unconfirmed: u64,
    pub payments_checked: usize,
    pub rejected_webhooks_pruned: u64,
    pub prices: prices::PriceLookups,
}

/// Why a pass stopped short: the next pass starts again (every step is idempotent).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger: {0}")]
    Ledger(#[from] ledger::LedgerError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub async fn reconcile_once(deps: &Deps, s: &Settings) -> Result<Report, PassError> {
    let mut report = Report::default();

    // Every stale message, a page at a time: enqueueing one whose job is alive (waiting for
    // quiet hours to end, say) is a no-op, and no number of those can hide a lost one.
    let mut queued = StaleMessages::queued(s.stale_queued);
    while let Some(page) = queued.next_page(&deps.pool, s.batch).await? {
        let jobs: Vec<SendSms> = page.iter().map(|id| SendSms { message_id: id.0 }).collect();
        report.requeued += fresh(&deps.queues.enqueue_bulk(&jobs, None).await?);
    }
    faults::point!(faults::RECONCILE_AFTER_QUEUED);

    // A send job keyed per ten-minute window: at most one reconciliation per message per window,
    // whatever happened to the original job.
    let window = now_ms() / 600_000;
    let mut sending = StaleMessages::sending(s.stale_sending);
    while let Some(page) = sending.next_page(&deps.pool, s.batch).await? {
        let jobs: Vec<SendSms> = page.iter().map(|id| SendSms { message_id: id.0 }).collect();
        let keyed = |j: &SendSms| format!("send_sms:{}:reconcile:{window}", j.message_id);
        report.reconciling += fresh(&deps.queues.enqueue_bulk_as(&jobs, keyed).await?);
    }
    faults::point!(faults::RECONCILE_AFTER_SENDING);

    // Holds past expiry whose message never reached Twilio (still queued, or failed). The
    // message is locked while its status is read and the hold released, as the send steps lock
    // it: a send job cannot start on the hold between the two (and then find it released). A
    // message locked by someone else is being worked on: skipped, the next pass looks again.
    for hold in ledger::expired_holds(&deps.pool, s.batch).await? {
        let mut tx = deps.pool.begin().await?;
        let status = recovery::lock_status_unless_busy(&mut tx, hold.message_id).await?;
        if matches!(status, Some(MessageStatus::Queued | MessageStatus::Failed))
            && !ledger::release(&mut tx, hold.id).await?.replay
        {
            report.holds_released += 1;
        }
        tx.commit().await?;
    }
    faults::point!(faults::RECONCILE_AFTER_HOLDS);

    let refunds: Vec<Refund> = recovery::unrefunded(&deps.pool, s.unrefunded_after, s.batch)
        .await?
        .into_iter()
        .map(|(id, status)| Refund {
            message_id: id.0,
            reason: if status == MessageStatus::Failed {
                RefundReason::Failed
            } else {
                RefundReason::Undelivered
            },
        })
        .collect();
    report.refunds = fresh(&deps.queues.enqueue_bulk(&refunds, None).await?);
    faults::point!(faults::RECONCILE_AFTER_REFUNDS);

    for route in RouteName::ALL {
        let provider = route.as_str();
        let set_aside =
            reports::set_aside_unmatched(&deps.pool, provider, s.sent_unconfirmed_after).await?;
        if set_aside > 0 {
            tracing::warn!(%route, set_aside, "delivery reports naming no message of ours set aside");
        }
        report.reports_set_aside += set_aside;
        report.reports_applied += pending_reports(deps, route, s).await?;
    }
    report.reports_pulled = report_pulls::pull_beem(
        &deps.pool,
        &deps.queues,
        &deps.providers.current().sms,
        s.report_pulls,
    )
    .await?;
    faults::point!(faults::RECONCILE_AFTER_REPORTS);

    report.unconfirmed = recovery::mark_unconfirmed(&deps.pool, s.sent_unconfirmed_after).await?;
    faults::point!(faults::RECONCILE_AFTER_UNCONFIRMED);

    // One check per payment per two-minute window, however many schedulers run.
    let window = now_ms() / 120_000;
    let checks: Vec<VerifyPurchase> = payments::due_for_check(&deps.pool, s.stale_payment, s.batch)
        .await?
        .into_iter()
        .map(|id| VerifyPurchase {
            payment_id: id.0,
            trigger: format!("sweep:{window}"),
        })
        .collect();
    report.payments_checked = fresh(&deps.queues.enqueue_bulk(&checks, None).await?);
    faults::point!(faults::RECONCILE_AFTER_PAYMENTS);

    report.rejected_webhooks_pruned =
        inbox::prune_rejected(&deps.pool, s.rejected_webhooks_kept, s.batch).await?;

    let providers = deps.providers.current();
    // The Vodacom session is opened (and replaced when old) here, ahead of the payments that
    // need it, never in a customer's request. A failure is logged; the purchase job waits.
    if let Some(vodacom) = &providers.payments.vodacom
        && let Err(e) = vodacom.warm().await
    {
        tracing::warn!(error = %e, "vodacom session not opened; purchases in TZS wait for it");
    }
    report.prices = prices::look_up(&deps.pool, &providers.sms.twilio, s.price_lookups).await?;
    crate::db::fleet_counters::fold(&deps.pool).await?;
    Ok(report)
}

/// How many of these enqueues made a new job (the rest found theirs still live).
fn fresh(enqueued: &[Enqueued]) -> usize {
    enqueued.iter().filter(|e| e.fresh).count()
}

/// Runs a pass every `every` until `shutdown`.
pub async fn run(
    deps: Deps,
    settings: Settings,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        match reconcile_once(&deps, &settings).await {
            Ok(r) if r != Report::default() => tracing::info!(report = ?r, "reconciled"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciliation pass failed"),
        }
    }
}

/// Applies the delivery reports of `route` stored before their message was charged (a report
/// that beat our own commit, or named a send we learnt of late); how many moved a message.
async fn pending_reports(
    deps: &Deps,
    route: RouteName,
    s: &Settings,
) -> Result<usize, sqlx::Error> {
    let mut applied = 0;
    let provider = route.as_str();
    for (event, payload) in
        reports::pending(&deps.pool, provider, s.pending_report_after, s.batch).await?
    {
        let params: Vec<(String, String)>;
        let bulk;
        let report = if route == RouteName::Twilio {
            params = serde_urlencoded::from_str(&payload).unwrap_or_default();
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) else {
                continue;
            };
            reports::Report {
                provider,
                provider_id: sid,
                next: MessageStatus::from_twilio(status),
                error_code: get("ErrorCode"),
            }
        } else {
            let Some(parsed) = reports::parse_bulk(route, payload.as_bytes()) else {
                continue;
            };
            bulk = parsed;
            reports::Report::from_bulk(route, &bulk)
        };
        if let reports::ReportOutcome::Applied(_) =
            reports::apply(&deps.pool, &deps.queues, event, report).await?
        {
            applied += 1;
        }
    }
    Ok(applied)
}
