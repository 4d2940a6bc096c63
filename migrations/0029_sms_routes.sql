-- SMS routes (issue 19): the operator's table from destination (a calling code or longer number
-- prefix, or '*'), optionally for one company, to an ordered list of provider routes. Empty means
-- every message goes through Twilio, as before. Replaced as a whole by PUT /admin/routes; each
-- replacement is kept in `sms_route_changes` (who, when, before, after).

CREATE TABLE sms_routes (
    position     integer PRIMARY KEY CHECK (position >= 0),
    destination  text NOT NULL CHECK (destination = '*' OR destination ~ '^[1-9][0-9]{0,14}$'),
    company_id   uuid REFERENCES companies (id),
    routes       text[] NOT NULL CHECK (cardinality(routes) BETWEEN 1 AND 3
                     AND routes <@ ARRAY['twilio', 'beem', 'africastalking'])
);
-- One rule per destination for everybody, and one per destination and company (two partial
-- indexes rather than NULLS NOT DISTINCT, which PostgreSQL 14 lacks).
CREATE UNIQUE INDEX sms_routes_everybody ON sms_routes (destination) WHERE company_id IS NULL;
CREATE UNIQUE INDEX sms_routes_company ON sms_routes (destination, company_id)
    WHERE company_id IS NOT NULL;

CREATE TABLE sms_route_changes (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    before      jsonb NOT NULL,
    after       jsonb NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE sms_routes ENABLE ROW LEVEL SECURITY;
ALTER TABLE sms_route_changes ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE sms_routes FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON TABLE sms_route_changes FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON SEQUENCE sms_route_changes_id_seq FROM %s', grantee);
    END LOOP;
END
$$;
