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
    /// Ledger entries read: all of them, or those after the checkpoint the audit started from.
    pub entries: i64,
    /// The checkpoint the audit started from (`None`: it read every entry).
    pub since_entry: Option<i64>,
    /// The checkpoint in force after the audit: the one it recorded when clean (`None` when it
    /// recorded none).
    pub checkpoint: Option<i64>,
    pub violations: Vec<Violation>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Which entries `admin audit` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every entry, every hold, every charged or refunded message.
    Full,
    /// The entries after the latest checkpoint (every entry when there is none yet), the
    /// holds, messages and payments they name, every balance and every active hold. What the
    /// checkpoint already covered is not read again: a row changed behind the ledger's back
    /// there is found by the next full audit, not by this one.
    SinceCheckpoint,
}

/// Each company's entry sums: those of checkpoint `$1` (none when `$1` is 0) plus those of its
/// entries after `$1` up to `$2`. The one definition serves the checks and the checkpoints.
macro_rules! entry_sums {
    () => {
        "WITH sums AS (
           SELECT company_id, sum(a) a, sum(r) r, sum(p) p, sum(s) s, sum(f) f, sum(j) j
           FROM (SELECT company_id, available a, reserved r, purchased p, sent s, refunded f, adjusted j
                 FROM audit_checkpoint_sums WHERE through_entry_id = $1
                 UNION ALL
                 SELECT company_id, available_delta, reserved_delta,
                        CASE WHEN kind IN ('purchase', 'purchase_reversal') THEN available_delta ELSE 0 END,
                        CASE WHEN kind = 'commit' THEN -(available_delta + reserved_delta) ELSE 0 END,
                        CASE WHEN kind = 'refund' THEN available_delta ELSE 0 END,
                        CASE WHEN kind = 'adjustment' THEN available_delta ELSE 0 END
                 FROM ledger_entries WHERE id > $1 AND id <= $2) parts
           GROUP BY company_id) "
    };
}

/// Each check is a query of `$1`, the checkpoint the audit starts from (0: every entry), `$2`,
/// the last entry it reads, and the rows those entries name, `$3` holds, `$4` charged messages
/// and `$5` refunded messages (each NULL in a full audit: every one), returning
/// `(company_id, detail)` for every row that breaks it. Plans are made for the values given
/// (`NULL IS NULL OR …` folds away), so a full audit reads each table in one pass and one since a
/// checkpoint reads the named rows by index.
const CHECKS: &[(&str, &str)] = &[
    (
        "balance_equals_entries",
        concat!(
            entry_sums!(),
            "SELECT b.company_id, format('available %s reserved %s, entries sum to %s and %s',
                    b.available, b.reserved, COALESCE(s.a, 0), COALESCE(s.r, 0))
             FROM balances b LEFT JOIN sums s USING (company_id)
             WHERE b.available <> COALESCE(s.a, 0) OR b.reserved <> COALESCE(s.r, 0)"
        ),
    ),
    (
        "entries_without_balance",
        "SELECT e.company_id, format('%s entries but no balance row', count(*))
         FROM ledger_entries e LEFT JOIN balances b USING (company_id)
         WHERE e.id > $1 AND e.id <= $2 AND b.company_id IS NULL GROUP BY e.company_id",
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
        concat!(
            entry_sums!(),
            "SELECT b.company_id, 'a running total disagrees with the entries'
             FROM balances b LEFT JOIN sums t USING (company_id)
             WHERE b.total_purchased <> COALESCE(t.p, 0) OR b.total_sent <> COALESCE(t.s, 0)
                OR b.total_refunded <> COALESCE(t.f, 0) OR b.total_adjusted <> COALESCE(t.j, 0)"
        ),
    ),
    (
        // Each join meets one of the partial unique indexes by hold (at most one row each).
        "hold_resolved_at_most_once",
        "SELECT h.company_id, format('hold %s is %s with %s reserve and %s resolving entries',
                h.id, h.status, count(r.id), count(x.id))
         FROM holds h
         LEFT JOIN ledger_entries r ON r.hold_id = h.id AND r.kind = 'reserve'
         LEFT JOIN ledger_entries x ON x.hold_id = h.id AND x.kind IN ('commit', 'release')
         WHERE $3::uuid[] IS NULL OR h.id = ANY($3)
         GROUP BY h.id
         HAVING count(r.id) <> 1
             OR count(x.id) FILTER (WHERE x.kind = 'commit') <> (CASE WHEN h.status = 'committed' THEN 1 ELSE 0 END)
             OR count(x.id) FILTER (WHERE x.kind = 'release') <> (CASE WHEN h.status = 'released' THEN 1 ELSE 0 END)
             OR COALESCE(sum(r.reserved_delta), 0) + COALESCE(sum(x.reserved_delta), 0)
                <> (CASE WHEN h.status = 'active' THEN h.credits ELSE 0 END)",
    ),
    (
        "charge_matches_hold",
        "SELECT h.company_id, format('hold %s charged %s but its commit entry charged %s',
                h.id, h.charged, -(e.available_delta + e.reserved_delta))
         FROM holds h JOIN ledger_entries e ON e.hold_id = h.id AND e.kind = 'commit'
         WHERE ($3::uuid[] IS NULL OR h.id = ANY($3))
           AND h.charged IS DISTINCT FROM -(e.available_delta + e.reserved_delta)",
    ),
    (
        "message_charged_at_most_once",
        "SELECT company_id, format('message %s has %s charges', message_id, count(*))
         FROM ledger_entries
         WHERE kind = 'commit'
           AND ($4::uuid[] IS NULL OR message_id = ANY($4))
         GROUP BY company_id, message_id HAVING count(*) > 1",
    ),
    (
        "message_refunded_at_most_once_and_only_what_was_charged",
        "SELECT r.company_id, format('message %s refunded %s time(s), %s credits, charged %s',
                r.message_id, count(*), sum(r.available_delta), max(h.charged))
         FROM ledger_entries r
         LEFT JOIN holds h ON h.message_id = r.message_id AND h.status = 'committed'
         WHERE r.kind = 'refund'
           AND ($5::uuid[] IS NULL OR r.message_id = ANY($5))
         GROUP BY r.company_id, r.message_id
         HAVING count(*) > 1 OR max(h.charged) IS NULL OR sum(r.available_delta) <> max(h.charged)",
    ),
    // Payments are few beside messages, and their entries have their own indexes: always all.
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

