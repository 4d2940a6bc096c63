//! Prometheus metrics (prometheus-client, OpenMetrics text). Two kinds:
//!
//! - **process** series, counted where things happen in this process: webhook rejections,
//!   provider call latencies, HTTP requests. Record them with the free functions below from any
//!   module; they live for the life of the process.
//! - **fleet** series, computed at scrape time from PostgreSQL and Redis: queue depths, messages
//!   by status, credits, payments. They describe the whole deployment, so only the HTTP process
//!   serves them (`http::metrics`, which reads them); `work` and `schedule` serve their process
//!   series on `METRICS_ADDR` when it is set.
//!
//! This module is a foundation: any module may record here, and it imports none of them.
//!
//! Every label value comes from a small closed set (providers, operations, reasons, route
//! templates), never from request data, so series stay few.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The media type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteSendLabels {
    route: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterruptionLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOnly {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds: 5 ms to 15 s, the span of a provider call (the Twilio client gives up at 15 s).
fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
    ])
}

/// Items per group-commit batch: 1 to 64.
fn batch_histogram() -> Histogram {
    Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
}

struct Process {
    webhook_rejections: Family<WebhookLabels, Counter>,
    provider_calls: Histograms<ProviderLabels>,
    http_requests: Histograms<HttpLabels>,
    promote_scans: Family<QueueLabels, Counter>,
    group_batches: Histograms<StepLabels>,
    send_interruptions: Family<InterruptionLabels, Counter>,
    route_sends: Family<RouteSendLabels, Counter>,
    sending_paused: Family<ProviderOnly, Gauge>,
    previous_token_callbacks: Family<ProviderOnly, Counter>,
}

static PROCESS: LazyLock<Process> = LazyLock::new(|| Process {
    webhook_rejections: Family::default(),
    provider_calls: Family::new_with_constructor(latency_histogram),
    http_requests: Family::new_with_constructor(latency_histogram),
    promote_scans: Family::default(),
    group_batches: Family::new_with_constructor(batch_histogram),
    send_interruptions: Family::default(),
    route_sends: Family::default(),
    sending_paused: Family::default(),
    previous_token_callbacks: Family::default(),
});

/// Counts a webhook refused before it was believed. `reason` is a stable code such as
/// `bad_signature`, `missing_signature`, `malformed_body`, `not_configured`.
pub fn webhook_rejected(provider: &str, reason: &str) {
    PROCESS
        .webhook_rejections
        .get_or_create(&WebhookLabels {
            provider: provider.to_string(),
            reason: reason.to_string(),
        })
        .inc();
}

/// Records one call to a provider's API: `operation` names the endpoint (`messages.create`),
/// `status` its outcome class (`ok`, `refused`, `rate_limited`, `server_error`, `not_sent`,
/// `ambiguous`, or the provider's own).
pub fn provider_call(provider: &str, operation: &str, status: &str, duration: Duration) {
    PROCESS
        .provider_calls
        .get_or_create(&ProviderLabels {
            provider: provider.to_string(),
            operation: operation.to_string(),
            status: status.to_string(),
        })
        .observe(duration.as_secs_f64());
}

/// Records one HTTP request answered by this process; `route` is the matched route template.
pub fn http_request(method: &str, route: &str, status: u16, duration: Duration) {
    PROCESS
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.to_string(),
            status: status.to_string(),
        })
        .observe(duration.as_secs_f64());
}

/// Counts one look of a worker's promoter for due delayed jobs (one Redis script call): about
/// one a second per queue when idle, more only when retries and snoozes fall due.
pub fn queue_promote_scan(queue: &str) {
    PROCESS
        .promote_scans
        .get_or_create(&QueueLabels {
            queue: queue.to_string(),
        })
        .inc();
}

/// Records the size of one group-commit batch of `step` (`send_begin`, `send_finish`...).
pub fn group_commit_batch(step: &str, items: usize) {
    PROCESS
        .group_batches
        .get_or_create(&StepLabels {
            step: step.to_string(),
        })
        .observe(items as f64);
}

