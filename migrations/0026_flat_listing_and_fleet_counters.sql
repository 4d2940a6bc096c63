-- Cost as the tables grow (issue 17): reads that grew with the SMS log.
--
-- 1. `GET /v1/messages` pages a company's messages newest first, but the only per-company index
--    was on (company_id, created_at) and the listing ordered by id: depending on the statistics
--    the plan sorted all of the company's messages or walked the primary key backwards over every
--    company's (to the end, for a status the company has none of). The listing now reads one
--    branch per status from this index, in its order (created_at, then id), from the page's
--    cursor, and merges them; no other index gives that order. It replaces the created_at one
--    (nothing else reads by it), so a message keeps the same number of index entries.
DROP INDEX IF EXISTS messages_company_created_idx;
CREATE INDEX messages_company_status_idx ON messages (company_id, status, created_at DESC, id DESC);
--    The listing's `to` filter walked all of the company's messages; it reads this one instead, in
--    the same order. So does the inbound STOP's look for the company that last wrote to a number
--    (`messages::opt_outs`), which read the whole table. One more index entry per row version.
CREATE INDEX messages_to_idx ON messages (to_number, company_id, created_at DESC, id DESC);

-- 2. Two reads of the reconciler's pass (every minute) walked history:
--    - `sent` messages silent for 72 h are marked unconfirmed once, but the open index held every
--      `sent` message, marked or not, so the pass read all of them each time. The index now
--      holds only the ones still to mark (and the queued and sending ones, as before).
DROP INDEX IF EXISTS messages_open_idx;
CREATE INDEX messages_open_idx ON messages (status, updated_at)
    WHERE status IN ('queued', 'sending') OR (status = 'sent' AND unconfirmed_at IS NULL);
--    - charged failed (or undelivered) messages without a refund were looked for among every
--      failed message ever. The pass now starts at a mark: every such message older than it has
--      been settled (`messages::recovery::unrefunded` keeps it).
CREATE TABLE reconciler_marks (
    name  text PRIMARY KEY,
    at    timestamptz NOT NULL
);

-- 3. `/metrics` counted every message by status and summed every ledger entry at each read.
--    Now statement-level triggers append what each statement changed to
--    `fleet_counter_deltas` (insert only: no row that two writers wait for), and the metrics
--    read folds the deltas into `fleet_counters` and reads both, a few rows whatever the size
--    of the tables. Series and keys: ('messages', status) -> messages in that status;
--    ('ledger_credits', operation) -> credits moved by that operation since the beginning.
CREATE TABLE fleet_counters (
    series  text NOT NULL,
    key     text NOT NULL,
    value   bigint NOT NULL,
    PRIMARY KEY (series, key)
);

CREATE TABLE fleet_counter_deltas (
    series  text NOT NULL,
    key     text NOT NULL,
    delta   bigint NOT NULL
);

-- The ledger operation of an entry and the credits it moved, as `/metrics` names them.
CREATE FUNCTION ledger_entry_operation(p_kind text, p_available bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN p_kind = 'reserve' THEN 'reserved'
             WHEN p_kind = 'commit' THEN 'committed'
             WHEN p_kind = 'release' THEN 'released'
             WHEN p_kind = 'refund' THEN 'refunded'
             WHEN p_kind = 'purchase' THEN 'purchased'
             WHEN p_kind = 'purchase_reversal' THEN 'purchase_reversed'
             WHEN p_kind = 'adjustment' AND p_available > 0 THEN 'adjusted_up'
             ELSE 'adjusted_down'
           END
$$;

CREATE FUNCTION ledger_entry_credits(p_kind text, p_available bigint, p_reserved bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN p_kind = 'reserve' THEN p_reserved
             WHEN p_kind = 'commit' THEN -(p_available + p_reserved)
             ELSE abs(p_available)
           END
$$;

CREATE FUNCTION fleet_count_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fleet_counter_deltas (series, key, delta)
        SELECT 'messages', status, count(*) FROM new_rows GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO fleet_counter_deltas (series, key, delta)
        SELECT 'messages', status, -count(*) FROM old_rows GROUP BY status;
    ELSE
        INSERT INTO fleet_counter_deltas (series, key, delta)
        SELECT 'messages', status, sum(d) FROM (
            SELECT status, 1 AS d FROM new_rows UNION ALL SELECT status, -1 FROM old_rows
        ) moved GROUP BY status HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fleet_count_ledger_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fleet_counter_deltas (series, key, delta)
    SELECT 'ledger_credits', ledger_entry_operation(kind, available_delta),
           sum(ledger_entry_credits(kind, available_delta, reserved_delta))
    FROM new_rows GROUP BY 2;
    RETURN NULL;
END;
$$;

-- The triggers first: each takes a lock that holds writers off until this migration commits, so
-- the counts below see every row written before and the triggers every row written after.
CREATE TRIGGER messages_fleet_count_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_count_messages();
CREATE TRIGGER messages_fleet_count_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_count_messages();
CREATE TRIGGER messages_fleet_count_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_count_messages();
CREATE TRIGGER ledger_entries_fleet_count AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_count_ledger_entries();

-- What the tables hold now (one scan, here, instead of one per metrics read).
INSERT INTO fleet_counters (series, key, value)
SELECT 'messages', status, count(*) FROM messages GROUP BY status;
INSERT INTO fleet_counters (series, key, value)
SELECT 'ledger_credits', ledger_entry_operation(kind, available_delta),
       sum(ledger_entry_credits(kind, available_delta, reserved_delta))
FROM ledger_entries GROUP BY 2;

-- Like every table and function of ours in a database shared with the CRM: row-level security
-- on, and nothing for PUBLIC or Supabase's API roles where they exist.
ALTER TABLE fleet_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_counter_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciler_marks ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE fleet_counters FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON TABLE fleet_counter_deltas FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON TABLE reconciler_marks FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON FUNCTION ledger_entry_operation(text, bigint) FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON FUNCTION ledger_entry_credits(text, bigint, bigint) FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON FUNCTION fleet_count_messages() FROM %s', grantee);
        EXECUTE format('REVOKE ALL ON FUNCTION fleet_count_ledger_entries() FROM %s', grantee);
    END LOOP;
END
$$;
