//! The final checks, read from the data once everything is quiet, and the report: a table, or
//! one JSON object. Any violation makes the run fail.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sqlx::PgPool;

use super::callbacks::CallbackFigures;
use super::faults::Injected;
use super::traffic::{BEEM_PREFIX, Bought, Sent};
use crate::domain::CompanyId;
use crate::fakes::beem::FakeSend;
use crate::fakes::twilio::FakeMessage;
use crate::ledger;

mod table;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub seed: u64,
    pub duration_secs: f64,
    pub messages_requested: usize,
    pub companies: usize,
    pub workers: usize,
    pub schedule: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Messages {
    pub accepted: i64,
    pub stored: i64,
    #[serde(rename = "final")]
    pub final_: i64,
    pub not_final: i64,
    /// Held as unanswered at Beem, which never received them (the worker died before its
    /// request left): no report will come, so they wait for the operator, credits reserved.
    pub held_never_at_beem: i64,
    /// Handed to the provider (they have a provider id).
    pub sent: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub failed: i64,
    pub refunded: i64,
    pub by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Purchases {
    pub made: usize,
    pub credited: usize,
    pub credits_purchased: i64,
    pub by_method: BTreeMap<&'static str, usize>,
}

/// What the fake providers hold, against what we charged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Providers {
    /// Messages each fake received (Twilio's created, Beem's valid recipients).
    pub received: BTreeMap<&'static str, usize>,
    /// Our messages the fakes hold more than once, on one route or across both: must be 0.
    pub duplicates: usize,
    /// Charged messages the fake of their route never received: must be 0.
    pub charged_not_received: usize,
    /// By route: messages sent through it, and of them charged.
    pub split: Vec<RouteSplit>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RouteSplit {
    pub route: String,
    pub sent: i64,
    pub charged: i64,
    /// Of them, to Vodacom Tanzania's numbers (on Twilio: failed over from Beem).
    pub vodacom_tz: i64,
}

/// Our message ids each fake received, one entry per time received.
pub struct AtProviders<'a> {
    pub twilio: &'a [FakeMessage],
    pub beem: &'a [FakeSend],
}

impl AtProviders<'_> {
    fn received(&self) -> [(&'static str, Vec<String>); 2] {
        let twilio = self
            .twilio
            .iter()
            .map(|m| {
                m.our_message_id()
                    .unwrap_or_else(|| format!("no id: {}", m.sid))
            })
            .collect();
        [("twilio", twilio), ("beem", beem_received(self.beem))]
    }
}

/// Our message ids the fake Beem sent (a valid recipient's `recipient_id` is our message id).
pub fn beem_received(sends: &[FakeSend]) -> Vec<String> {
    sends
        .iter()
        .flat_map(|s| &s.recipients)
        .filter(|r| r.valid)
        .map(|r| r.recipient_id.clone())
        .collect()
}

/// Messages held as unanswered after a Beem send the fake never received (`received`): the one
/// legitimate end of a message that is not final.
pub async fn held_never_at_beem(
    pool: &PgPool,
    received: &[String],
) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM messages
         WHERE status = 'sending' AND unanswered_since IS NOT NULL
           AND provider_account LIKE 'beem:%' AND id::text <> ALL($1)",
    )
    .bind(received)
    .fetch_all(pool)
    .await
}

/// `credits == purchased - charged + refunded + adjusted`, per company.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Company {
    pub company_id: CompanyId,
    pub credits: i64,
    pub reserved: i64,
    pub purchased: i64,
    pub charged: i64,
    pub refunded: i64,
    pub adjusted: i64,
    /// Reserved for messages held as unanswered that Beem never received (the rest must be 0).
    pub held: i64,
}

impl Company {
    fn adds_up(&self) -> bool {
        self.credits == self.purchased - self.charged + self.refunded + self.adjusted
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: Run,
    pub injected: Injected,
    pub requests_retried: BTreeMap<u16, usize>,
    pub single_requests: usize,
    pub batch_requests: usize,
    pub idempotent_replays: usize,
    pub messages: Messages,
    pub purchases: Purchases,
    pub callbacks: CallbackFigures,
    pub providers: Providers,
    pub companies: Vec<Company>,
    pub audit_clean: bool,
    /// Processes the supervisor started again, and how many of them had exited on an error.
    pub processes_restarted: usize,
    pub processes_exited_on_error: usize,
    /// From the end of the faults until everything was final; `None`: it never was.
    pub quiesce_secs: Option<f64>,
    pub violations: Vec<String>,
}

pub struct Observed<'a> {
    pub run: Run,
    pub injected: Injected,
    pub sent: &'a Sent,
    pub bought: &'a Bought,
    pub callbacks: CallbackFigures,
    pub at_providers: AtProviders<'a>,
    pub requests_retried: BTreeMap<u16, usize>,
    /// Processes started again after exiting by themselves, and of those, exits on an error.
    pub restarts: (usize, usize),
    pub crashes: Vec<String>,
    pub quiesce_secs: Option<f64>,
}