/// Counts one message's send through `route` by what came of it: `sent`, `refused`, or how
/// the route failed (`unavailable`, `not_sent`, `ambiguous`, `rate_limited`, `credentials`,
/// `misconfigured`).
pub fn route_send(route: &str, outcome: &str) {
    PROCESS
        .route_sends
        .get_or_create(&RouteSendLabels {
            route: route.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
}

/// Counts a detour of a send job run, by `kind`:
/// - `claim_too_late`: its claim came too late to send within the attempt's window; it sent
///   nothing and a later run resumes the message (many of these: lock waits or a starved process);
/// - `taken_over`: it stalled past its attempt's window and another run had resumed the send,
///   or another run claimed the message between this run's read and its failing it;
/// - `success_after_release`: the provider took a message whose hold had been released (the
///   message keeps the SID and is charged again, or records it as uncharged);
/// - `charge_retried`: charging a message Twilio had taken failed on a transient database error
///   and was tried again in the run (one count per try again, up to four per run);
/// - `slot_missed`: its slot at the sender went by before the request could leave (a slow
///   claim, no lease in flight free): it sent nothing and takes the head of the schedule again.
pub fn send_interruption(kind: &str) {
    PROCESS
        .send_interruptions
        .get_or_create(&InterruptionLabels {
            kind: kind.to_string(),
        })
        .inc();
}

/// Whether this process last saw sending through `provider` paused because the provider
/// refused our credentials (1) or not (0).
pub fn sending_paused(provider: &str, paused: bool) {
    PROCESS
        .sending_paused
        .get_or_create(&ProviderOnly {
            provider: provider.to_string(),
        })
        .set(i64::from(paused));
}

/// Counts a callback accepted because it was signed with the previous credentials, within the
/// grace period after a rotation.
pub fn previous_token_callback(provider: &str) {
    PROCESS
        .previous_token_callbacks
        .get_or_create(&ProviderOnly {
            provider: provider.to_string(),
        })
        .inc();
}

/// The value of one of this process's series, named with its labels exactly as rendered
/// (`copcca_send_interruptions_total{kind="taken_over"}`); `None` if it has no sample yet.
pub fn process_series(series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    render_process()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Adds this process's series to `registry`.
pub fn register_process(registry: &mut Registry) {
    let p = &*PROCESS;
    registry.register(
        "webhook_rejections",
        "Webhooks refused before they were believed, by provider and reason",
        p.webhook_rejections.clone(),
    );
    registry.register_with_unit(
        "provider_request_duration",
        "Calls to providers' APIs by provider, operation and outcome",
        Unit::Seconds,
        p.provider_calls.clone(),
    );
    registry.register_with_unit(
        "http_request_duration",
        "HTTP requests answered by this process, by method, route template and status",
        Unit::Seconds,
        p.http_requests.clone(),
    );
    registry.register(
        "queue_promote_scans",
        "Looks for due delayed jobs (one Redis script call each), by queue",
        p.promote_scans.clone(),
    );
    registry.register(
        "group_commit_batch_items",
        "Items per group-commit batch (one statement and one commit each), by step",
        p.group_batches.clone(),
    );
    registry.register(
        "send_interruptions",
        "Detours of send job runs, by kind: claim_too_late, taken_over, success_after_release and slot_missed (one per run), charge_retried (one per try again)",
        p.send_interruptions.clone(),
    );
    registry.register(
        "route_sends",
        "Messages sent through each SMS route, by outcome: sent, refused, or how the route failed (unavailable, not_sent, ambiguous, rate_limited, credentials, misconfigured)",
        p.route_sends.clone(),
    );
    registry.register(
        "sending_paused",
        "1 while sending through the provider is paused because it refused our credentials (20003 / HTTP 401), as this process last saw",
        p.sending_paused.clone(),
    );
    registry.register(
        "callbacks_previous_token",
        "Callbacks accepted with the previous credentials, within the grace period after a rotation",
        p.previous_token_callbacks.clone(),
    );
}

/// A registry whose series are all named `copcca_*`.
pub fn registry() -> Registry {
    Registry::with_prefix("copcca")
}

/// The OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String does not fail");
    out
}

/// This process's series alone (what `work` and `schedule` serve on `METRICS_ADDR`).
pub fn render_process() -> String {
    let mut registry = registry();
    register_process(&mut registry);
    render(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_series_are_rendered_with_their_labels() {
        webhook_rejected("twilio", "unit_test_reason");
        provider_call(
            "unit_test_provider",
            "messages.create",
            "ok",
            Duration::from_millis(30),
        );
        let text = render_process();
        assert!(
            text.contains(
                r#"copcca_webhook_rejections_total{provider="twilio",reason="unit_test_reason"} "#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"copcca_provider_request_duration_seconds_bucket{le="0.05",provider="unit_test_provider",operation="messages.create",status="ok"} 1"#)
                || text.contains(r#"copcca_provider_request_duration_seconds_bucket{provider="unit_test_provider",operation="messages.create",status="ok",le="0.05"} 1"#),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
