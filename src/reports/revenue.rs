//! Revenue and margin per period (UTC day or month) and company: credits sold and the money
//! received for them per currency, messages and segments charged, what the provider charged the
//! platform for them, refunds, and the margin per currency.
//!
//! Amounts of different currencies are never added together. The provider reports its price in
//! its own unit (USD for Twilio) and no exchange rate is invented: the margin in a currency is
//! the money received in it, net of money refunded in it, minus the provider's cost in it, so a
//! TZS purchase's margin is in TZS and the Twilio cost of the messages it paid for shows under
//! USD.
//!
//! Each figure falls in the period of the ledger entry that made it: a purchase when it was
//! credited, a message when it was charged, a refund when it was paid back; money refunded when
//! the refund was recorded (`payment_refunds`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::CompanyId;

/// The margin note the report carries, for whoever reads the figures without this module.
pub const CURRENCY_NOTE: &str = "amounts are per currency and never added together; provider \
    cost is in the provider's own price unit (USD for Twilio), without exchange rates, so margin \
    in a currency is money received in it, net of money refunded in it, minus provider cost in it";

/// The longest a report may span, in periods.
pub const MAX_DAYS: i64 = 366;
pub const MAX_MONTHS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Month,
}

impl GroupBy {
    fn sql_unit(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Month => "month",
        }
    }

    fn label_format(self) -> &'static str {
        match self {
            GroupBy::Day => "YYYY-MM-DD",
            GroupBy::Month => "YYYY-MM",
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(GroupBy::Day),
            "month" => Ok(GroupBy::Month),
            other => Err(format!("{other:?} is not day or month")),
        }
    }
}

/// What to report: the UTC days `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevenueQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: GroupBy,
    pub company: Option<CompanyId>,
}

impl RevenueQuery {
    /// Checks the range: `from` not after `to`, and at most [`MAX_DAYS`] days or
    /// [`MAX_MONTHS`] months. The refusal names the field at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.from > self.to {
            return Err(("to", "must not be before from".into()));
        }
        let days = (self.to - self.from).num_days() + 1;
        if self.group_by == GroupBy::Day && days > MAX_DAYS {
            return Err((
                "to",
                format!("a daily report spans at most {MAX_DAYS} days; group by month"),
            ));
        }
        if days > MAX_MONTHS * 31 {
            return Err(("to", format!("a report spans at most {MAX_MONTHS} months")));
        }
        Ok(())
    }
}

/// Money per currency code, e.g. `{"TZS": "25000.00", "USD": "8.00"}`.
pub type PerCurrency = BTreeMap<String, Decimal>;

/// One company in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevenueRow {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    pub company_id: Option<CompanyId>,
    pub company_name: String,
    /// Credits of purchases credited in the period.
    pub credits_sold: i64,
    /// The money those purchases brought, per currency (what arrived).
    #[schema(value_type = BTreeMap<String, String>)]
    pub received: PerCurrency,
    /// Money paid back in the period (card refunds), per currency, whenever it was received.
    #[schema(value_type = BTreeMap<String, String>)]
    pub refunded_amount: PerCurrency,
    /// Per currency: `received` minus `refunded_amount` (negative when refunds outweigh).
    #[schema(value_type = BTreeMap<String, String>)]
    pub net_received: PerCurrency,
    /// Credits taken back for refunded card payments.
    pub credits_reversed: i64,
    /// Messages charged in the period (handed to the provider).
    pub messages_sent: i64,
    pub segments_sent: i64,
    pub credits_charged: i64,
    /// What the provider charged for those messages, per its price unit.
    #[schema(value_type = BTreeMap<String, String>)]
    pub provider_cost: PerCurrency,
    /// Charged messages with no provider price (yet): the cost above leaves them out.
    pub unpriced_messages: i64,
    /// Messages refunded in the period, and their credits.
    pub messages_refunded: i64,
    pub credits_refunded: i64,
    /// Per currency: `net_received` minus `provider_cost` (no exchange rates).
    #[schema(value_type = BTreeMap<String, String>)]
    pub margin: PerCurrency,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevenueReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub group_by: GroupBy,
    pub company_id: Option<CompanyId>,
    /// How to read the money columns (see [`CURRENCY_NOTE`]).
    pub note: String,
    /// Period by period, companies in id order; a company with nothing in a period has no row.
    pub rows: Vec<RevenueRow>,
}

