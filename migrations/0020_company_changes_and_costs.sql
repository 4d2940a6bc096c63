-- What the operator changes in a company's settings (who, when, before, after), and what the
-- revenue report needs: the provider's price of each message, looked up after the fact.

-- One row per change: `before` and `after` hold only the settings that changed, as the JSON
-- the admin API shows them. Written in the transaction that changes `companies`.
CREATE TABLE company_changes (
    id          bigserial PRIMARY KEY,
    company_id  uuid NOT NULL REFERENCES companies (id),
    actor       text NOT NULL,
    before      jsonb NOT NULL,
    after       jsonb NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX company_changes_company_idx ON company_changes (company_id, id DESC);

-- Twilio fills in a message's price some time after the send (the create answer and status
-- callbacks carry none). The reconciler fetches final messages still without a price, a few
-- at a time, at most `price_lookups` times each, spaced out by `price_looked_up_at`.
ALTER TABLE messages
    ADD COLUMN price_lookups      smallint NOT NULL DEFAULT 0 CHECK (price_lookups >= 0),
    ADD COLUMN price_looked_up_at timestamptz;
CREATE INDEX messages_price_missing_idx ON messages (price_looked_up_at NULLS FIRST, id)
    WHERE price IS NULL AND provider = 'twilio' AND provider_id IS NOT NULL
      AND status IN ('delivered', 'undelivered', 'failed');

-- The report reads the ledger by time. The ledger is append-only and written in time order, so a
-- BRIN index finds a period for the cost of a few pages, and adds almost nothing to each insert.
CREATE INDEX ledger_entries_created_brin ON ledger_entries USING brin (created_at);

-- Like every table of ours in a database shared with the CRM (0021 does the tables before it):
-- row-level security on, and nothing for PUBLIC or Supabase's API roles where they exist.
ALTER TABLE company_changes ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE company_changes FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON SEQUENCE company_changes_id_seq FROM %s', grantee);
    END LOOP;
END
$$;
