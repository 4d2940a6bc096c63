-- Row-level security for a database shared with the CRM on Supabase. There, the roles `anon` and
-- `authenticated` get default privileges on every new table of `public`, and Supabase's REST layer
-- serves whatever they can reach: without this, any CRM user could read payments or update
-- balances. After it:
--   * no table, sequence or function of ours is usable by PUBLIC, `anon` or `authenticated`, and
--     new objects this role creates in the schema do not get Supabase's default grants;
--   * every table has row-level security on, with no policy but the CRM's reads below. The
--     service's role owns the tables, so RLS does not apply to it (not FORCEd);
--   * the compatibility views (0007) are security_invoker: they read the tables with the caller's
--     rights, so the policies below filter them to the caller's company. `authenticated` may read
--     the views and call get_company_sms_balance, and holds SELECT on exactly the table columns the
--     views read (security_invoker checks the invoker's privileges on them), under a policy that
--     shows it its own company's rows only. Every other column, and every other table (provider
--     settings included), stays unreadable by every CRM role; nothing is writable by one.
-- On plain PostgreSQL (no such roles, no `auth` schema) only the parts that need nothing of
-- Supabase apply; the DO blocks look the rest up in pg_roles / pg_namespace.
-- Tables added by later migrations must enable RLS themselves: tests/it/row_security.rs fails for
-- a table without it.

DO $$
DECLARE
    -- Our tables as of this migration (the schema may be shared with the CRM's own tables, which
    -- are not ours to change).
    tables text[] := ARRAY[
        '_sqlx_migrations', 'companies', 'users', 'api_keys', 'sms_packages', 'sms_package_prices',
        'messages', 'opt_outs', 'debts', 'payments', 'payment_events', 'balances', 'holds',
        'ledger_entries', 'system_settings', 'webhook_events', 'message_batches',
        'template_defaults', 'templates', 'queue_samples'];
    views text[] := ARRAY['company_sms_balance', 'sms_transactions', 'sms_logs'];
    functions text[] := ARRAY[
        'ledger_entries_are_append_only', 'get_company_sms_balance', 'ledger_post',
        'ledger_outcome', 'ledger_release', 'send_begin_many', 'send_finish_many'];
    -- PUBLIC, and Supabase's API roles where they exist.
    grantees text[] := ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantee text;
    relation text;
    routine regprocedure;
BEGIN
    FOREACH relation IN ARRAY tables LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', relation);
    END LOOP;
    FOREACH grantee IN ARRAY grantees LOOP
        FOREACH relation IN ARRAY tables || views LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %s', relation, grantee);
        END LOOP;
        -- The bigserial sequences of our tables.
        FOR relation IN
            SELECT s.oid::regclass::text
            FROM pg_class s
            JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype = 'a'
            WHERE s.relkind = 'S' AND d.refobjid IN (SELECT t::regclass::oid FROM unnest(tables) t)
        LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %s', relation, grantee);
        END LOOP;
        FOR routine IN
            SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = current_schema()::regnamespace AND p.proname = ANY (functions)
        LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', routine, grantee);
        END LOOP;
        -- Objects this role creates here later. (PUBLIC's EXECUTE on new functions is a global
        -- default that cannot be revoked per schema; our functions run with the caller's rights,
        -- which reach no table.)
        IF grantee <> 'PUBLIC' THEN
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM %s',
                           current_schema(), grantee);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM %s',
                           current_schema(), grantee);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON FUNCTIONS FROM %s',
                           current_schema(), grantee);
        END IF;
    END LOOP;
END
$$;

-- The views read with the caller's rights (PostgreSQL 15+). Before 15 they would read as their
-- owner, past every policy, so the CRM is given none of them there (below).
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 150000 THEN
        ALTER VIEW company_sms_balance SET (security_invoker = true);
        ALTER VIEW sms_transactions SET (security_invoker = true);
        ALTER VIEW sms_logs SET (security_invoker = true);
    END IF;
END
$$;

-- The CRM's reads, where Supabase's `authenticated` role and `auth.uid()` exist.
DO $$
DECLARE
    views text[] := ARRAY['company_sms_balance', 'sms_transactions', 'sms_logs'];
    used record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated')
       OR NOT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'auth' AND p.proname = 'uid') THEN
        RETURN;
    END IF;
    -- The policies call auth.uid() (through crm_company_id, with this role's rights). The schema
    -- is checked first: naming a function in a schema without USAGE is itself an error.
    IF NOT has_schema_privilege('auth', 'USAGE') THEN
        RAISE WARNING 'this role has no USAGE on schema auth (GRANT USAGE ON SCHEMA auth TO %): the CRM is not given the compatibility views', current_user;
        RETURN;
    END IF;
    IF NOT has_function_privilege('auth.uid()', 'EXECUTE') THEN
        RAISE WARNING 'this role cannot execute auth.uid(): the CRM is not given the compatibility views';
        RETURN;
    END IF;
    IF current_setting('server_version_num')::int < 150000 THEN
        RAISE WARNING 'PostgreSQL before 15 has no security_invoker views: the CRM is not given the compatibility views';
        RETURN;
    END IF;

    -- The caller's company: the one rule every policy below filters by. SECURITY DEFINER so that
    -- `authenticated` needs no privilege on `users`; it tells the caller nothing but its own
    -- company's id. The search path is pinned, as a definer function's must be.
    EXECUTE format($f$
        CREATE FUNCTION crm_company_id() RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp AS
        'SELECT company_id FROM users WHERE id = auth.uid()'
    $f$, current_schema());
    REVOKE ALL ON FUNCTION crm_company_id() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION crm_company_id() TO authenticated;

    -- Each table the views read: its company's rows, and only the columns the views read.
    -- `(SELECT ...)` makes the company one lookup per query rather than one per row.
    FOR used IN
        SELECT table_name, array_agg(DISTINCT quote_ident(column_name::text)) AS columns
        FROM information_schema.view_column_usage
        WHERE view_schema::text = current_schema() AND view_name::text = ANY (views)
          AND table_schema::text = current_schema()
        GROUP BY table_name
    LOOP
        EXECUTE format('CREATE POLICY crm_own_company ON %I FOR SELECT TO authenticated
                        USING (company_id = (SELECT crm_company_id()))', used.table_name);
        EXECUTE format('GRANT SELECT (%s) ON TABLE %I TO authenticated',
                       array_to_string(used.columns, ', '), used.table_name);
    END LOOP;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO authenticated', current_schema());
    GRANT SELECT ON company_sms_balance, sms_transactions, sms_logs TO authenticated;
    GRANT EXECUTE ON FUNCTION get_company_sms_balance(uuid) TO authenticated;
END
$$;