/// One figure of one company in one period, as the query gives it.
#[derive(sqlx::FromRow)]
struct Fact {
    period: String,
    company_id: CompanyId,
    company_name: String,
    metric: String,
    currency: Option<String>,
    value: Decimal,
}

/// The report for `q` (which [`RevenueQuery::check`] accepts).
pub async fn revenue(pool: &PgPool, q: &RevenueQuery) -> Result<RevenueReport, sqlx::Error> {
    let facts: Vec<Fact> = sqlx::query_as(
        "WITH e AS (
             SELECT to_char(date_trunc($3, e.created_at AT TIME ZONE 'UTC'), $4) AS period,
                    e.company_id, e.kind, e.available_delta, e.reserved_delta, e.payment_id,
                    e.message_id
             FROM ledger_entries e
             WHERE e.created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
               AND e.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
               AND e.kind IN ('purchase', 'purchase_reversal', 'commit', 'refund')
               AND ($5::uuid IS NULL OR e.company_id = $5)
         ), facts AS (
             SELECT period, company_id, 'credits_sold' AS metric, NULL::text AS currency,
                    sum(available_delta)::numeric AS value
             FROM e WHERE kind = 'purchase' GROUP BY 1, 2
             UNION ALL
             SELECT e.period, e.company_id, 'received', p.currency,
                    sum(COALESCE(p.amount_received, p.amount))
             FROM e JOIN payments p ON p.id = e.payment_id WHERE e.kind = 'purchase' GROUP BY 1, 2, 4
             UNION ALL
             SELECT period, company_id, 'credits_reversed', NULL, -sum(available_delta)
             FROM e WHERE kind = 'purchase_reversal' GROUP BY 1, 2
             UNION ALL
             SELECT e.period, e.company_id, m.metric, m.currency, sum(m.value)
             FROM e JOIN messages msg ON msg.id = e.message_id
             CROSS JOIN LATERAL (VALUES
                 ('messages_sent', NULL, 1::numeric),
                 ('segments_sent', NULL, msg.segments::numeric),
                 ('credits_charged', NULL, (-(e.reserved_delta + e.available_delta))::numeric),
                 ('provider_cost', msg.price_currency, msg.price),
                 ('unpriced_messages', NULL, CASE WHEN msg.price IS NULL THEN 1 ELSE 0 END::numeric)
             ) AS m (metric, currency, value)
             WHERE e.kind = 'commit' AND m.value IS NOT NULL
             GROUP BY 1, 2, 3, 4
             UNION ALL
             SELECT period, company_id, 'messages_refunded', NULL, count(*)::numeric
             FROM e WHERE kind = 'refund' GROUP BY 1, 2
             UNION ALL
             SELECT period, company_id, 'credits_refunded', NULL, sum(available_delta)::numeric
             FROM e WHERE kind = 'refund' GROUP BY 1, 2
             UNION ALL
             SELECT to_char(date_trunc($3, r.created_at AT TIME ZONE 'UTC'), $4), r.company_id,
                    'refunded_amount', r.currency, sum(r.amount)
             FROM payment_refunds r
             WHERE r.created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
               AND r.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
               AND ($5::uuid IS NULL OR r.company_id = $5)
             GROUP BY 1, 2, 4
         )
         SELECT f.period, f.company_id, c.name AS company_name, f.metric, f.currency, f.value
         FROM facts f JOIN companies c ON c.id = f.company_id
         ORDER BY f.period, f.company_id",
    )
    .bind(q.from)
    .bind(q.to)
    .bind(q.group_by.sql_unit())
    .bind(q.group_by.label_format())
    .bind(q.company)
    .fetch_all(pool)
    .await?;
    Ok(RevenueReport {
        from: q.from,
        to: q.to,
        group_by: q.group_by,
        company_id: q.company,
        note: CURRENCY_NOTE.into(),
        rows: fold(facts),
    })
}

