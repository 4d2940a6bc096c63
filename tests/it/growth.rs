//! What must not grow with the tables (issue 17, `cargo bench --bench growth` measures it): the
//! message listing walks an index in its own order, the reconciler's pass reads only what is
//! still open, and `/metrics` reads counters kept as the tables change instead of counting them.

use std::collections::BTreeMap;

use copcca_sms::db::fleet_counters;
use copcca_sms::domain::{CompanyId, MessageId};
use copcca_sms::messages::{MessageStatus, batch, recovery, store};
use serde_json::Value;
use sqlx::PgPool;

use crate::sending::{DRAIN, Harness};

/// 20,000 messages over 20 companies (company 0 has a twentieth of them), 10 % failed, ids in
/// time order as the service makes them, analysed; returns company 0.
async fn many_messages(pool: &PgPool) -> uuid::Uuid {
    sqlx::query(
        "INSERT INTO companies (id, name, country, currency, timezone)
         SELECT md5('company' || c)::uuid, 'Duka ' || c, 'TZ', 'TZS', 'Africa/Dar_es_Salaam'
         FROM generate_series(0, 19) AS c",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, status,
                               sender, created_at, updated_at)
         SELECT (lpad(to_hex(1700000000000 + i * 1000), 12, '0') || '7000' || lpad(to_hex(i), 16, '0'))::uuid,
                md5('company' || ((i / 7) % 20))::uuid, '+2557' || lpad(i::text, 8, '0'), 'Reminder', 'GSM-7',
                1, 1, CASE WHEN i % 10 = 3 THEN 'failed' ELSE 'delivered' END, 'test',
                to_timestamp(1700000000 + i), to_timestamp(1700000000 + i)
         FROM generate_series(1, 20000) AS i",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE messages").execute(pool).await.unwrap();
    sqlx::query_scalar("SELECT md5('company' || 0)::uuid")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The plan of the listing's statement (`store::list_sql`), prepared and run as sqlx runs it,
/// as JSON text: every status or `failed` only, from the start or from a cursor.
async fn listing_plan(
    conn: &mut sqlx::PgConnection,
    company: uuid::Uuid,
    status: bool,
    to: bool,
    cursor: bool,
) -> String {
    let statuses = if status {
        vec![MessageStatus::Failed]
    } else {
        MessageStatus::ALL.to_vec()
    };
    let sql = store::list_sql(&statuses, to, cursor, 50);
    let mut args = vec![format!("'{company}'::uuid")];
    if to {
        args.push("'+255700000006'".into());
    }
    if cursor {
        args.push("to_timestamp(1700010000)".into());
        args.push("'018bcfe5-6800-7000-0000-000000002710'::uuid".into());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE listing AS {sql}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON) EXECUTE listing({})",
        args.join(", ")
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query("DEALLOCATE listing")
        .execute(&mut *conn)
        .await
        .unwrap();
    plan.to_string()
}

/// Every scan of `messages` in a plan: (node type, index name).
fn scans(plan: &Value, into: &mut Vec<(String, String)>) {
    if plan["Relation Name"] == "messages" {
        into.push((
            plan["Node Type"].as_str().unwrap_or("").to_string(),
            plan["Index Name"].as_str().unwrap_or("").to_string(),
        ));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        scans(child, into);
    }
    if let Some(inner) = plan.get("Plan") {
        scans(inner, into);
    }
}

