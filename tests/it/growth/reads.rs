//! Reads whose plans must not depend on the table's size or on the values asked for: the
//! message listing and a batch's report.

use copcca_sms::messages::{MessageStatus, batch, store};
use serde_json::Value;
use sqlx::PgPool;

use super::analyze_messages;

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
    insert_messages(pool, None, 1_700_000_000, 20_000).await;
    analyze_messages(pool).await;
    sqlx::query_scalar("SELECT md5('company' || 0)::uuid")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `n` messages one second apart from `epoch` (ids in time order as the service makes them), 10 %
/// failed: all of `company`'s, or spread over the 20 companies of [`many_messages`] (seven in a
/// row each).
async fn insert_messages(pool: &PgPool, company: Option<uuid::Uuid>, epoch: i64, n: i64) {
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, status,
                               sender, created_at, updated_at)
         SELECT (lpad(to_hex(($2 + i) * 1000), 12, '0') || '7000' || lpad(to_hex(i), 16, '0'))::uuid,
                COALESCE($1, md5('company' || ((i / 7) % 20))::uuid), '+2557' || lpad(i::text, 8, '0'),
                'Reminder', 'GSM-7', 1, 1, CASE WHEN i % 10 = 3 THEN 'failed' ELSE 'delivered' END, 'test',
                to_timestamp($2 + i), to_timestamp($2 + i)
         FROM generate_series(1, $3) AS i",
    )
    .bind(company)
    .bind(epoch)
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

/// The listing's statement (`store::list_sql`, 50 a page) for `company`, every status or
/// `failed` only, for one number or all, from the start or from a cursor (its time and id as SQL
/// literals), with the values to execute it with, as SQL literals.
fn listing_statement(
    company: uuid::Uuid,
    status: bool,
    to: bool,
    cursor: Option<(&str, &str)>,
) -> (String, Vec<String>) {
    let statuses = if status {
        vec![MessageStatus::Failed]
    } else {
        MessageStatus::ALL.to_vec()
    };
    let sql = store::list_sql(&statuses, to, cursor.is_some(), 50);
    let mut args = vec![format!("'{company}'::uuid")];
    if to {
        args.push("'+255700000006'".into());
    }
    if let Some((at, id)) = cursor {
        args.push(at.into());
        args.push(id.into());
    }
    (sql, args)
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
    let cursor = cursor.then_some((
        "to_timestamp(1700010000)",
        "'018bcfe5-6800-7000-0000-000000002710'::uuid",
    ));
    let (sql, args) = listing_statement(company, status, to, cursor);
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
    insert_messages(&pool, Some(big), 1_600_000_000, 60_000).await;
    analyze_messages(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    for case in 0..8 {
        let (status, to, cursor) = (case & 1 == 1, case & 2 == 2, case & 4 == 4);
        let from = cursor.then_some((
            "to_timestamp(1600050000)",
            "'017485ec-b880-7000-0000-00000000c350'::uuid",
        ));
        let (sql, args) = listing_statement(big, status, to, from);
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
    analyze_messages(&pool).await;
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