pub async fn collect(pool: &PgPool, o: Observed<'_>) -> anyhow::Result<Report> {
    let mut violations = Vec::new();
    violations.extend(o.crashes.iter().cloned());
    violations.extend(
        o.injected
            .errors
            .iter()
            .map(|e| format!("fault not injected: {e}")),
    );
    violations.extend(o.sent.errors.iter().map(|e| format!("traffic: {e}")));
    violations.extend(o.bought.errors.iter().map(|e| format!("purchase: {e}")));
    if o.quiesce_secs.is_none() {
        violations.push("the system never quiesced".into());
    }
    if o.callbacks.given_up > 0 {
        violations.push(format!(
            "{} status reports refused until given up",
            o.callbacks.given_up
        ));
    }

    let received = o.at_providers.received();
    let held = held_never_at_beem(pool, &beem_received(o.at_providers.beem)).await?;
    let messages = messages(pool, o.sent, &held, &mut violations).await?;
    let providers = providers(pool, &received, &mut violations).await?;
    let purchases = purchases(pool, o.bought, &mut violations).await?;

    let companies: Vec<Company> = sqlx::query_as(
        "SELECT company_id, available + reserved AS credits, reserved, total_purchased AS purchased,
                total_sent AS charged, total_refunded AS refunded, total_adjusted AS adjusted,
                (SELECT COALESCE(sum(h.credits), 0)::bigint FROM holds h
                 WHERE h.company_id = b.company_id AND h.status = 'active'
                   AND h.message_id = ANY($1)) AS held
         FROM balances b ORDER BY company_id",
    )
    .bind(&held)
    .fetch_all(pool)
    .await?;
    for c in &companies {
        if !c.adds_up() {
            violations.push(format!(
                "company {}: credits do not add up: {c:?}",
                c.company_id
            ));
        }
        if c.reserved != c.held {
            violations.push(format!(
                "company {}: {} credits still reserved, {} of them for messages held",
                c.company_id, c.reserved, c.held
            ));
        }
    }
    let audit = ledger::audit(pool).await?;
    violations.extend(
        audit
            .violations
            .iter()
            .map(|v| format!("audit: {}: {}", v.invariant, v.detail)),
    );
    Ok(Report {
        run: o.run,
        injected: o.injected,
        requests_retried: o.requests_retried,
        single_requests: o.sent.single_requests,
        batch_requests: o.sent.batch_requests,
        idempotent_replays: o.sent.idempotent_replays,
        messages,
        purchases,
        callbacks: o.callbacks,
        providers,
        companies,
        audit_clean: audit.is_clean(),
        processes_restarted: o.restarts.0,
        processes_exited_on_error: o.restarts.1,
        quiesce_secs: o.quiesce_secs,
        violations,
    })
}

async fn messages(
    pool: &PgPool,
    sent: &Sent,
    held: &[uuid::Uuid],
    violations: &mut Vec<String>,
) -> anyhow::Result<Messages> {
    let mut m = Messages {
        accepted: sent.accepted,
        held_never_at_beem: held.len() as i64,
        ..Messages::default()
    };
    let rows: Vec<(CompanyId, String, i64, i64)> = sqlx::query_as(
        "SELECT company_id, status, count(*), count(provider_id) FROM messages GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    let mut stored_by_company: HashMap<CompanyId, i64> = HashMap::new();
    for (company, status, n, with_sid) in rows {
        *stored_by_company.entry(company).or_default() += n;
        *m.by_status.entry(status.clone()).or_default() += n;
        m.stored += n;
        m.sent += with_sid;
        match status.as_str() {
            "delivered" => m.delivered += n,
            "undelivered" => m.undelivered += n,
            "failed" => m.failed += n,
            _ => {}
        }
    }
    m.final_ = m.delivered + m.undelivered + m.failed;
    m.not_final = m.stored - m.final_ - m.held_never_at_beem;
    for (company, accepted) in &sent.accepted_by_company {
        let stored = stored_by_company.get(company).copied().unwrap_or(0);
        if stored != *accepted {
            violations.push(format!(
                "company {company}: {accepted} messages accepted, {stored} stored"
            ));
        }
    }
    if m.not_final > 0 {
        violations.push(format!(
            "{} messages not final: {:?}",
            m.not_final, m.by_status
        ));
    }
    m.refunded = sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE kind = 'refund'")
        .fetch_one(pool)
        .await?;
    // A failure that was charged is refunded; a delivery is charged and kept.
    let unrefunded: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT m.id, m.status FROM messages m
         WHERE EXISTS (SELECT 1 FROM ledger_entries c WHERE c.message_id = m.id AND c.kind = 'commit')
           AND ((m.status IN ('failed', 'undelivered')
                 AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.message_id = m.id AND r.kind = 'refund'))
             OR (m.status = 'delivered'
                 AND EXISTS (SELECT 1 FROM ledger_entries r WHERE r.message_id = m.id AND r.kind = 'refund')))
         LIMIT 10",
    )
    .fetch_all(pool)
    .await?;
    for (id, status) in unrefunded {
        violations.push(format!(
            "message {id} is {status}, charged, refunded wrongly"
        ));
    }
    let uncharged: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT m.id FROM messages m WHERE m.status = 'delivered'
           AND NOT EXISTS (SELECT 1 FROM ledger_entries c WHERE c.message_id = m.id AND c.kind = 'commit')
         LIMIT 10",
    )
    .fetch_all(pool)
    .await?;
    for id in uncharged {
        violations.push(format!("message {id} was delivered and never charged"));
    }
    Ok(m)
}