/// A page of a company's messages (and the next page, from a cursor; and of one status) is read
/// by walking `messages_company_status_idx` from the cursor in the listing's order, a branch per
/// status (to one number: `messages_to_idx`, one branch): no sort of the company's messages, no walk of the primary key over other companies'
/// (before migration 0026 the plan was one or the other), with the plan made for the values or
/// the generic one a prepared statement moves to.
#[sqlx::test]
async fn the_listing_walks_the_company_index_in_its_order(pool: PgPool) {
    let company = many_messages(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        for case in 0..8 {
            let (status, to, cursor) = (case & 1 == 1, case & 2 == 2, case & 4 == 4);
            let plan = listing_plan(&mut conn, company, status, to, cursor).await;
            let parsed: Value = serde_json::from_str(&plan).unwrap();
            let mut found = Vec::new();
            scans(&parsed[0], &mut found);
            let case = format!("{mode}, one status {status}, to {to}, cursor {cursor}: {plan}");
            let (branches_expected, index) = match (status, to) {
                (_, true) => (1, "messages_to_idx"),
                (true, false) => (1, "messages_company_status_idx"),
                (false, false) => (6, "messages_company_status_idx"),
            };
            // The one `messages` scan outside the branches is the refund flag's lookup, by id.
            let branches: Vec<_> = found
                .iter()
                .filter(|(_, index)| index != "messages_pkey")
                .collect();
            assert_eq!(branches.len(), branches_expected, "{case}");
            assert!(
                branches
                    .iter()
                    .all(|(node, name)| node == "Index Scan" && name == index),
                "{case}"
            );
            assert!(!plan.contains("\"Sort\""), "{case}");
        }
    }
    // And the pages themselves: newest first, 50, then the next 50 from the last.
    let first = store::list(&pool, company.into(), None, None, None, 50)
        .await
        .unwrap();
    assert_eq!(first.len(), 50);
    assert!(first.windows(2).all(|w| w[0].id > w[1].id));
    let next = store::list(&pool, company.into(), None, None, Some(first[49].id), 50)
        .await
        .unwrap();
    assert_eq!(next.len(), 50);
    assert!(next[0].id < first[49].id);
    let failed = store::list(
        &pool,
        company.into(),
        Some(MessageStatus::Failed),
        None,
        None,
        50,
    )
    .await
    .unwrap();
    assert_eq!(failed.len(), 50);
    assert!(
        failed
            .iter()
            .all(|m| m.view.status == MessageStatus::Failed)
    );
    let to = store::list(&pool, company.into(), None, Some("+255700000006"), None, 50)
        .await
        .unwrap();
    assert_eq!(to.len(), 1);
    assert_eq!(to[0].view.to.as_str(), "+255700000006");
}

/// A page is planned once per connection, not once per request. With one company holding most
/// of the messages, the plan made for its values looked cheaper than the generic one, so every
/// page of it was planned anew (0.6-0.8 ms with 1M messages, more than running it). The
/// statement shows the planner no value now: a prepared listing moves to its generic plan after
/// PostgreSQL's first five custom ones, for every shape of the listing.
#[sqlx::test]
async fn a_listing_page_is_not_planned_again_for_each_request(pool: PgPool) {
    many_messages(&pool).await;
    // One company with most of the messages.
    let big: uuid::Uuid = sqlx::query_scalar("SELECT md5('company' || 1)::uuid")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, status,
                               sender, created_at, updated_at)
         SELECT (lpad(to_hex(1600000000000 + i * 1000), 12, '0') || '7000' || lpad(to_hex(i), 16, '0'))::uuid,
                $1, '+2557' || lpad(i::text, 8, '0'), 'Reminder', 'GSM-7', 1, 1,
                CASE WHEN i % 10 = 3 THEN 'failed' ELSE 'delivered' END, 'test',
                to_timestamp(1600000000 + i), to_timestamp(1600000000 + i)
         FROM generate_series(1, 60000) AS i",
    )
    .bind(big)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE messages")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for case in 0..8 {
        let (status, to, cursor) = (case & 1 == 1, case & 2 == 2, case & 4 == 4);
        let statuses = if status {
            vec![MessageStatus::Failed]
        } else {
            MessageStatus::ALL.to_vec()
        };
        let mut args = vec![format!("'{big}'::uuid")];
        if to {
            args.push("'+255700000006'".into());
        }
        if cursor {
            args.push("to_timestamp(1600050000)".into());
            args.push("'017485ec-b880-7000-0000-00000000c350'::uuid".into());
        }
        let sql = store::list_sql(&statuses, to, cursor, 50);
        assert_eq!(
            plans_of_ten_runs(&mut conn, &sql, &args).await,
            (5, 5),
            "one status {status}, to {to}, cursor {cursor}: plans (generic, custom)"
        );
    }
}

