//! The status page as one self-contained HTML document: inline CSS, inline SVG charts, no script
//! and nothing fetched from elsewhere. Every value from the database or Redis goes through
//! [`esc`] (company names, error messages and job arguments are other people's text).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, TimeDelta, Utc};

use super::chart::{LineChart, Series, Step};
use super::data::{DAYS, MINUTES, Snapshot};
use super::html::esc;
use crate::queue::QUEUES;
use crate::reports::revenue::PerCurrency;

/// A queue's line keeps its colour whichever queues have samples (in the order of `QUEUES`).
const QUEUE_COLORS: [&str; 4] = ["#9333ea", "#2563eb", "#ea580c", "#0891b2"];
const OTHER_QUEUE: &str = "#6b7280";
const SENT: &str = "#16a34a";
const FAILED: &str = "#dc2626";
const SOLD: &str = "#2563eb";

const STYLE: &str = "
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#6b7280}.error{color:#b91c1c;font-weight:600}
.alert{background:#fef2f2;border:1px solid #fca5a5;color:#991b1b;padding:8px 12px;margin:12px 0;font-weight:600}
table{border-collapse:collapse;background:#fff;min-width:480px}
th,td{border:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:24px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;padding:8px 12px}
figcaption{font-weight:600;margin-bottom:4px}
ul.legend{list-style:none;padding:0;margin:4px 0 0;display:flex;gap:16px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px}
code{font-size:12px;word-break:break-all}
";

/// The whole page.
pub fn page(s: &Snapshot) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="60"><meta name="viewport" content="width=device-width, initial-scale=1"><title>copcca-sms status</title><style>{STYLE}</style></head><body><h1>copcca-sms status</h1><p class="muted">As of {at} (UTC); refreshes every minute.</p>"#,
        at = time(s.at),
    );
    for alert in &s.alerts {
        let _ = write!(
            html,
            r#"<div class="alert" role="alert">{}</div>"#,
            esc(alert)
        );
    }
    queues(&mut html, s);
    charts(&mut html, s);
    revenue(&mut html, s);
    balances(&mut html, s);
    failures(&mut html, s);
    disputes(&mut html, s);
    routes(&mut html, s);
    dead_letters(&mut html, s);
    html.push_str("</body></html>");
    html
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn table_head(html: &mut String, id: &str, columns: &[(&str, bool)]) {
    let _ = write!(html, r#"<table id="{id}"><thead><tr>"#);
    for (name, numeric) in columns {
        let class = if *numeric { r#" class="n""# } else { "" };
        let _ = write!(html, "<th{class}>{}</th>", esc(name));
    }
    html.push_str("</tr></thead><tbody>");
}

fn empty_row(html: &mut String, columns: usize, text: &str) {
    let _ = write!(
        html,
        r#"<tr><td colspan="{columns}" class="muted">{}</td></tr>"#,
        esc(text)
    );
}

fn queues(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="queues"><h2>Queues now</h2>"#);
    match &s.queues {
        Err(e) => {
            let _ = write!(html, r#"<p class="error">{}</p>"#, esc(e));
        }
        Ok(stats) => {
            table_head(
                html,
                "queues-table",
                &[
                    ("queue", false),
                    ("ready", true),
                    ("in flight", true),
                    ("delayed", true),
                    ("dead", true),
                ],
            );
            for (q, st) in stats {
                let _ = write!(
                    html,
                    r#"<tr data-queue="{q}"><td>{q}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                    st.ready,
                    st.in_flight,
                    st.delayed,
                    st.dead,
                    q = esc(q),
                );
            }
            html.push_str("</tbody></table>");
        }
    }
    html.push_str("</section>");
}

fn minute_of(s: &Snapshot, t: DateTime<Utc>) -> Option<usize> {
    let m = (t - s.window_start).num_minutes();
    usize::try_from(m).ok().filter(|m| *m < MINUTES)
}

fn charts(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="charts"><h2>The last hour</h2><div class="charts">"#);
    let mut by_queue: BTreeMap<&str, Vec<(usize, i64)>> = BTreeMap::new();
    for sample in &s.depth {
        if let Some(m) = minute_of(s, sample.taken_at) {
            by_queue
                .entry(&sample.queue)
                .or_default()
                .push((m, sample.backlog()));
        }
    }
    let depth = LineChart {
        id: "chart-queue-depth",
        title: "Queue depth (ready + in flight + delayed, sampled each minute)",
        start: s.window_start,
        step: Step::Minute,
        buckets: MINUTES,
        series: by_queue
            .into_iter()
            .map(|(q, points)| Series {
                name: q.to_string(),
                color: QUEUES
                    .iter()
                    .position(|known| *known == q)
                    .and_then(|i| QUEUE_COLORS.get(i))
                    .unwrap_or(&OTHER_QUEUE),
                points,
            })
            .collect(),
    };
    let rate = |pick: fn(&super::data::MinuteRate) -> i64| {
        s.send_rate
            .iter()
            .filter_map(|r| Some((minute_of(s, r.minute)?, pick(r))))
            .collect::<Vec<_>>()
    };
    let send = LineChart {
        id: "chart-send-rate",
        title: "Send rate (messages per minute the send began)",
        start: s.window_start,
        step: Step::Minute,
        buckets: MINUTES,
        series: vec![
            Series {
                name: "sent / delivered".into(),
                color: SENT,
                points: rate(|r| r.sent),
            },
            Series {
                name: "failed / undelivered".into(),
                color: FAILED,
                points: rate(|r| r.failed),
            },
        ],
    };
    html.push_str(&depth.to_html());
    html.push_str(&send.to_html());
    html.push_str("</div></section>");
}

/// The last days' credits (sold, charged, refunded: one unit, so one chart) and money per
/// currency (received, refunded to buyers, the provider's cost, margin), from the revenue report.
fn revenue(html: &mut String, s: &Snapshot) {
    let start = s.at.date_naive() - TimeDelta::days(DAYS as i64 - 1);
    let mut per_day: BTreeMap<usize, (i64, i64, i64)> = BTreeMap::new();
    let mut received = PerCurrency::new();
    let mut refunded = PerCurrency::new();
    let mut cost = PerCurrency::new();
    let mut margin = PerCurrency::new();
    for row in &s.revenue.rows {
        let Ok(day) = chrono::NaiveDate::parse_from_str(&row.period, "%Y-%m-%d") else {
            continue;
        };
        let Some(i) = usize::try_from((day - start).num_days())
            .ok()
            .filter(|i| *i < DAYS)
        else {
            continue;
        };
        let d = per_day.entry(i).or_default();
        d.0 += row.credits_sold;
        d.1 += row.credits_charged;
        d.2 += row.credits_refunded;
        for (into, from) in [
            (&mut received, &row.received),
            (&mut refunded, &row.refunded_amount),
            (&mut cost, &row.provider_cost),
            (&mut margin, &row.margin),
        ] {
            for (currency, amount) in from {
                *into.entry(currency.clone()).or_default() += amount;
            }
        }
    }
    let line = |pick: fn(&(i64, i64, i64)) -> i64| {
        per_day
            .iter()
            .map(|(i, d)| (*i, pick(d)))
            .collect::<Vec<_>>()
    };
    let chart = LineChart {
        id: "chart-credits",
        title: "Credits per day (UTC): sold, charged for messages, refunded",
        start: start.and_time(chrono::NaiveTime::MIN).and_utc(),
        step: Step::Day,
        buckets: DAYS,
        series: vec![
            Series {
                name: "sold".into(),
                color: SOLD,
                points: line(|d| d.0),
            },
            Series {
                name: "charged".into(),
                color: SENT,
                points: line(|d| d.1),
            },
            Series {
                name: "refunded".into(),
                color: FAILED,
                points: line(|d| d.2),
            },
        ],
    };
    let _ = write!(
        html,
        r#"<section id="revenue"><h2>The last {DAYS} days</h2><div class="charts">{}</div>"#,
        chart.to_html()
    );
    table_head(
        html,
        "revenue-money",
        &[
            ("currency", false),
            ("received", true),
            ("refunded", true),
            ("provider cost", true),
            ("margin", true),
        ],
    );
    let mut currencies: Vec<&String> = margin.keys().collect();
    currencies.sort();
    if currencies.is_empty() {
        empty_row(html, 5, "no money in these days");
    }
    let shown = |m: &PerCurrency, c: &String| m.get(c).map(|a| a.to_string()).unwrap_or_default();
    for c in currencies {
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            esc(c),
            esc(&shown(&received, c)),
            esc(&shown(&refunded, c)),
            esc(&shown(&cost, c)),
            esc(&shown(&margin, c)),
        );
    }
    let _ = write!(
        html,
        r#"</tbody></table><p class="muted">{}. Report: <code>GET /admin/reports/revenue</code>.</p></section>"#,
        esc(crate::reports::revenue::CURRENCY_NOTE)
    );
}

fn balances(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="balances"><h2>Balances (credits)</h2>"#);
    table_head(
        html,
        "balances-table",
        &[
            ("company", false),
            ("available", true),
            ("reserved", true),
            ("purchased", true),
            ("sent", true),
        ],
    );
    if s.balances.is_empty() {
        empty_row(html, 5, "no companies yet");
    }
    for b in &s.balances {
        let _ = write!(
            html,
            r#"<tr data-company="{id}"><td>{name}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            b.available,
            b.reserved,
            b.purchased,
            b.sent,
            id = b.id,
            name = esc(&b.name),
        );
    }
    html.push_str("</tbody></table>");
    let audited = match s.audited {
        Some(c) => format!(
            "Ledger: last audited clean at {} (UTC), through entry {}; copcca-sms admin audit --since-checkpoint checks what came after.",
            time(c.taken_at),
            c.through_entry_id
        ),
        None => "Ledger: no clean audit recorded yet; run copcca-sms admin audit.".into(),
    };
    let _ = write!(
        html,
        r#"<p id="ledger-audit" class="muted">{}</p>"#,
        esc(&audited)
    );
    html.push_str("</section>");
}

fn failures(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="failures"><h2>Recent failures</h2>"#);
    table_head(
        html,
        "failures-table",
        &[
            ("when", false),
            ("company", false),
            ("to", false),
            ("status", false),
            ("error code", false),
            ("error", false),
            ("message", false),
        ],
    );
    if s.failures.is_empty() {
        empty_row(html, 7, "no failed or undelivered messages");
    }
    for f in &s.failures {
        let _ = write!(
            html,
            r#"<tr data-message="{id}"><td>{when}</td><td>{company}</td><td>{to}</td><td>{status}</td><td>{code}</td><td>{error}</td><td><code>{id}</code></td></tr>"#,
            id = f.id,
            when = time(f.updated_at),
            company = esc(&f.company),
            to = esc(&f.to_number),
            status = esc(&f.status),
            code = esc(f.error_code.as_deref().unwrap_or("")),
            error = esc(f.error_message.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn disputes(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="disputes"><h2>Card disputes</h2><p class="muted">An open or lost dispute holds the disputed share of its purchase's credits back; a won one gives it back. Answer a dispute in Stripe's Dashboard before its due date.</p>"#);
    table_head(
        html,
        "disputes-table",
        &[
            ("opened", false),
            ("company", false),
            ("amount", true),
            ("reason", false),
            ("Stripe status", false),
            ("outcome", false),
            ("credits disputed", true),
            ("dispute", false),
        ],
    );
    if s.disputes.is_empty() {
        empty_row(html, 8, "no card disputes");
    }
    for d in &s.disputes {
        let _ = write!(
            html,
            r#"<tr data-dispute="{id}" data-company="{company_id}" data-payment="{payment}" data-outcome="{outcome}"><td>{when}</td><td>{company}</td><td class="n">{amount} {currency}</td><td>{reason}</td><td>{status}</td><td>{outcome}</td><td class="n">{}</td><td><code>{id}</code></td></tr>"#,
            d.credits_share,
            id = esc(&d.id),
            company_id = d.company_id,
            payment = d.payment_id,
            outcome = esc(&d.outcome),
            when = time(d.opened_at),
            company = esc(&d.company),
            amount = d.amount,
            currency = esc(&d.currency),
            reason = esc(&d.reason),
            status = esc(&d.stripe_status),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn routes(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="routes"><h2>SMS routes</h2><p class="muted">Each route's account and circuit now, and its sends of the last hour (by when their attempt began) with what the provider reported charging. Change the routing table with <code>copcca-sms admin routes set</code>.</p>"#);
    table_head(
        html,
        "routes-table",
        &[
            ("route", false),
            ("account", false),
            ("circuit", false),
            ("sent", true),
            ("failed", true),
            ("cost", true),
        ],
    );
    for r in &s.routes {
        let route = r.route.as_str();
        let circuit = match &r.circuit {
            None => "unknown (Redis did not answer)".to_string(),
            Some(c) if c.reason.is_empty() => format!("{:?}", c.state).to_lowercase(),
            Some(c) => format!("{:?}: {}", c.state, c.reason).to_lowercase(),
        };
        let mine: Vec<_> = s
            .route_activity
            .iter()
            .filter(|a| a.provider == route)
            .collect();
        let sent: i64 = mine.iter().map(|a| a.sent).sum();
        let failed: i64 = mine.iter().map(|a| a.failed).sum();
        let cost: Vec<String> = mine
            .iter()
            .filter_map(|a| Some(format!("{} {}", a.cost?, a.currency.as_deref()?)))
            .collect();
        let _ = write!(
            html,
            r#"<tr data-route="{route}"><td>{route}</td><td>{account}</td><td>{circuit}</td><td class="n">{sent}</td><td class="n">{failed}</td><td class="n">{cost}</td></tr>"#,
            account = if r.configured { "configured" } else { "none" },
            circuit = esc(&circuit),
            cost = esc(&cost.join(", ")),
        );
    }
    html.push_str("</tbody></table></section>");
}

fn dead_letters(html: &mut String, s: &Snapshot) {
    html.push_str(r#"<section id="dead-letters"><h2>Dead letters</h2><p class="muted">Send one back to its queue with <code>copcca-sms admin jobs retry &lt;id&gt;</code>.</p>"#);
    match &s.dead_letters {
        Err(e) => {
            let _ = write!(html, r#"<p class="error">{}</p>"#, esc(e));
        }
        Ok(dead) => {
            table_head(
                html,
                "dead-letters-table",
                &[
                    ("failed", false),
                    ("id", false),
                    ("attempts", true),
                    ("error", false),
                    ("job", false),
                ],
            );
            if dead.is_empty() {
                empty_row(html, 5, "no dead letters");
            }
            for (q, d) in dead {
                let failed = DateTime::<Utc>::UNIX_EPOCH
                    + TimeDelta::milliseconds(i64::try_from(d.failed_at_ms).unwrap_or(0));
                let _ = write!(
                    html,
                    r#"<tr><td>{failed}</td><td><code>{id}</code></td><td class="n">{attempt}</td><td>{error}</td><td><code>{args}</code></td></tr>"#,
                    failed = time(failed),
                    id = esc(&format!("{q}/{}", d.entry)),
                    attempt = d.job.attempt,
                    error = esc(&d.error),
                    args = esc(&d.job.args),
                );
            }
            html.push_str("</tbody></table>");
        }
    }
    html.push_str("</section>");
}