/// The facts (in period and company order) as one row per period and company, with the margin.
fn fold(facts: Vec<Fact>) -> Vec<RevenueRow> {
    let mut rows: Vec<RevenueRow> = Vec::new();
    for f in facts {
        let same = rows
            .last()
            .is_some_and(|r| r.period == f.period && r.company_id == Some(f.company_id));
        if !same {
            rows.push(RevenueRow {
                period: f.period.clone(),
                company_id: Some(f.company_id),
                company_name: f.company_name.clone(),
                ..RevenueRow::default()
            });
        }
        let row = rows.last_mut().expect("pushed above");
        let count = i64::try_from(f.value.trunc()).unwrap_or(i64::MAX);
        match (f.metric.as_str(), f.currency) {
            ("received", Some(c)) => *row.received.entry(c).or_default() += f.value,
            ("refunded_amount", Some(c)) => *row.refunded_amount.entry(c).or_default() += f.value,
            ("provider_cost", Some(c)) => *row.provider_cost.entry(c).or_default() += f.value,
            ("credits_sold", _) => row.credits_sold += count,
            ("credits_reversed", _) => row.credits_reversed += count,
            ("messages_sent", _) => row.messages_sent += count,
            ("segments_sent", _) => row.segments_sent += count,
            ("credits_charged", _) => row.credits_charged += count,
            ("unpriced_messages", _) => row.unpriced_messages += count,
            ("messages_refunded", _) => row.messages_refunded += count,
            ("credits_refunded", _) => row.credits_refunded += count,
            // A priced message whose unit is missing has no currency to be shown under.
            (metric, currency) => {
                tracing::warn!(
                    metric,
                    ?currency,
                    "revenue figure without a currency left out"
                )
            }
        }
    }
    for row in &mut rows {
        row.net_received = minus(&row.received, &row.refunded_amount);
        row.margin = minus(&row.net_received, &row.provider_cost);
    }
    rows
}

/// Per currency: `a` minus `b` (a currency only in `b` comes out negative).
fn minus(a: &PerCurrency, b: &PerCurrency) -> PerCurrency {
    let mut out = a.clone();
    for (currency, amount) in b {
        *out.entry(currency.clone()).or_default() -= amount;
    }
    out
}

