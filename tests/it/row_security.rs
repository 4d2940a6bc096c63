//! Row-level security in a database shared with the CRM on Supabase (migrations 0021, 0022): the
//! CRM's roles read their own company through the compatibility views (over SECURITY DEFINER
//! functions) and nothing else, not one column of a table, and every table (those of later
//! migrations too) has RLS on and no privileges for PUBLIC, `anon` or `authenticated`.
//!
//! A Supabase-like database is made the way Supabase makes one, before the migrations run (so their
//! DO blocks find it): the roles `anon` and `authenticated` (NOLOGIN), default privileges that give
//! them every new table, sequence and function of `public`, and `auth.uid()` reading the JWT's
//! `sub` from `request.jwt.claims`. Roles are cluster-wide: they are created if missing and never
//! dropped, since tests run in parallel on the same server.

use copcca_sms::accounts::{self, Company};
use copcca_sms::db::MIGRATOR;
use copcca_sms::domain::{CompanyId, Role, UserId};
use copcca_sms::ledger;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres};

use crate::support::{company_with, message, paid_payment};

/// What Supabase has in place before our migrations run.
const SUPABASE: &str = r#"
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
-- Another test may create them between the check and the CREATE.
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated;
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT (nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub')::uuid
$$;
"#;

/// The views (and function) the CRM reads.
const VIEWS: [&str; 3] = ["company_sms_balance", "sms_transactions", "sms_logs"];

/// What `authenticated` may execute (sorted): the functions behind the views, and
/// get_company_sms_balance. Each reads as the tables' owner and returns the caller's company.
const CRM_FUNCTIONS: [&str; 4] = [
    "crm_company_sms_balance",
    "crm_sms_logs",
    "crm_sms_transactions",
    "get_company_sms_balance",
];

/// Makes the throwaway database Supabase-like, then applies every migration.
async fn supabase_database(pool: &PgPool) {
    pool.execute(SUPABASE).await.unwrap();
    MIGRATOR.run(pool).await.unwrap();
}

/// A session of `role` as Supabase's REST layer opens one for a request: `SET ROLE` and the JWT's
/// claims (`sub` = the user, or none for `anon`). Detached from the pool: it never goes back to it
/// with the role still set.
async fn session_as(pool: &PgPool, role: &str, user: Option<UserId>) -> PgConnection {
    let mut conn = PoolConnection::<Postgres>::detach(pool.acquire().await.unwrap());
    sqlx::query(sqlx::AssertSqlSafe(format!("SET ROLE {role}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let claims = match user {
        Some(id) => serde_json::json!({"sub": id, "role": role}),
        None => serde_json::json!({"role": role}),
    };
    sqlx::query("SELECT set_config('request.jwt.claims', $1, false)")
        .bind(claims.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// Runs `sql` and expects PostgreSQL to refuse it for want of a privilege (SQLSTATE 42501).
async fn assert_denied(conn: &mut PgConnection, sql: &str) {
    let err = conn
        .execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .err()
        .unwrap_or_else(|| panic!("{sql}: allowed, expected permission denied"));
    let code = err.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
}

/// Runs a write on a view and expects it refused: for want of the privilege (42501), or because
/// a view over a function is not updatable (55000).
async fn assert_not_writable(conn: &mut PgConnection, sql: &str) {
    let err = conn
        .execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .err()
        .unwrap_or_else(|| panic!("{sql}: allowed, expected refused"));
    let code = err.as_database_error().and_then(|e| e.code());
    assert!(
        matches!(code.as_deref(), Some("42501" | "55000")),
        "{sql}: {err}"
    );
}

/// Company ids of the rows `sql` returns (its first column), sorted.
async fn companies_seen(conn: &mut PgConnection, sql: &str) -> Vec<CompanyId> {
    let mut seen: Vec<CompanyId> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    seen.sort();
    seen
}

/// A company with credits, a credited payment, a message (so rows in every view) and a user.
async fn tenant(pool: &PgPool, credits: i64) -> (Company, UserId) {
    let company = company_with(pool, credits).await;
    let payment = paid_payment(pool, company.id, 100).await;
    ledger::credit_purchase(&mut pool.acquire().await.unwrap(), payment, "test")
        .await
        .unwrap();
    message(pool, company.id, 1).await;
    let user = accounts::create_user(pool, Some(company.id), Role::Member, None)
        .await
        .unwrap();
    (company, user.id)
}

/// Every table of the schema: (name, RLS enabled).
async fn tables(pool: &PgPool) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT relname::text, relrowsecurity FROM pg_class
         WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
         ORDER BY relname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The privileges PUBLIC and the CRM's roles hold on the schema's tables, views and sequences, as
/// `relation grantee privilege`, plus `relation(column) grantee privilege` for column grants.
async fn crm_privileges(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH grantees(oid, name) AS (
             SELECT 0::oid, 'PUBLIC'
             UNION ALL SELECT oid, rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
         SELECT format('%s %s %s', c.relname, g.name, a.privilege_type)
         FROM pg_class c, aclexplode(c.relacl) a, grantees g
         WHERE c.relnamespace = current_schema()::regnamespace AND a.grantee = g.oid
         UNION ALL
         SELECT format('%s(%s) %s %s', c.relname, col.attname, g.name, a.privilege_type)
         FROM pg_class c JOIN pg_attribute col ON col.attrelid = c.oid, aclexplode(col.attacl) a, grantees g
         WHERE c.relnamespace = current_schema()::regnamespace AND a.grantee = g.oid
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The functions of the schema PUBLIC and the CRM's roles may execute, as `function grantee`.
async fn crm_executable(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH grantees(oid, name) AS (
             SELECT 0::oid, 'PUBLIC'
             UNION ALL SELECT oid, rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
         SELECT DISTINCT format('%s %s', p.proname, g.name)
         FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a, grantees g
         WHERE p.pronamespace = current_schema()::regnamespace AND a.grantee = g.oid
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The guard for every later migration: each table has RLS on, and PUBLIC, `anon` and
/// `authenticated` hold nothing but SELECT on the views and EXECUTE on the functions they read.
async fn assert_locked_down(pool: &PgPool) {
    let tables = tables(pool).await;
    assert!(tables.len() >= 20, "{tables:?}");
    let without: Vec<&String> = tables
        .iter()
        .filter(|(_, rls)| !rls)
        .map(|(name, _)| name)
        .collect();
    assert!(
        without.is_empty(),
        "tables without row-level security (a new table must `ALTER TABLE ... ENABLE ROW LEVEL SECURITY` in its migration): {without:?}"
    );
    let crm_has_authenticated = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'auth')
            AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut allowed: Vec<String> = Vec::new();
    let mut executable: Vec<String> = Vec::new();
    if crm_has_authenticated {
        allowed.extend(VIEWS.iter().map(|v| format!("{v} authenticated SELECT")));
        allowed.sort();
        executable.extend(CRM_FUNCTIONS.iter().map(|f| format!("{f} authenticated")));
    }
    assert_eq!(crm_privileges(pool).await, allowed, "not one table column");
    assert_eq!(crm_executable(pool).await, executable);

    // A SECURITY DEFINER function reads with its owner's rights, past RLS: each is deliberate.
    let definers: Vec<String> = sqlx::query_scalar(
        "SELECT proname::text FROM pg_proc
         WHERE pronamespace = current_schema()::regnamespace AND prosecdef ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let expected: &[&str] = if crm_has_authenticated {
        &CRM_FUNCTIONS
    } else {
        &[]
    };
    assert_eq!(definers, expected);
}

#[sqlx::test(migrations = false)]
async fn a_crm_user_sees_only_its_companys_rows_through_the_views(pool: PgPool) {
    supabase_database(&pool).await;
    let (a, user_a) = tenant(&pool, 30).await;
    let (b, _) = tenant(&pool, 70).await;
    let mut ab = vec![a.id, b.id];
    ab.sort();

    let mut crm = session_as(&pool, "authenticated", Some(user_a)).await;
    for view in VIEWS {
        let seen = companies_seen(&mut crm, &format!("SELECT company_id FROM {view}")).await;
        assert!(!seen.is_empty(), "{view} shows A its own rows");
        assert!(seen.iter().all(|c| *c == a.id), "{view}: {seen:?}");
    }
    let (balance, total_spent): (i64, rust_decimal::Decimal) =
        sqlx::query_as("SELECT balance, total_spent FROM company_sms_balance")
            .fetch_one(&mut crm)
            .await
            .unwrap();
    assert_eq!(
        (balance, total_spent),
        (130, rust_decimal::Decimal::new(200, 2))
    );
    let balance_of = |company: CompanyId| {
        sqlx::query_scalar::<_, i64>("SELECT get_company_sms_balance($1)").bind(company)
    };
    assert_eq!(balance_of(a.id).fetch_one(&mut crm).await.unwrap(), 130);
    assert_eq!(
        balance_of(b.id).fetch_one(&mut crm).await.unwrap(),
        0,
        "another company's balance is not A's to read"
    );

    // The service's own role (the owner) still reads every company through the views.
    for view in VIEWS {
        let mut service = pool.acquire().await.unwrap();
        let mut seen =
            companies_seen(&mut service, &format!("SELECT company_id FROM {view}")).await;
        seen.dedup();
        assert_eq!(seen, ab, "{view} as the service");
    }
}

#[sqlx::test(migrations = false)]
async fn the_services_own_role_owns_the_tables_and_is_not_filtered(pool: PgPool) {
    // As in production: the service migrates as a role of its own, not a superuser (a superuser
    // would pass RLS whatever the migration did).
    pool.execute(SUPABASE).await.unwrap();
    pool.execute(
        r#"DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'copcca_sms_service') THEN
                CREATE ROLE copcca_sms_service NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$;
        GRANT USAGE, CREATE ON SCHEMA public TO copcca_sms_service;
        GRANT USAGE ON SCHEMA auth TO copcca_sms_service;"#,
    )
    .await
    .unwrap();
    let mut service = session_as(&pool, "copcca_sms_service", None).await;
    MIGRATOR.run(&mut service).await.unwrap();
    let (a, user_a) = tenant(&pool, 30).await;
    let (b, _) = tenant(&pool, 70).await;
    let mut ab = vec![a.id, b.id];
    ab.sort();

    for view in VIEWS {
        let mut seen =
            companies_seen(&mut service, &format!("SELECT company_id FROM {view}")).await;
        seen.dedup();
        assert_eq!(seen, ab, "{view} as the service's role");
    }
    let touched = sqlx::query("UPDATE balances SET updated_at = now()")
        .execute(&mut service)
        .await
        .unwrap();
    assert_eq!(
        touched.rows_affected(),
        2,
        "RLS does not apply to the tables' owner"
    );

    let mut crm = session_as(&pool, "authenticated", Some(user_a)).await;
    for view in VIEWS {
        let seen = companies_seen(&mut crm, &format!("SELECT company_id FROM {view}")).await;
        assert!(
            !seen.is_empty() && seen.iter().all(|c| *c == a.id),
            "{view}: {seen:?}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn a_crm_user_reads_no_table_and_writes_nothing(pool: PgPool) {
    supabase_database(&pool).await;
    let (_, user_a) = tenant(&pool, 30).await;
    let (b, _) = tenant(&pool, 70).await;

    let mut crm = session_as(&pool, "authenticated", Some(user_a)).await;
    for (table, _) in tables(&pool).await {
        assert_denied(&mut crm, &format!("SELECT * FROM {table}")).await;
        assert_denied(&mut crm, &format!("DELETE FROM {table}")).await;
    }
    // Provider settings, API keys and who is who: not a column of them.
    assert_denied(&mut crm, "SELECT key FROM system_settings").await;
    assert_denied(&mut crm, "SELECT key_hash FROM api_keys").await;
    assert_denied(&mut crm, "SELECT company_id FROM users").await;
    // Not even the columns the views show (the views read through functions, not A's rights).
    assert_denied(&mut crm, "SELECT company_id, available FROM balances").await;
    assert_denied(&mut crm, "SELECT amount FROM payments").await;

    // Writes: tables, views, and the ledger's functions.
    assert_denied(&mut crm, "UPDATE balances SET available = available + 1000").await;
    assert_denied(
        &mut crm,
        &format!("INSERT INTO balances (company_id) VALUES ('{}')", b.id),
    )
    .await;
    for view in VIEWS {
        assert_not_writable(&mut crm, &format!("UPDATE {view} SET company_id = NULL")).await;
        assert_not_writable(&mut crm, &format!("DELETE FROM {view}")).await;
        assert_not_writable(
            &mut crm,
            &format!("INSERT INTO {view} (company_id) VALUES (NULL)"),
        )
        .await;
    }
    assert_denied(
        &mut crm,
        &format!("SELECT ledger_release('{}')", uuid::Uuid::nil()),
    )
    .await;
    crm.close().await.unwrap();

    let balances: Vec<i64> =
        sqlx::query_scalar("SELECT available FROM balances ORDER BY available")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(balances, [130, 170], "nothing changed");
}

/// Every column of every table of the schema, as `(table, column)`.
async fn columns(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.relname::text, a.attname::text FROM pg_class c
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// `conn` may select no column of any table of the schema, and no row count of one.
async fn assert_reads_no_table(pool: &PgPool, conn: &mut PgConnection) {
    let columns = columns(pool).await;
    assert!(columns.len() > 100, "{}", columns.len());
    for (table, column) in columns {
        assert_denied(conn, &format!("SELECT \"{column}\" FROM {table}")).await;
    }
    for (table, _) in tables(pool).await {
        assert_denied(conn, &format!("SELECT count(*) FROM {table}")).await;
    }
}

/// A's user sees exactly A's rows through each view and each function behind one.
async fn assert_sees_only(conn: &mut PgConnection, company: CompanyId) {
    for from in VIEWS.iter().map(|v| v.to_string()).chain(
        [
            "crm_company_sms_balance()",
            "crm_sms_transactions()",
            "crm_sms_logs()",
        ]
        .map(String::from),
    ) {
        let seen = companies_seen(conn, &format!("SELECT company_id FROM {from}")).await;
        assert!(!seen.is_empty(), "{from} shows its own rows");
        assert!(seen.iter().all(|c| *c == company), "{from}: {seen:?}");
    }
}

#[sqlx::test(migrations = false)]
async fn a_crm_user_can_read_no_table_directly(pool: PgPool) {
    supabase_database(&pool).await;
    let (a, user_a) = tenant(&pool, 30).await;
    tenant(&pool, 70).await;

    let mut crm = session_as(&pool, "authenticated", Some(user_a)).await;
    assert_reads_no_table(&pool, &mut crm).await;
    assert_sees_only(&mut crm, a.id).await;
    // The helpers behind the functions are not the CRM's to call.
    assert_denied(&mut crm, "SELECT crm_companies()").await;
    assert_denied(&mut crm, "SELECT crm_company_id()").await;
    let mut anon = session_as(&pool, "anon", None).await;
    assert_reads_no_table(&pool, &mut anon).await;
    for function in [
        "crm_company_sms_balance",
        "crm_sms_transactions",
        "crm_sms_logs",
    ] {
        assert_denied(&mut anon, &format!("SELECT * FROM {function}()")).await;
    }
}

#[sqlx::test(migrations = false)]
async fn in_a_schema_of_its_own_the_crm_reads_its_company_and_no_table(pool: PgPool) {
    // As DATABASE_SCHEMA=sms runs: every session's search path is the schema alone.
    pool.execute(SUPABASE).await.unwrap();
    pool.execute("CREATE SCHEMA sms").await.unwrap();
    let options = (*pool.connect_options())
        .clone()
        .options([("search_path", "sms")]);
    let sms = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    MIGRATOR.run(&sms).await.unwrap();
    let in_public: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
    )
    .fetch_one(&sms)
    .await
    .unwrap();
    assert_eq!(in_public, 0, "nothing of ours in public");
    assert_locked_down(&sms).await;
    let (a, user_a) = tenant(&sms, 30).await;
    let (b, _) = tenant(&sms, 70).await;

    let mut crm = session_as(&sms, "authenticated", Some(user_a)).await;
    assert_reads_no_table(&sms, &mut crm).await;
    assert_sees_only(&mut crm, a.id).await;
    let balance: i64 = sqlx::query_scalar("SELECT get_company_sms_balance($1)")
        .bind(b.id)
        .fetch_one(&mut crm)
        .await
        .unwrap();
    assert_eq!(balance, 0, "not A's to read");
    let mut service = sms.acquire().await.unwrap();
    let mut seen = companies_seen(&mut service, "SELECT company_id FROM sms_logs").await;
    seen.dedup();
    assert_eq!(seen.len(), 2, "the service reads every company");
}

#[sqlx::test(migrations = false)]
async fn anon_reads_nothing(pool: PgPool) {
    supabase_database(&pool).await;
    let (a, _) = tenant(&pool, 30).await;

    let mut anon = session_as(&pool, "anon", None).await;
    for view in VIEWS {
        assert_denied(&mut anon, &format!("SELECT * FROM {view}")).await;
    }
    assert_denied(
        &mut anon,
        &format!("SELECT get_company_sms_balance('{}')", a.id),
    )
    .await;
    for (table, _) in tables(&pool).await {
        assert_denied(&mut anon, &format!("SELECT * FROM {table}")).await;
    }

    // An authenticated user unknown to the service (no `users` row) sees no company.
    let mut stranger = session_as(&pool, "authenticated", Some(UserId::new())).await;
    for view in VIEWS {
        assert_eq!(
            companies_seen(&mut stranger, &format!("SELECT company_id FROM {view}")).await,
            []
        );
    }
}

#[sqlx::test(migrations = false)]
async fn every_table_has_row_security_and_no_crm_privileges_in_supabase(pool: PgPool) {
    supabase_database(&pool).await;
    assert_locked_down(&pool).await;

    // Tables the migrating role creates later do not get Supabase's default grants.
    pool.execute("CREATE TABLE later_table (id int); CREATE SEQUENCE later_sequence")
        .await
        .unwrap();
    let later: Vec<String> = crm_privileges(&pool)
        .await
        .into_iter()
        .filter(|p| p.starts_with("later_"))
        .collect();
    assert_eq!(later, Vec::<String>::new());
}

#[sqlx::test]
async fn every_table_has_row_security_and_no_public_privileges_on_plain_postgres(pool: PgPool) {
    assert_locked_down(&pool).await;
    let invoker: Vec<bool> = sqlx::query_scalar(
        "SELECT coalesce('security_invoker=true' = ANY (reloptions), false) FROM pg_class
         WHERE relnamespace = current_schema()::regnamespace AND relname = ANY ($1)",
    )
    .bind(VIEWS)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        invoker,
        [true, true, true],
        "the views read with the caller's rights"
    );
    // Without `auth.uid()` there is nothing to filter by, so no policy and no helper.
    let policies: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_policies")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(policies, 0);
}