/// Our messages the fakes received more than once, summed over both, with how many times.
fn sent_twice<'a>(received: &'a [(&'static str, Vec<String>)]) -> Vec<(&'a str, usize)> {
    let mut times: HashMap<&str, usize> = HashMap::new();
    for id in received.iter().flat_map(|(_, ids)| ids) {
        *times.entry(id).or_default() += 1;
    }
    times.into_iter().filter(|(_, n)| *n > 1).collect()
}

/// No message received twice by the fakes, on one route or across both; every charged message
/// received by the fake of the route it was charged for; and the split by route.
async fn providers(
    pool: &PgPool,
    received: &[(&'static str, Vec<String>)],
    violations: &mut Vec<String>,
) -> anyhow::Result<Providers> {
    let twice = sent_twice(received);
    if !twice.is_empty() {
        violations.push(format!(
            "{} messages sent more than once at the providers, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        ));
    }
    let charged: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.id::text, m.provider FROM messages m
         WHERE m.provider IS NOT NULL
           AND EXISTS (SELECT 1 FROM ledger_entries c WHERE c.message_id = m.id AND c.kind = 'commit')",
    )
    .fetch_all(pool)
    .await?;
    let at: HashSet<(&str, &str)> = received
        .iter()
        .flat_map(|(route, ids)| ids.iter().map(move |id| (*route, id.as_str())))
        .collect();
    let missing: Vec<&(String, String)> = charged
        .iter()
        .filter(|(id, route)| !at.contains(&(route.as_str(), id.as_str())))
        .collect();
    if !missing.is_empty() {
        violations.push(format!(
            "{} messages charged for a route whose provider never received them, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    let split = sqlx::query_as(
        "SELECT m.provider AS route, count(*) AS sent,
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ledger_entries c
                                               WHERE c.message_id = m.id AND c.kind = 'commit')) AS charged,
                count(*) FILTER (WHERE m.to_number LIKE '+' || $1 || '%') AS vodacom_tz
         FROM messages m WHERE m.provider IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .bind(BEEM_PREFIX)
    .fetch_all(pool)
    .await?;
    Ok(Providers {
        received: received.iter().map(|(at, ids)| (*at, ids.len())).collect(),
        duplicates: twice.len(),
        charged_not_received: missing.len(),
        split,
    })
}

async fn purchases(
    pool: &PgPool,
    bought: &Bought,
    violations: &mut Vec<String>,
) -> anyhow::Result<Purchases> {
    let mut p = Purchases {
        made: bought.purchases.len(),
        ..Purchases::default()
    };
    for purchase in &bought.purchases {
        *p.by_method.entry(purchase.method).or_default() += 1;
        let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE id = $1::uuid")
            .bind(&purchase.id)
            .fetch_one(pool)
            .await?;
        if status == "credited" {
            p.credited += 1;
            p.credits_purchased += purchase.credits;
        } else {
            violations.push(format!(
                "{} purchase {} ({}) ended {status}",
                purchase.method, purchase.id, purchase.how
            ));
        }
    }
    let in_ledger: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(available_delta), 0)::bigint FROM ledger_entries WHERE kind = 'purchase'",
    )
    .fetch_one(pool)
    .await?;
    if in_ledger != p.credits_purchased {
        violations.push(format!(
            "{} credits bought and credited, {in_ledger} in the ledger",
            p.credits_purchased
        ));
    }
    Ok(p)
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(twilio: &[&str], beem: &[&str]) -> [(&'static str, Vec<String>); 2] {
        let ids = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect();
        [("twilio", ids(twilio)), ("beem", ids(beem))]
    }

    #[test]
    fn a_message_at_both_providers_or_twice_at_one_is_sent_twice() {
        assert!(sent_twice(&received(&["a", "b"], &["c"])).is_empty());
        assert_eq!(sent_twice(&received(&["a", "b"], &["a"])), [("a", 2)]);
        assert_eq!(sent_twice(&received(&[], &["c", "c"])), [("c", 2)]);
    }

    #[test]
    fn credits_add_up_only_to_purchased_minus_charged_plus_refunded_plus_adjusted() {
        let company = |credits| Company {
            company_id: CompanyId(uuid::Uuid::nil()),
            credits,
            reserved: 0,
            purchased: 1_000,
            charged: 300,
            refunded: 20,
            adjusted: 200,
            held: 0,
        };
        assert!(company(920).adds_up());
        assert!(!company(919).adds_up(), "one credit lost");
        assert!(!company(940).adds_up(), "a refund given twice");
    }
}