/// Runs every invariant check over every entry (one consistent snapshot); records nothing.
pub async fn audit(pool: &PgPool) -> Result<AuditReport, sqlx::Error> {
    check(pool, 0).await
}

/// The audit of `admin audit`: over `scope`'s entries, and, when clean, records a checkpoint
/// through the last entry every transaction below had committed at, for the next audit since
/// a checkpoint to start from.
pub async fn audit_and_checkpoint(pool: &PgPool, scope: Scope) -> Result<AuditReport, sqlx::Error> {
    // Found before the audit's snapshot is taken, so the audit sees every entry up to it.
    let horizon = committed_horizon(pool).await?;
    let latest = latest_checkpoint(pool).await?.map(|c| c.through_entry_id);
    let since = match (scope, latest) {
        (Scope::SinceCheckpoint, Some(checkpoint))
            if worth_reading_since(checkpoint, horizon.unwrap_or(checkpoint)) =>
        {
            checkpoint
        }
        _ => 0,
    };
    let mut report = check(pool, since).await?;
    if !report.is_clean() {
        return Ok(report);
    }
    report.checkpoint = match horizon {
        Some(through) => record_checkpoint(pool, since, through).await?,
        None => None,
    };
    Ok(report)
}

/// Whether reading from `checkpoint` to `last` costs less than a full audit. Past a tenth of
/// the ledger it does not: an entry read since a checkpoint costs about five times one read
/// in full (its holds and messages come by index, one by one, not in one pass). Entry ids are
/// dense enough for `last` to stand for the ledger's size.
fn worth_reading_since(checkpoint: i64, last: i64) -> bool {
    const AT_LEAST: i64 = 100_000;
    let new = last.saturating_sub(checkpoint);
    new <= AT_LEAST || new.saturating_mul(10) <= last
}

/// A clean audit's checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    /// Every entry up to this one is in the checkpoint's sums.
    pub through_entry_id: i64,
    pub taken_at: chrono::DateTime<chrono::Utc>,
}