/// The report as CSV (RFC 4180, header first): one line per row; the money columns are one per
/// currency that appears anywhere in the report (`received_TZS`, `refunded_amount_USD`,
/// `net_received_USD`, `provider_cost_USD`, `margin_USD`, ...), empty where a row has none of it.
pub fn to_csv(report: &RevenueReport) -> Result<String, csv::Error> {
    type Pick = fn(&RevenueRow) -> &PerCurrency;
    let currencies = |pick: Pick| {
        let mut all: Vec<&String> = report.rows.iter().flat_map(|r| pick(r).keys()).collect();
        all.sort();
        all.dedup();
        all
    };
    let money: [(&str, Pick); 5] = [
        ("received", |r| &r.received),
        ("refunded_amount", |r| &r.refunded_amount),
        ("net_received", |r| &r.net_received),
        ("provider_cost", |r| &r.provider_cost),
        ("margin", |r| &r.margin),
    ];
    let columns: Vec<(&str, Pick, Vec<&String>)> = money
        .into_iter()
        .map(|(name, pick)| (name, pick, currencies(pick)))
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "period",
        "company_id",
        "company_name",
        "credits_sold",
        "credits_reversed",
        "messages_sent",
        "segments_sent",
        "credits_charged",
        "unpriced_messages",
        "messages_refunded",
        "credits_refunded",
    ]
    .map(String::from)
    .to_vec();
    for (name, _, currencies) in &columns {
        header.extend(currencies.iter().map(|c| format!("{name}_{c}")));
    }
    out.write_record(&header)?;
    for r in &report.rows {
        let mut line = vec![
            r.period.clone(),
            r.company_id.map(|c| c.to_string()).unwrap_or_default(),
            r.company_name.clone(),
        ];
        line.extend(
            [
                r.credits_sold,
                r.credits_reversed,
                r.messages_sent,
                r.segments_sent,
                r.credits_charged,
                r.unpriced_messages,
                r.messages_refunded,
                r.credits_refunded,
            ]
            .map(|n| n.to_string()),
        );
        for (_, pick, currencies) in &columns {
            let map = pick(r);
            line.extend(
                currencies
                    .iter()
                    .map(|c| map.get(*c).map(|a| a.to_string()).unwrap_or_default()),
            );
        }
        out.write_record(&line)?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(pairs: &[(&str, &str)]) -> PerCurrency {
        pairs
            .iter()
            .map(|(c, a)| (c.to_string(), a.parse().unwrap()))
            .collect()
    }

    #[test]
    fn margin_is_per_currency_and_never_adds_currencies() {
        let m = minus(
            &money(&[("TZS", "25000.00"), ("USD", "8.00")]),
            &money(&[("USD", "0.0225")]),
        );
        assert_eq!(m, money(&[("TZS", "25000.00"), ("USD", "7.9775")]));
        assert_eq!(
            minus(&money(&[("KES", "1300.00")]), &money(&[("USD", "0.015")])),
            money(&[("KES", "1300.00"), ("USD", "-0.015")])
        );
    }

    #[test]
    fn csv_has_a_column_per_currency_and_escapes_names() {
        let report = RevenueReport {
            from: "2026-11-01".parse().unwrap(),
            to: "2026-11-30".parse().unwrap(),
            group_by: GroupBy::Month,
            company_id: None,
            note: CURRENCY_NOTE.into(),
            rows: vec![RevenueRow {
                period: "2026-11".into(),
                company_name: "Duka, \"Bora\"".into(),
                credits_sold: 1000,
                received: money(&[("TZS", "25000.00")]),
                refunded_amount: money(&[("TZS", "5000.00")]),
                net_received: money(&[("TZS", "20000.00")]),
                provider_cost: money(&[("USD", "0.0075")]),
                margin: money(&[("TZS", "25000.00"), ("USD", "-0.0075")]),
                messages_sent: 1,
                segments_sent: 1,
                credits_charged: 1,
                ..RevenueRow::default()
            }],
        };
        let csv = to_csv(&report).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "period,company_id,company_name,credits_sold,credits_reversed,messages_sent,\
             segments_sent,credits_charged,unpriced_messages,messages_refunded,credits_refunded,\
             received_TZS,refunded_amount_TZS,net_received_TZS,provider_cost_USD,margin_TZS,\
             margin_USD"
        );
        assert_eq!(
            lines[1],
            "2026-11,,\"Duka, \"\"Bora\"\"\",1000,0,1,1,1,0,0,0,25000.00,5000.00,20000.00,0.0075,\
             25000.00,-0.0075"
        );
    }

    #[test]
    fn a_range_is_checked() {
        let q = |from: &str, to: &str, group_by| RevenueQuery {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            group_by,
            company: None,
        };
        assert!(q("2026-01-01", "2026-12-31", GroupBy::Day).check().is_ok());
        assert_eq!(
            q("2026-02-01", "2026-01-01", GroupBy::Day)
                .check()
                .unwrap_err()
                .0,
            "to"
        );
        assert!(q("2025-01-01", "2026-12-31", GroupBy::Day).check().is_err());
        assert!(
            q("2025-01-01", "2026-12-31", GroupBy::Month)
                .check()
                .is_ok()
        );
    }
}
