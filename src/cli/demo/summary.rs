//! The demo's closing table: credits and messages as the ledger and the messages table record
//! them, whether they add up, and the ledger audit.

use std::time::Duration;

use serde::Serialize;

use super::scenario::Progress;
use super::stack::{DATABASE, Stack};
use crate::ledger;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub database: &'static str,
    pub seconds: f64,
    /// `(method, final status)` of each purchase.
    pub purchases: Vec<(String, String)>,
    pub credits_bought: i64,
    pub credits_reserved: i64,
    pub credits_charged: i64,
    pub credits_refunded: i64,
    pub credits_available: i64,
    pub messages_accepted: i64,
    pub messages_rejected: i64,
    pub messages_sent: i64,
    pub messages_delivered: i64,
    pub messages_undelivered: i64,
    pub messages_failed: i64,
    pub audit_clean: bool,
    pub audit_violations: usize,
    /// Messages by the route they went through, with what the provider reported charging.
    pub routes: Vec<RouteSplit>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RouteSplit {
    pub route: String,
    pub messages: i64,
    /// `"KES 78.4000"`, where the provider reported a price.
    pub cost: Option<String>,
}

impl Summary {
    /// The books balance: what was bought, less what was charged, plus what was refunded, is
    /// what the company holds; every accepted message reached a final status; every failed or
    /// undelivered message was refunded.
    pub fn adds_up(&self) -> bool {
        let credits = self.credits_bought - self.credits_charged + self.credits_refunded
            == self.credits_available + self.credits_reserved;
        let messages = self.messages_accepted
            == self.messages_sent
                + self.messages_delivered
                + self.messages_undelivered
                + self.messages_failed;
        let refunds = self.credits_refunded >= self.messages_undelivered + self.messages_failed;
        credits && messages && refunds && self.credits_reserved == 0
    }

    pub fn print(&self) {
        let routes = self
            .routes
            .iter()
            .map(|r| match &r.cost {
                Some(cost) => format!("{} {} ({cost})", r.route, r.messages),
                None => format!("{} {}", r.route, r.messages),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rows: [(&str, String); 15] = [
            (
                "purchases",
                self.purchases
                    .iter()
                    .map(|(m, s)| format!("{m}: {s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("credits bought", self.credits_bought.to_string()),
            ("credits reserved", self.credits_reserved.to_string()),
            ("credits charged", self.credits_charged.to_string()),
            ("credits refunded", self.credits_refunded.to_string()),
            ("credits available", self.credits_available.to_string()),
            ("messages accepted", self.messages_accepted.to_string()),
            ("rejected (invalid)", self.messages_rejected.to_string()),
            ("sent, no report", self.messages_sent.to_string()),
            ("delivered", self.messages_delivered.to_string()),
            ("undelivered", self.messages_undelivered.to_string()),
            ("failed", self.messages_failed.to_string()),
            ("sent by route", routes),
            (
                "books add up",
                if self.adds_up() { "yes" } else { "NO" }.to_string(),
            ),
            (
                "ledger audit",
                if self.audit_clean {
                    "clean".to_string()
                } else {
                    format!("{} violation(s)", self.audit_violations)
                },
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let values = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let line = format!("+-{}-+-{}-+", "-".repeat(width), "-".repeat(values));
        println!(
            "copcca-sms demo: database {}, {:.1} s, fake Twilio, Beem, Africa's Talking, Daraja, Vodacom and Stripe on loopback",
            self.database, self.seconds
        );
        println!("{line}");
        for (k, v) in rows {
            println!("| {k:<width$} | {v:<values$} |");
        }
        println!("{line}");
    }
}

pub async fn collect(
    stack: &Stack,
    progress: Progress,
    elapsed: Duration,
) -> anyhow::Result<Summary> {
    let company = progress.company.expect("the scenario made a company");
    let (bought, charged, refunded): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(available_delta) FILTER (WHERE kind = 'purchase'), 0)::bigint,
                COALESCE(-sum(available_delta + reserved_delta) FILTER (WHERE kind = 'commit'), 0)::bigint,
                COALESCE(sum(available_delta) FILTER (WHERE kind = 'refund'), 0)::bigint
         FROM ledger_entries WHERE company_id = $1",
    )
    .bind(company)
    .fetch_one(&stack.pool)
    .await?;
    let balance = ledger::balance(&stack.pool, company).await?;
    let count = |status: &'static str| {
        let pool = stack.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM messages WHERE company_id = $1 AND status = $2",
            )
            .bind(company)
            .bind(status)
            .fetch_one(&pool)
            .await
        }
    };
    let audit = ledger::audit(&stack.pool).await?;
    let routes: Vec<RouteSplit> = sqlx::query_as(
        "SELECT provider AS route, count(*) AS messages,
                CASE WHEN sum(price) IS NOT NULL THEN min(price_currency) || ' ' || sum(price) END AS cost
         FROM messages WHERE company_id = $1 AND provider IS NOT NULL
         GROUP BY provider ORDER BY provider",
    )
    .bind(company)
    .fetch_all(&stack.pool)
    .await?;
    Ok(Summary {
        database: DATABASE,
        seconds: elapsed.as_secs_f64(),
        purchases: progress.purchases,
        credits_bought: bought,
        credits_reserved: balance.reserved.get(),
        credits_charged: charged,
        credits_refunded: refunded,
        credits_available: balance.available.get(),
        messages_accepted: progress.accepted,
        messages_rejected: progress.rejected,
        messages_sent: count("sent").await?,
        messages_delivered: count("delivered").await?,
        messages_undelivered: count("undelivered").await?,
        messages_failed: count("failed").await?,
        audit_clean: audit.is_clean(),
        audit_violations: audit.violations.len(),
        routes,
    })
}