/// The latest checkpoint, if a clean audit has recorded one.
pub async fn latest_checkpoint(pool: &PgPool) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query_as(
        "SELECT through_entry_id, taken_at FROM audit_checkpoints
         ORDER BY through_entry_id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// The rows the entries after a checkpoint name (`None` in a full audit: every one).
#[derive(Default, sqlx::FromRow)]
struct Named {
    holds: Option<Vec<uuid::Uuid>>,
    charged: Option<Vec<uuid::Uuid>>,
    refunded: Option<Vec<uuid::Uuid>>,
}

/// Every invariant over the entries after checkpoint `since` (0: all), up to the last one the
/// snapshot sees.
async fn check(pool: &PgPool, since: i64) -> Result<AuditReport, sqlx::Error> {
    let through = i64::MAX;
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    // Each check is planned for the values it is given (`NULL IS NULL OR …` folds away), however
    // often the connection has run it; a full audit hashes and sorts millions of rows.
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    let named = if since == 0 {
        Named::default()
    } else {
        sqlx::query_as(
            "SELECT COALESCE(array_agg(DISTINCT hold_id) FILTER (WHERE hold_id IS NOT NULL), '{}') holds,
                    COALESCE(array_agg(DISTINCT message_id) FILTER (WHERE kind = 'commit'), '{}') charged,
                    COALESCE(array_agg(DISTINCT message_id) FILTER (WHERE kind = 'refund'), '{}') refunded
             FROM ledger_entries WHERE id > $1 AND id <= $2",
        )
        .bind(since)
        .bind(through)
        .fetch_one(&mut *tx)
        .await?
    };
    let mut violations = Vec::new();
    for (invariant, sql) in CHECKS {
        let rows: Vec<(Option<CompanyId>, String)> = sqlx::query_as(*sql)
            .bind(since)
            .bind(through)
            .bind(&named.holds)
            .bind(&named.charged)
            .bind(&named.refunded)
            .fetch_all(&mut *tx)
            .await?;
        violations.extend(rows.into_iter().map(|(company_id, detail)| Violation {
            invariant,
            company_id,
            detail,
        }));
    }
    let (companies, entries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM balances),
                (SELECT count(*) FROM ledger_entries WHERE id > $1 AND id <= $2)",
    )
    .bind(since)
    .bind(through)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(AuditReport {
        companies,
        entries,
        since_entry: (since > 0).then_some(since),
        checkpoint: None,
        violations,
    })
}

/// The last entry below which every transaction that writes the ledger has committed: taken
/// under a brief SHARE lock on `ledger_entries`, which waits for the writers in progress (an
/// entry's id is drawn inside its insert, under the lock that one conflicts with) and holds new
/// ones off for one index read. `None` when writers kept it waiting past half a second (new
/// writers queue behind the lock meanwhile, so it never waits longer): no checkpoint this time.
async fn committed_horizon(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '500ms'")
        .execute(&mut *tx)
        .await?;
    let locked = sqlx::query("LOCK TABLE ledger_entries IN SHARE MODE")
        .execute(&mut *tx)
        .await;
    match locked {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
            tracing::warn!("ledger writers held the audit's checkpoint off: none recorded");
            return Ok(None);
        }
        other => other?,
    };
    let through: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM ledger_entries")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((through > 0).then_some(through))
}

/// Records checkpoint `through` from checkpoint `since` (0: from no checkpoint) and the entries
/// between, and drops the older ones; answers the latest checkpoint after. Recordings take
/// turns; one that a later checkpoint has overtaken, or whose starting checkpoint another has
/// dropped meanwhile, records nothing (the other's is as good).
async fn record_checkpoint(
    pool: &PgPool,
    since: i64,
    through: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE audit_checkpoints IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT max(through_entry_id) FROM audit_checkpoints")
            .fetch_one(&mut *tx)
            .await?;
    let overtaken = latest.is_some_and(|l| l >= through);
    if overtaken || (since > 0 && latest != Some(since)) {
        return Ok(latest);
    }
    sqlx::query("INSERT INTO audit_checkpoints (through_entry_id) VALUES ($1)")
        .bind(through)
        .execute(&mut *tx)
        .await?;
    sqlx::query(concat!(
        entry_sums!(),
        "INSERT INTO audit_checkpoint_sums
             (through_entry_id, company_id, available, reserved, purchased, sent, refunded, adjusted)
         SELECT $2, company_id, a, r, p, s, f, j FROM sums"
    ))
    .bind(since)
    .bind(through)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM audit_checkpoints WHERE through_entry_id < $1")
        .bind(through)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(through))
}

#[cfg(test)]
mod tests {
    use super::worth_reading_since;

    #[test]
    fn far_behind_its_checkpoint_an_audit_reads_everything_instead() {
        // A few new entries: always since the checkpoint, however small the ledger.
        assert!(worth_reading_since(2, 40));
        assert!(worth_reading_since(0, 100_000));
        // Past 100,000 new entries, only while they are at most a tenth of the ledger.
        assert!(worth_reading_since(1_800_000, 2_000_000));
        assert!(!worth_reading_since(1_700_000, 2_000_000));
        assert!(!worth_reading_since(21_263, 2_041_075));
    }
}
