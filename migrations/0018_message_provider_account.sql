-- Each message records the provider account it is sent through (issue 15): reconciling an
-- unanswered send asks that account, and the operator cannot move the platform to another account
-- while the old one still has unresolved sends. The claim records it, before the request leaves,
-- because an unanswered request is exactly when it is needed. send_begin_many gains the account
-- per item (8 arguments); otherwise it is 0015's. The 7-argument form stays as a wrapper for the
-- previous release's workers (no account recorded: their sends are reconciled with the account
-- in force, as before).

ALTER TABLE messages ADD COLUMN provider_account text;

DROP FUNCTION send_begin_many(uuid[], uuid[], uuid[], bigint[], double precision[], timestamptz[], uuid[]);

CREATE FUNCTION send_begin_many(p_holds uuid[], p_companies uuid[], p_messages uuid[],
                                p_credits bigint[], p_ttl_secs double precision[],
                                p_seen timestamptz[], p_attempts uuid[], p_accounts text[])
RETURNS TABLE (n bigint, outcome text, id uuid, company_id uuid, message_id uuid, credits bigint,
               status text, charged bigint, expires_at timestamptz, created_at timestamptz,
               available bigint)
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET lock_timeout = '10s'
AS $$
#variable_conflict use_column
DECLARE
    r record;
    v_fit bigint[] := '{}';        -- positions of the items that get a hold
    v_asked bigint[] := '{}';      -- positions of the items that ask for credits...
    v_left bigint[] := '{}';       -- ...and what their company had left at their turn
    v_spent_by uuid[] := '{}';
    v_spent bigint[] := '{}';
    v_rem bigint;
