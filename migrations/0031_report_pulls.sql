-- Beem's delivery-report pull (issue 19): a message sent through Beem whose report has not come
-- is asked about now and then, spaced further apart each time, until its report comes or it is
-- marked unconfirmed. The schedule lives apart from `messages` so a pull does not rewrite the
-- message row (and its indexes) for nothing.
CREATE TABLE report_pulls (
    message_id  uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    pulls       integer NOT NULL CHECK (pulls > 0),
    next_at     timestamptz NOT NULL
);

ALTER TABLE report_pulls ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE report_pulls FROM %s', grantee);
    END LOOP;
END
$$;