/// A batch's report (`GET /v1/batches/{id}`) too is planned once per connection, for a batch
/// of a company with most of the messages and for a small one, and reads each table it joins
/// once.
#[sqlx::test]
async fn a_batch_report_is_not_planned_again_for_each_request(pool: PgPool) {
    let company = many_messages(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    // Company 0's messages in one batch, the others' in batches of about ten.
    for statement in [
        "CREATE TEMP TABLE batched AS
         SELECT id, company_id,
                CASE WHEN company_id = $1 THEN md5('big')
                     ELSE md5('small' || (extract(epoch FROM created_at)::bigint / 10)) END::uuid AS batch
         FROM messages",
        "INSERT INTO message_batches (id, company_id, total, accepted, created_by)
         SELECT batch, min(company_id::text)::uuid, count(*), count(*), 'api_key:test'
         FROM batched GROUP BY batch",
        "UPDATE messages m SET batch_id = b.batch FROM batched b WHERE b.id = m.id",
    ] {
        sqlx::query(statement)
            .bind(company)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE messages")
        .execute(&mut *conn)
        .await
        .unwrap();
    for batch in ["md5('big')::uuid", "md5('small' || 170000100)::uuid"] {
        assert_eq!(
            plans_of_ten_runs(&mut conn, batch::REPORT_SQL, &[batch.to_string()]).await,
            (5, 5),
            "batch {batch}: plans (generic, custom)"
        );
    }
    // Holds and refunds are each read in one walk over the batch's range of ids, not looked up
    // once per message (1,000 lookups of each here).
    let sql = batch::REPORT_SQL.replace("$1::uuid", "md5('big')::uuid");
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let mut loops = Vec::new();
    relation_loops(&plan[0]["Plan"], &mut loops);
    for table in ["holds", "ledger_entries"] {
        let of_table: Vec<i64> = loops
            .iter()
            .filter(|(name, _)| name == table)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(of_table, vec![1], "{table}: {plan}");
    }
}

/// Every scan of a table in an executed plan: (table, how many times it ran).
fn relation_loops(plan: &Value, into: &mut Vec<(String, i64)>) {
    if let Some(table) = plan["Relation Name"].as_str() {
        into.push((
            table.to_string(),
            plan["Actual Loops"].as_i64().unwrap_or(0),
        ));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        relation_loops(child, into);
    }
}

/// Prepares `sql`, runs it ten times with `args` and says how many of those runs had a generic
/// plan and how many a custom one (PostgreSQL makes five custom plans, then keeps the generic
/// one unless custom ones look cheaper).
async fn plans_of_ten_runs(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    args: &[String],
) -> (i64, i64) {
    sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE measured AS {sql}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    for _ in 0..10 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXECUTE measured({})",
            args.join(", ")
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let plans = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'measured'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query("DEALLOCATE measured")
        .execute(&mut *conn)
        .await
        .unwrap();
    plans
}

/// Every (series, key) with a non-zero value, counted from the tables themselves.
async fn counted_from_tables(pool: &PgPool) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'messages', status, count(*) FROM messages GROUP BY status
         UNION ALL
         SELECT 'ledger_credits', op, sum(credits)::bigint FROM (
             SELECT CASE WHEN kind = 'reserve' THEN 'reserved' WHEN kind = 'commit' THEN 'committed'
                         WHEN kind = 'release' THEN 'released' WHEN kind = 'refund' THEN 'refunded'
                         WHEN kind = 'purchase' THEN 'purchased'
                         WHEN kind = 'purchase_reversal' AND available_delta > 0 THEN 'purchase_restored'
                         WHEN kind = 'purchase_reversal' THEN 'purchase_reversed'
                         WHEN kind = 'adjustment' AND available_delta > 0 THEN 'adjusted_up'
                         ELSE 'adjusted_down' END AS op,
                    CASE WHEN kind = 'reserve' THEN reserved_delta
                         WHEN kind = 'commit' THEN -(available_delta + reserved_delta)
                         ELSE abs(available_delta) END AS credits
             FROM ledger_entries) moved GROUP BY op",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .filter(|r| r.2 != 0)
        .map(|(s, k, v)| ((s, k), v))
        .collect()
}

/// What the counters say, the non-zero values.
async fn counters(pool: &PgPool) -> BTreeMap<(String, String), i64> {
    fleet_counters::read(pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.2 != 0)
        .map(|(s, k, v)| ((s, k), v))
        .collect()
}

async fn deltas_left(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM fleet_counter_deltas")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The counters `/metrics` reads equal a count of the tables after every kind of change: messages
/// accepted (inserted in groups), sent, failed at the provider (hold released), refunded, one
/// deleted; credits adjusted. Folding empties the deltas and changes no value.
#[sqlx::test]
async fn fleet_counters_equal_a_count_of_the_tables(pool: PgPool) {
    let h = Harness::new(pool.clone(), 10).await;
    for n in 0..3 {
        h.accept(&format!("075412345{n}"), "Habari").await;
    }
    h.accept("+15005550001", "Haifiki").await;
    let gone = h.accept("0754123459", "Futa").await;
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(gone)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    h.drain(DRAIN).await;
    let sent: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM messages WHERE status = 'sent' ORDER BY id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE messages SET status = 'undelivered' WHERE id = $1")
        .bind(sent)
        .execute(&pool)
        .await
        .unwrap();
    copcca_sms::ledger::refund(
        &mut pool.acquire().await.unwrap(),
        sent.into(),
        "undelivered",
        "test",
    )
    .await
    .unwrap();
    let counted = counted_from_tables(&pool).await;
    for (series, key) in [
        ("messages", "sent"),
        ("messages", "failed"),
        ("messages", "undelivered"),
        ("ledger_credits", "released"),
        ("ledger_credits", "refunded"),
        ("ledger_credits", "adjusted_up"),
    ] {
        assert!(
            counted.contains_key(&(series.into(), key.into())),
            "{series} {key} exercised: {counted:?}"
        );
    }
    assert_eq!(counters(&pool).await, counted);
    assert_eq!(deltas_left(&pool).await, 0, "read folds");
    // Changes after a fold are counted too, before and after the next one.
    h.accept("0754123458", "Tena").await;
    assert!(deltas_left(&pool).await > 0);
    let unfolded: BTreeMap<_, _> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT series, key, value FROM fleet_counters WHERE value <> 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, k, v)| ((s, k), v))
    .collect();
    assert_ne!(unfolded, counted_from_tables(&pool).await, "not folded yet");
    fleet_counters::fold(&pool).await.unwrap();
    assert_eq!(deltas_left(&pool).await, 0);
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
}

