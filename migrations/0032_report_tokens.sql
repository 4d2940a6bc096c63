-- The bulk routes' report tokens (issue 19): the token in a route's report URL is derived from
-- the route's secret, so rotating that secret changes the URL. Until the operator has set the
-- new URL in the provider's portal, reports still come to the old one; they are accepted for
-- REPORT_TOKEN_GRACE_SECS after the token stopped being the one in force. Each process records
-- the token it serves whenever it loads its providers (from the environment or from settings),
-- and marks the route's other tokens as replaced. Only a SHA-256 of each token is kept.
CREATE TABLE report_tokens (
    route        text NOT NULL CHECK (route IN ('beem', 'africastalking')),
    token_sha256 bytea NOT NULL CHECK (length(token_sha256) = 32),
    first_served timestamptz NOT NULL DEFAULT now(),
    -- NULL while some process still serves it.
    replaced_at  timestamptz,
    PRIMARY KEY (route, token_sha256)
);

ALTER TABLE report_tokens ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE report_tokens FROM %s', grantee);
    END LOOP;
END
$$;
