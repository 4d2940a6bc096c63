-- Two things:
--   1. The CRM reads no table of ours directly. 0021 gave Supabase's `authenticated` SELECT on the
--      table columns behind the compatibility views (a security_invoker view needs the caller to
--      hold them), so a CRM user could also select those columns from `payments`, `balances`,
--      `ledger_entries` and `messages` (its own company's rows). Here each view reads from a
--      SECURITY DEFINER function instead, which reads the tables as their owner and returns the
--      caller's company only; the column grants and the crm_own_company policies are dropped.
--   2. Money refunded: each increase of a payment's refunded amount (Stripe's `charge.refunded`
--      today, an operator's refund later) is recorded, for the revenue report.

-- (2) One row per increase, in the currency it was refunded in. For a Stripe charge the
-- cumulative refunded amount is the sum of its rows: `charge.refunded` adds the difference to
-- Stripe's `amount_refunded` under the payment's row lock, so a redelivered or late event adds
-- nothing.
CREATE TABLE payment_refunds (
    id           bigserial PRIMARY KEY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    company_id   uuid NOT NULL REFERENCES companies (id),
    amount       numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Where it came from: the Stripe charge (`stripe:ch_...`), or an operator.
    source       text NOT NULL,
    actor        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_refunds_payment_idx ON payment_refunds (payment_id);
CREATE INDEX payment_refunds_created_idx ON payment_refunds (created_at);

ALTER TABLE payment_refunds ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE payment_refunds FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON SEQUENCE payment_refunds_id_seq FROM %s', grantee);
    END LOOP;
END
$$;

-- (1) Only where 0021 gave the CRM its views (Supabase's roles and auth.uid() exist, this role
-- may call it, PostgreSQL 15+): crm_company_id() exists then.
DO $$
DECLARE
    schema text := current_schema();
    crm_roles text[] := ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantee text;
    behind record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_proc
                   WHERE pronamespace = schema::regnamespace AND proname = 'crm_company_id') THEN
        RETURN;
    END IF;

    -- The companies the caller may read: every one for a role that could read the tables
    -- anyway (a member of their owner: the service, an operator), else the company of its JWT's
    -- user (none without one). Called only inside the functions below, which run as the owner,
    -- so the caller is not current_user there: it is the role the session SET (Supabase's API
    -- sets `authenticated` or `anon` for each request), or the session's own user. An array so
    -- that `company_id = ANY (...)` uses each table's company index.
    EXECUTE format($f$
        CREATE FUNCTION crm_companies() RETURNS uuid[]
        LANGUAGE sql STABLE SET search_path = %I, pg_temp AS $body$
            SELECT CASE
                WHEN pg_has_role(CASE current_setting('role') WHEN 'none' THEN session_user
                                      ELSE current_setting('role') END,
                                 current_user, 'MEMBER')
                    THEN ARRAY(SELECT id FROM companies)
                ELSE ARRAY(SELECT c FROM (SELECT crm_company_id()) AS own (c) WHERE c IS NOT NULL)
            END
        $body$
    $f$, schema);
    -- Not the CRM's to call: it learns nothing but through the views.
    ALTER FUNCTION crm_company_id() SECURITY INVOKER;

    -- The views' rows, as 0007 defined them, of the caller's companies. SECURITY DEFINER: they
    -- read the tables as their owner, so the caller needs no privilege on any table.
    EXECUTE format($f$
        CREATE FUNCTION crm_company_sms_balance()
        RETURNS TABLE (company_id uuid, balance bigint, reserved bigint, total_sms_sent bigint,
                       total_spent numeric, updated_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp ROWS 1 AS $body$
            SELECT b.company_id, b.available, b.reserved, b.total_sent,
                   COALESCE((SELECT sum(p.amount) FROM payments p
                             WHERE p.company_id = b.company_id AND p.status = 'credited'), 0),
                   b.updated_at
            FROM balances b
            WHERE b.company_id = ANY (crm_companies())
        $body$
    $f$, schema);
    EXECUTE format($f$
        CREATE FUNCTION crm_sms_transactions()
        RETURNS TABLE (id bigint, company_id uuid, transaction_type text, amount bigint,
                       reserved_delta bigint, reference_id uuid, description text,
                       created_by text, created_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
            SELECT e.id, e.company_id, e.kind, e.available_delta, e.reserved_delta,
                   COALESCE(e.payment_id, e.message_id), e.reason, e.actor, e.created_at
            FROM ledger_entries e
            WHERE e.company_id = ANY (crm_companies())
        $body$
    $f$, schema);
    EXECUTE format($f$
        CREATE FUNCTION crm_sms_logs()
        RETURNS TABLE (id uuid, company_id uuid, phone_number text, message_body text,
                       status text, provider text, message_id text, error_message text,
                       debt_id uuid, invoice_number text, sent_by text, segments integer,
                       credits bigint, created_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
            SELECT m.id, m.company_id, m.to_number, m.body, m.status, m.provider, m.provider_id,
                   m.error_message, m.debt_id, m.invoice_number, m.sender, m.segments,
                   m.credits, m.created_at
            FROM messages m
            WHERE m.company_id = ANY (crm_companies())
        $body$
    $f$, schema);
    -- Same signature and grants; now the caller's companies only, whatever id it asks for.
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION get_company_sms_balance(p_company_id uuid) RETURNS bigint
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
            SELECT COALESCE((SELECT available FROM balances
                             WHERE company_id = p_company_id
                               AND company_id = ANY (crm_companies())), 0)
        $body$
    $f$, schema);

    -- The views keep their names, columns and grants, and read the functions with the
    -- caller's rights (so `anon`, which may not execute them, is refused).
    CREATE OR REPLACE VIEW company_sms_balance WITH (security_invoker = true) AS
        SELECT * FROM crm_company_sms_balance();
    CREATE OR REPLACE VIEW sms_transactions WITH (security_invoker = true) AS
        SELECT * FROM crm_sms_transactions();
    CREATE OR REPLACE VIEW sms_logs WITH (security_invoker = true) AS
        SELECT * FROM crm_sms_logs();

    -- PUBLIC's EXECUTE on new functions is a global default; the CRM's roles get nothing but
    -- the views' functions for `authenticated`.
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || crm_roles LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION crm_companies(), crm_company_id(),
                            crm_company_sms_balance(), crm_sms_transactions(), crm_sms_logs()
                        FROM %s', grantee);
    END LOOP;
    GRANT EXECUTE ON FUNCTION crm_company_sms_balance(), crm_sms_transactions(), crm_sms_logs()
        TO authenticated;

    -- No table is the CRM's to read any more: the policies 0021 made and the column grants
    -- beside them go (revoking on the table revokes its column grants too).
    FOR behind IN
        SELECT tablename FROM pg_policies
        WHERE schemaname = schema AND policyname = 'crm_own_company'
    LOOP
        EXECUTE format('DROP POLICY crm_own_company ON %I', behind.tablename);
        EXECUTE format('REVOKE ALL ON TABLE %I FROM authenticated', behind.tablename);
    END LOOP;
END
$$;