/// Concurrent writers and folds lose nothing and count nothing twice: 60 messages accepted by
/// concurrent requests (grouped inserts) while folds run, then sent by the workers.
#[sqlx::test]
async fn fleet_counters_stay_exact_under_concurrent_writes_and_folds(pool: PgPool) {
    // The per-company request limit is not what this test is about.
    let h = std::sync::Arc::new(
        Harness::with_env(pool.clone(), 100, &[("API_RATE_PER_SECOND", "0")]).await,
    );
    let writers: Vec<_> = (0..60)
        .map(|n| {
            let h = h.clone();
            tokio::spawn(async move { h.accept(&format!("07541{n:05}"), "Habari").await })
        })
        .collect();
    let folders: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    fleet_counters::fold(&pool).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    for f in folders {
        f.await.unwrap();
    }
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    h.drain(DRAIN).await;
    assert_eq!(counters(&pool).await, counted_from_tables(&pool).await);
    assert_eq!(
        counters(&pool).await[&("messages".to_string(), "sent".to_string())],
        60
    );
}

/// The reconciler's look for `sent` messages to mark unconfirmed reads only those still to mark:
/// 2,000 already marked are not read again at every pass (before 0026 the index held them all).
#[sqlx::test]
async fn the_unconfirmed_pass_reads_only_messages_still_to_mark(pool: PgPool) {
    let company = crate::support::company_with(&pool, 0).await.id;
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, status,
                               sender, unconfirmed_at, created_at, updated_at)
         SELECT gen_random_uuid(), $1, '+255754123456', 'Reminder', 'GSM-7', 1, 1, 'sent', 'test',
                CASE WHEN i > 10 THEN now() - interval '1 day' END,
                now() - interval '5 days', now() - interval '5 days'
         FROM generate_series(1, 2010) AS i",
    )
    .bind(company)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE messages")
        .execute(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    // What the index holds, not which plan a table this small gets.
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {}",
        recovery::MARK_UNCONFIRMED
    )))
    .bind(72.0 * 3600.0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let (mut most, mut removed) = (0, 0);
    rows_read(&plan[0]["Plan"], &mut most, &mut removed);
    assert!(
        most <= 10 && removed == 0,
        "{most} rows from a scan, {removed} removed, for 10 to mark: {plan}"
    );
    assert_eq!(
        recovery::mark_unconfirmed(&pool, std::time::Duration::from_secs(72 * 3600))
            .await
            .unwrap(),
        10
    );
}

