-- The rate card (DESIGN.md section 3, decision of 2026-12-01): credits per SMS segment by
-- destination. A destination is a prefix of the number's E.164 digits (without the `+`): a country
-- calling code (`44`) or a longer prefix (`4479`). The longest prefix that matches a number wins.
-- A number no row matches is refused at accept (the operator prices it first); a row with
-- `allowed = false` refuses its numbers. The home markets, Tanzania (255) and Kenya (254), are 1
-- credit per segment by definition and cannot be changed, nor split into longer prefixes.
CREATE TABLE rate_card (
    prefix               text PRIMARY KEY CHECK (prefix ~ '^[1-9][0-9]{0,14}$'),
    credits_per_segment  integer NOT NULL CHECK (credits_per_segment BETWEEN 1 AND 1000),
    allowed              boolean NOT NULL,
    updated_by           text NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rate_card_home_markets_are_one_credit CHECK (
        (prefix NOT LIKE '255%' AND prefix NOT LIKE '254%')
        OR (prefix IN ('255', '254') AND credits_per_segment = 1 AND allowed)
    )
);
INSERT INTO rate_card (prefix, credits_per_segment, allowed, updated_by)
VALUES ('255', 1, true, 'migration'), ('254', 1, true, 'migration');

-- Kinds of numbers that cost far more than their country's mobiles, or whose cost is not the
-- country's at all: refused, whatever the card says, unless the operator enables the range
-- (and then the number still needs a rate). `premium_rate` and `shared_cost` as libphonenumber
-- types the number (and the international ranges +979 premium, +808 shared cost); `satellite` by
-- calling code: +870 (Inmarsat), +881 (global mobile satellite systems), +882 and +883
-- (international networks).
CREATE TABLE rate_card_special_ranges (
    range       text PRIMARY KEY
                CHECK (range IN ('premium_rate', 'shared_cost', 'satellite')),
    enabled     boolean NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rate_card_special_ranges (range, enabled, updated_by)
VALUES ('premium_rate', false, 'migration'), ('shared_cost', false, 'migration'),
       ('satellite', false, 'migration');

-- Every change of the card, as `company_changes` records a company's: who, when, and the rates
-- and ranges that changed, before and after (`{"rates": {"44": {...} | null}, "special_ranges":
-- {"satellite": false}}`). Written in the transaction that changes the card.
CREATE TABLE rate_card_changes (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    before      jsonb NOT NULL,
    after       jsonb NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Like every table of ours in a database shared with the CRM (0021, 0020): row-level security on,
-- and nothing for PUBLIC or Supabase's API roles where they exist.
ALTER TABLE rate_card ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_card_special_ranges ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_card_changes ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
    relation text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        FOREACH relation IN ARRAY ARRAY['rate_card', 'rate_card_special_ranges', 'rate_card_changes'] LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %s', relation, grantee);
        END LOOP;
        EXECUTE format('REVOKE ALL ON SEQUENCE rate_card_changes_id_seq FROM %s', grantee);
    END LOOP;
END
$$;