BEGIN
    PERFORM 1 FROM messages m WHERE m.id = ANY (p_messages) ORDER BY m.id FOR NO KEY UPDATE;
    PERFORM 1 FROM balances b WHERE b.company_id = ANY (p_companies) ORDER BY b.company_id
        FOR NO KEY UPDATE;
    -- Which items fit, taken in order as if one after another: an item that does not fit is
    -- refused and the company's later items still get their turn.
    FOR r IN
        SELECT t.n, t.company, t.credits, b.available
        FROM unnest(p_companies, p_messages, p_credits, p_seen)
                 WITH ORDINALITY AS t(company, message, credits, seen, n)
        JOIN messages m ON m.id = t.message AND m.company_id = t.company
                       AND m.status IN ('queued', 'sending')
                       AND m.send_attempt_started_at IS NOT DISTINCT FROM t.seen
        LEFT JOIN balances b ON b.company_id = t.company
        WHERE NOT EXISTS (SELECT 1 FROM holds l WHERE l.message_id = t.message
                                                  AND l.status IN ('active', 'committed'))
          -- Of the items for one message, the first that saw its latest attempt goes ahead.
          AND NOT EXISTS (SELECT 1 FROM unnest(p_messages, p_seen) WITH ORDINALITY AS e(message, seen, k)
                          WHERE e.message = t.message AND e.k < t.n
                            AND e.seen IS NOT DISTINCT FROM m.send_attempt_started_at)
        ORDER BY t.n
    LOOP
        v_rem := r.available - COALESCE((SELECT sum(x.spent) FROM unnest(v_spent_by, v_spent) AS x(company, spent)
                                         WHERE x.company = r.company), 0);
        v_asked := v_asked || r.n;
        v_left := v_left || v_rem;
        IF v_rem >= r.credits THEN
            v_fit := v_fit || r.n;
            v_spent_by := v_spent_by || r.company;
            v_spent := v_spent || r.credits;
        END IF;
    END LOOP;
    RETURN QUERY
    WITH item AS (
        SELECT t.n, t.hold, t.company, t.message, t.credits, t.ttl, t.attempt, t.account,
               m.id IS NOT NULL AND m.company_id = t.company AS known,
               m.status IN ('queued', 'sending') AS open,
               row_number() OVER (PARTITION BY t.message
                                  ORDER BY m.send_attempt_started_at IS NOT DISTINCT FROM t.seen DESC,
                                           t.n) = 1 AS first,
               m.send_attempt_started_at IS NOT DISTINCT FROM t.seen AS unclaimed,
               live.id AS live_id
        FROM unnest(p_holds, p_companies, p_messages, p_credits, p_ttl_secs, p_seen, p_attempts, p_accounts)
                 WITH ORDINALITY AS t(hold, company, message, credits, ttl, seen, attempt, account, n)
        LEFT JOIN messages m ON m.id = t.message
        LEFT JOIN holds live ON live.message_id = t.message AND live.status IN ('active', 'committed')
    ),
    fits AS (
        SELECT i.* FROM item i WHERE i.n = ANY (v_fit)
    ),
    spent AS (
        UPDATE balances b SET available = b.available - s.total, reserved = b.reserved + s.total,
                              updated_at = now()
        FROM (SELECT f.company, sum(f.credits)::bigint AS total FROM fits f GROUP BY f.company) s
        WHERE b.company_id = s.company
    ),
    new_hold AS (
        INSERT INTO holds (id, company_id, message_id, credits, expires_at)
        SELECT f.hold, f.company, f.message, f.credits, now() + make_interval(secs => f.ttl)
        FROM fits f
        RETURNING *
    ),
    entry AS (
        INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, hold_id,
                                    message_id, actor)
        SELECT f.company, 'reserve', -f.credits, f.credits, f.hold, f.message, 'ledger' FROM fits f
    ),
    marked AS (
        UPDATE messages m SET status = 'sending', send_attempt_started_at = now(),
                              send_attempt_id = c.attempt, provider_account = c.account,
                              updated_at = now()
        FROM (SELECT f.message, f.attempt, f.account FROM fits f
              UNION ALL
              SELECT i.message, i.attempt, i.account FROM item i JOIN holds l ON l.id = i.live_id
              WHERE i.known AND i.open AND i.first AND i.unclaimed
                AND l.status = 'active') c
        WHERE m.id = c.message
    )
    SELECT i.n,
           CASE WHEN NOT i.known THEN 'unknown_message'
                WHEN NOT i.open OR NOT i.first THEN 'settled'
                WHEN NOT i.unclaimed THEN 'taken'
                WHEN h.status = 'active' THEN 'replay'
                WHEN h.status = 'committed' THEN 'already_charged'
                WHEN nh.id IS NOT NULL THEN 'reserved'
                ELSE 'insufficient' END,
           COALESCE(nh.id, h.id), COALESCE(nh.company_id, h.company_id),
           COALESCE(nh.message_id, h.message_id), COALESCE(nh.credits, h.credits),
           COALESCE(nh.status, h.status), COALESCE(nh.charged, h.charged),
           COALESCE(nh.expires_at, h.expires_at), COALESCE(nh.created_at, h.created_at),
           -- For an insufficient item: what its company had left at its turn.
           CASE WHEN nh.id IS NULL THEN a.rem END
    FROM item i
    LEFT JOIN holds h ON h.id = i.live_id AND i.known AND i.open AND i.first AND i.unclaimed
    LEFT JOIN new_hold nh ON nh.id = i.hold
    LEFT JOIN unnest(v_asked, v_left) AS a(n, rem) ON a.n = i.n
    ORDER BY i.n;
END;
$$;

-- The previous release's workers (0015's signature); the 5-argument wrapper of 0015 calls this.
CREATE FUNCTION send_begin_many(p_holds uuid[], p_companies uuid[], p_messages uuid[],
                                p_credits bigint[], p_ttl_secs double precision[],
                                p_seen timestamptz[], p_attempts uuid[])
RETURNS TABLE (n bigint, outcome text, id uuid, company_id uuid, message_id uuid, credits bigint,
               status text, charged bigint, expires_at timestamptz, created_at timestamptz,
               available bigint)
LANGUAGE sql
AS $$
    SELECT * FROM send_begin_many(p_holds, p_companies, p_messages, p_credits, p_ttl_secs, p_seen,
                                  p_attempts, array_fill(NULL::text, ARRAY[cardinality(p_messages)]))
$$;

-- A `sending` message whose send got no answer and that the provider's list does not show: when
-- its send job first found it so. It is held (shown to the operator as unanswered) until
-- TWILIO_RESEND_UNANSWERED_AFTER_SECS after its attempt began, and only then sent again.
ALTER TABLE messages ADD COLUMN unanswered_since timestamptz;