/// The most rows any node of a plan produced, and the rows its filters removed in all.
fn rows_read(plan: &Value, most: &mut i64, removed: &mut i64) {
    *most = (*most).max(plan["Actual Rows"].as_i64().unwrap_or(0));
    *removed += plan["Rows Removed by Filter"].as_i64().unwrap_or(0)
        + plan["Rows Removed by Index Recheck"].as_i64().unwrap_or(0);
    for child in plan["Plans"].as_array().into_iter().flatten() {
        rows_read(child, most, removed);
    }
}

/// A charged message that failed `age` ago (its `updated_at`), without a refund.
async fn failed_charged(pool: &PgPool, company: CompanyId, age: &str) -> MessageId {
    let m = crate::support::message(pool, company, 1).await;
    let mut conn = pool.acquire().await.unwrap();
    let hold = crate::support::reserve_one(
        &mut conn,
        company,
        m,
        crate::support::credits(1),
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap()
    .expect("a hold")
    .value;
    crate::support::commit_one(&mut conn, hold.id, crate::support::credits(1))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE messages SET status = 'failed', updated_at = now() - interval '{age}' WHERE id = $1"
    )))
    .bind(m)
    .execute(&mut *conn)
    .await
    .unwrap();
    m
}

/// The reconciler's look for charged failures without a refund starts where the previous pass
/// left its mark, not at the first failure ever: a pass finds every such failure (none marked
/// yet), the next starts at the oldest it found (its refund may not have happened), and once
/// they are refunded, at the pass's horizon less a margin; a failure older than the mark is not
/// read again.
#[sqlx::test]
async fn the_unrefunded_pass_starts_at_its_mark(pool: PgPool) {
    let company = crate::support::company_with(&pool, 10).await.id;
    let after = std::time::Duration::from_secs(60);
    let old = failed_charged(&pool, company, "3 days").await;
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(found, vec![(old, MessageStatus::Failed)], "no mark: all");
    // Not refunded yet: found again.
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(
        found,
        vec![(old, MessageStatus::Failed)],
        "from the oldest found"
    );
    copcca_sms::ledger::refund(&mut pool.acquire().await.unwrap(), old, "failed", "test")
        .await
        .unwrap();
    assert!(
        recovery::unrefunded(&pool, after, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The mark is now the horizon less the margin: a failure from before it is history, one
    // since is found.
    let history = failed_charged(&pool, company, "1 hour").await;
    let recent = failed_charged(&pool, company, "5 minutes").await;
    let found = recovery::unrefunded(&pool, after, 100).await.unwrap();
    assert_eq!(found, vec![(recent, MessageStatus::Failed)]);
    assert_ne!(found[0].0, history);
}
