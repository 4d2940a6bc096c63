-- Checkpoints of the ledger audit: each company's entry sums through an entry id below which
-- every transaction had committed when the checkpoint was taken (see `ledger::audit`). An audit
-- since the latest checkpoint reads only the entries after it, and the holds, messages and
-- payments they name, so its cost does not grow with the ledger. Only the latest is kept.
CREATE TABLE audit_checkpoints (
    through_entry_id bigint PRIMARY KEY CHECK (through_entry_id > 0),
    taken_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_checkpoint_sums (
    through_entry_id bigint NOT NULL REFERENCES audit_checkpoints ON DELETE CASCADE,
    company_id       uuid NOT NULL REFERENCES companies (id),
    -- As the balance's columns: sums of available_delta and reserved_delta, and of the running
    -- totals' kinds.
    available        bigint NOT NULL,
    reserved         bigint NOT NULL,
    purchased        bigint NOT NULL,
    sent             bigint NOT NULL,
    refunded         bigint NOT NULL,
    adjusted         bigint NOT NULL,
    PRIMARY KEY (through_entry_id, company_id)
);

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoint_sums ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE audit_checkpoints, audit_checkpoint_sums FROM %s', grantee);
    END LOOP;
END
$$;
