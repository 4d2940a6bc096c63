//! The ledger's invariants (DESIGN.md section 3), checked against the data. `admin audit` and the
//! tests run it; any violation means a bug, never a state to tolerate.

use serde::Serialize;
use sqlx::PgPool;

use crate::domain::CompanyId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable name of the invariant broken.
    pub invariant: &'static str,
    pub company_id: Option<CompanyId>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub companies: i64,
    pub entries: i64,
    pub violations: Vec<Violation>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Each check is a query returning `(company_id, detail)` for every row that breaks it.
const CHECKS: &[(&str, &str)] = &[
    (
        "balance_equals_entries",
        "SELECT b.company_id, format('available %s reserved %s, entries sum to %s and %s',
                b.available, b.reserved, COALESCE(s.a, 0), COALESCE(s.r, 0))
         FROM balances b
         LEFT JOIN (SELECT company_id, sum(available_delta) a, sum(reserved_delta) r
                    FROM ledger_entries GROUP BY company_id) s USING (company_id)
         WHERE b.available <> COALESCE(s.a, 0) OR b.reserved <> COALESCE(s.r, 0)",
    ),
    (
        "entries_without_balance",
        "SELECT e.company_id, format('%s entries but no balance row', count(*))
         FROM ledger_entries e LEFT JOIN balances b USING (company_id)
         WHERE b.company_id IS NULL GROUP BY e.company_id",
    ),
    (
        "no_negative_balance",
        "SELECT company_id, format('available %s reserved %s', available, reserved)
         FROM balances WHERE available < 0 OR reserved < 0",
    ),
    (
        "reserved_equals_active_holds",
        "SELECT b.company_id, format('reserved %s but active holds total %s', b.reserved, COALESCE(h.s, 0))
         FROM balances b
         LEFT JOIN (SELECT company_id, sum(credits) s FROM holds WHERE status = 'active' GROUP BY company_id) h
              USING (company_id)
         WHERE b.reserved <> COALESCE(h.s, 0)",
    ),
    (
        "totals_equal_entries",
        "SELECT b.company_id, 'a running total disagrees with the entries'
         FROM balances b
         LEFT JOIN (SELECT company_id,
                    sum(available_delta) FILTER (WHERE kind IN ('purchase', 'purchase_reversal')) p,
                    sum(-(available_delta + reserved_delta)) FILTER (WHERE kind = 'commit') s,
                    sum(available_delta) FILTER (WHERE kind = 'refund') r,
                    sum(available_delta) FILTER (WHERE kind = 'adjustment') a
                    FROM ledger_entries GROUP BY company_id) t USING (company_id)
         WHERE b.total_purchased <> COALESCE(t.p, 0) OR b.total_sent <> COALESCE(t.s, 0)
            OR b.total_refunded <> COALESCE(t.r, 0) OR b.total_adjusted <> COALESCE(t.a, 0)",
    ),
    (
        "hold_resolved_at_most_once",
        "SELECT h.company_id, format('hold %s is %s with %s reserve and %s resolving entries',
                h.id, h.status, count(e.id) FILTER (WHERE e.kind = 'reserve'),
                count(e.id) FILTER (WHERE e.kind IN ('commit', 'release')))
         FROM holds h LEFT JOIN ledger_entries e ON e.hold_id = h.id
         GROUP BY h.id
         HAVING count(e.id) FILTER (WHERE e.kind = 'reserve') <> 1
             OR count(e.id) FILTER (WHERE e.kind = 'commit') <> (CASE WHEN h.status = 'committed' THEN 1 ELSE 0 END)
             OR count(e.id) FILTER (WHERE e.kind = 'release') <> (CASE WHEN h.status = 'released' THEN 1 ELSE 0 END)
             OR sum(e.reserved_delta) <> (CASE WHEN h.status = 'active' THEN h.credits ELSE 0 END)",
    ),
    (
        "charge_matches_hold",
        "SELECT h.company_id, format('hold %s charged %s but its commit entry charged %s',
                h.id, h.charged, -(e.available_delta + e.reserved_delta))
         FROM holds h JOIN ledger_entries e ON e.hold_id = h.id AND e.kind = 'commit'
         WHERE h.charged IS DISTINCT FROM -(e.available_delta + e.reserved_delta)",
    ),
    (
        "message_charged_at_most_once",
        "SELECT company_id, format('message %s has %s charges', message_id, count(*))
         FROM ledger_entries WHERE kind = 'commit' GROUP BY company_id, message_id HAVING count(*) > 1",
    ),
    (
        "message_refunded_at_most_once_and_only_what_was_charged",
        "SELECT r.company_id, format('message %s refunded %s time(s), %s credits, charged %s',
                r.message_id, count(*), sum(r.available_delta), max(h.charged))
         FROM ledger_entries r
         LEFT JOIN holds h ON h.message_id = r.message_id AND h.status = 'committed'
         WHERE r.kind = 'refund'
         GROUP BY r.company_id, r.message_id
         HAVING count(*) > 1 OR max(h.charged) IS NULL OR sum(r.available_delta) <> max(h.charged)",
    ),
    (
        "payment_credited_at_most_once",
        "SELECT e.company_id, format('payment %s: %s purchase entries, status %s', e.payment_id, count(*), p.status)
         FROM ledger_entries e JOIN payments p ON p.id = e.payment_id
         WHERE e.kind = 'purchase'
         GROUP BY e.company_id, e.payment_id, p.status, p.company_id
         HAVING count(*) > 1 OR p.status NOT IN ('credited', 'refunded') OR p.company_id <> e.company_id",
    ),
    (
        "credited_payment_has_entry",
        "SELECT p.company_id, format('payment %s is credited but has no purchase entry', p.id)
         FROM payments p
         WHERE p.status = 'credited'
           AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.payment_id = p.id AND e.kind = 'purchase')",
    ),
    (
        "reversals_match_payment",
        "SELECT p.company_id, format('payment %s: credits_reversed %s, reversal entries take %s, shortfall %s of %s credited',
                p.id, p.credits_reversed, COALESCE(-s.taken, 0), p.reversal_shortfall, COALESCE(c.credited, 0))
         FROM payments p
         LEFT JOIN (SELECT payment_id, sum(available_delta) taken FROM ledger_entries
                    WHERE kind = 'purchase_reversal' GROUP BY payment_id) s ON s.payment_id = p.id
         LEFT JOIN (SELECT payment_id, sum(available_delta) credited FROM ledger_entries
                    WHERE kind = 'purchase' GROUP BY payment_id) c ON c.payment_id = p.id
         WHERE p.credits_reversed <> COALESCE(-s.taken, 0)
            OR p.credits_reversed + p.reversal_shortfall > COALESCE(c.credited, 0)",
    ),
    (
        "reversal_matches_claims",
        "SELECT p.company_id, format('payment %s: reversed %s + shortfall %s, but its refunds claim %s and its open or lost disputes %s of %s',
                p.id, p.credits_reversed, p.reversal_shortfall, p.credits_refund_share,
                COALESCE(d.share, 0), COALESCE(p.credits_granted, p.credits))
         FROM payments p
         LEFT JOIN (SELECT payment_id, sum(credits_share) share FROM payment_disputes
                    WHERE outcome IN ('open', 'lost') GROUP BY payment_id) d ON d.payment_id = p.id
         WHERE p.status IN ('credited', 'refunded')
           AND p.credits_reversed + p.reversal_shortfall
               <> LEAST(COALESCE(p.credits_granted, p.credits), p.credits_refund_share + COALESCE(d.share, 0))",
    ),
];

/// Runs every invariant check over all companies (one consistent snapshot).
pub async fn audit(pool: &PgPool) -> Result<AuditReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut violations = Vec::new();
    for (invariant, sql) in CHECKS {
        let rows: Vec<(Option<CompanyId>, String)> =
            sqlx::query_as(*sql).fetch_all(&mut *tx).await?;
        violations.extend(rows.into_iter().map(|(company_id, detail)| Violation {
            invariant,
            company_id,
            detail,
        }));
    }
    let (companies, entries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM balances), (SELECT count(*) FROM ledger_entries)",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(AuditReport {
        companies,
        entries,
        violations,
    })
}
