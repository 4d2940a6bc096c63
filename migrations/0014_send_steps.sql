-- The send job's two ledger steps for a batch of messages (DESIGN.md section 5): reserve the
-- credits and mark the messages `sending`; then charge them and mark the messages `sent`. The
-- send workers group concurrent jobs' steps (src/workers/group_commit.rs), so a batch of N
-- messages is one call: one round trip, one commit, and each statement below runs once for the
-- batch rather than once per message (per-statement work, such as preparing the tables' CHECK
-- constraints, was most of the cost of the one-message functions of 0008).
--
-- Each item has the effect, and the idempotency, it would have alone through ledger_reserve and
-- ledger_commit; an item's refusal writes nothing for it and does not abort the others. They
-- never raise for a business outcome. Credits move by the same entries ledger_post writes, and
-- the balance row changes once per company per batch by the sum of its entries.
--
-- Plans: every row these functions touch is found by key, a few dozen at a time. Left to its
-- statistics, the planner hashed whole tables while they were young (seq scans of holds and
-- messages on every call of a fresh deployment); the functions switch those plans off, so a
-- call costs the same on a new database as on a large one.
--
-- A batch waits at most 10 s for a lock (lock_timeout): past that it fails, its jobs retry, and
-- the rest of the process's sends are not stuck behind one slow transaction.
--
-- Locks, taken first and in one order (messages by id, then holds by id, then balances by
-- company), so that every statement after them sees the current rows and concurrent batches
-- cannot deadlock on each other. The one-message functions take messages before balances too.

-- Outcomes per item (n = its 1-based position): those of ledger_reserve, and `settled` (the
-- message is no longer queued or sending, or it appears earlier in the same batch: nothing
-- written for it). Credits are taken in item order, as one call after another would take them:
-- an item that does not fit is refused, and a later, smaller one may still fit.
CREATE FUNCTION send_begin_many(p_holds uuid[], p_companies uuid[], p_messages uuid[],
                                p_credits bigint[], p_ttl_secs double precision[])
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
        FROM unnest(p_companies, p_messages, p_credits) WITH ORDINALITY AS t(company, message, credits, n)
        JOIN messages m ON m.id = t.message AND m.company_id = t.company
                       AND m.status IN ('queued', 'sending')
        LEFT JOIN balances b ON b.company_id = t.company
        WHERE NOT EXISTS (SELECT 1 FROM holds l WHERE l.message_id = t.message
                                                  AND l.status IN ('active', 'committed'))
          AND NOT EXISTS (SELECT 1 FROM unnest(p_messages) WITH ORDINALITY AS e(message, k)
                          WHERE e.message = t.message AND e.k < t.n)
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
        SELECT t.n, t.hold, t.company, t.message, t.credits, t.ttl,
               m.id IS NOT NULL AND m.company_id = t.company AS known,
               m.status IN ('queued', 'sending') AS open,
               row_number() OVER (PARTITION BY t.message ORDER BY t.n) = 1 AS first,
               live.id AS live_id
        FROM unnest(p_holds, p_companies, p_messages, p_credits, p_ttl_secs)
                 WITH ORDINALITY AS t(hold, company, message, credits, ttl, n)
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
        UPDATE messages m SET status = 'sending', send_attempt_started_at = now(), updated_at = now()
        WHERE m.id IN (SELECT f.message FROM fits f
                       UNION
                       SELECT l.message_id FROM item i JOIN holds l ON l.id = i.live_id
                       WHERE i.known AND i.open AND i.first AND l.status = 'active')
    )
    SELECT i.n,
           CASE WHEN NOT i.known THEN 'unknown_message'
                WHEN NOT i.open OR NOT i.first THEN 'settled'
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
    LEFT JOIN holds h ON h.id = i.live_id AND i.known AND i.open AND i.first
    LEFT JOIN new_hold nh ON nh.id = i.hold
    LEFT JOIN unnest(v_asked, v_left) AS a(n, rem) ON a.n = i.n
    ORDER BY i.n;
END;
$$;

-- Outcomes per item: those of ledger_commit. On `committed` and `replay` the message is marked
-- `sent` with the provider's id, segments and price (if it is still queued or sending). A hold
-- that appears twice in the batch is committed by its first item with a charge in range; the
-- later ones are replays (same amount) or `hold_committed`, as they would be one after another.
CREATE FUNCTION send_finish_many(p_holds uuid[], p_charges bigint[], p_providers text[],
                                 p_provider_ids text[], p_segments integer[],
                                 p_uncharged bigint[], p_prices numeric[], p_currencies text[])
RETURNS TABLE (n bigint, outcome text, id uuid, company_id uuid, message_id uuid, credits bigint,
               status text, charged bigint, expires_at timestamptz, created_at timestamptz,
               available bigint)
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET lock_timeout = '10s'
AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM messages m
        WHERE m.id IN (SELECT h.message_id FROM holds h WHERE h.id = ANY (p_holds))
        ORDER BY m.id FOR NO KEY UPDATE;
    PERFORM 1 FROM holds h WHERE h.id = ANY (p_holds) ORDER BY h.id FOR UPDATE;
    PERFORM 1 FROM balances b
        WHERE b.company_id IN (SELECT h.company_id FROM holds h WHERE h.id = ANY (p_holds))
        ORDER BY b.company_id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH item AS (
        SELECT t.*, h.id IS NOT NULL AS known, h.status AS was, h.charged AS was_charged,
               h.credits AS held, h.company_id AS company, h.message_id AS message,
               -- The item that commits a hold is its first one with a charge in range.
               t.charge BETWEEN 1 AND h.credits
                   AND row_number() OVER (PARTITION BY t.hold, t.charge BETWEEN 1 AND h.credits
                                          ORDER BY t.n) = 1 AS first
        FROM unnest(p_holds, p_charges, p_providers, p_provider_ids, p_segments, p_uncharged,
                    p_prices, p_currencies)
                 WITH ORDINALITY AS t(hold, charge, provider, provider_id, segments, uncharged,
                                      price, currency, n)
        LEFT JOIN holds h ON h.id = t.hold
    ),
    go AS (
        SELECT i.* FROM item i
        WHERE i.known AND i.first AND i.was = 'active'
    ),
    done AS (
        UPDATE holds h SET status = 'committed', charged = g.charge, resolved_at = now()
        FROM go g WHERE h.id = g.hold
        RETURNING h.*
    ),
    spent AS (
        UPDATE balances b SET available = b.available + s.back, reserved = b.reserved - s.held,
                              total_sent = b.total_sent + s.charged, updated_at = now()
        FROM (SELECT g.company, sum(g.held - g.charge)::bigint AS back, sum(g.held)::bigint AS held,
                     sum(g.charge)::bigint AS charged
              FROM go g GROUP BY g.company) s
        WHERE b.company_id = s.company
    ),
    entry AS (
        INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, hold_id,
                                    message_id, actor)
        SELECT g.company, 'commit', g.held - g.charge, -g.held, g.hold, g.message, 'ledger'
        FROM go g
    ),
    answer AS (
        SELECT i.n, i.hold, i.first, i.message, i.provider, i.provider_id, i.segments, i.uncharged,
               i.price, i.currency,
               CASE WHEN NOT i.known THEN 'unknown_hold'
                    WHEN i.was = 'committed'
                        THEN CASE WHEN i.was_charged = i.charge THEN 'replay' ELSE 'hold_committed' END
                    WHEN i.was = 'released' THEN 'hold_released'
                    WHEN i.first THEN 'committed'
                    -- After the item that committed it, as if that commit had come first.
                    WHEN f.n < i.n
                        THEN CASE WHEN f.charge = i.charge THEN 'replay' ELSE 'hold_committed' END
                    ELSE 'out_of_range' END AS outcome
        FROM item i
        LEFT JOIN go f ON f.hold = i.hold
    ),
    marked AS (
        UPDATE messages m SET status = 'sent', provider = a.provider, provider_id = a.provider_id,
               segments = a.segments, uncharged_credits = a.uncharged, price = a.price,
               price_currency = a.currency, updated_at = now()
        FROM answer a
        WHERE m.id = a.message AND a.first AND a.outcome IN ('committed', 'replay')
          AND m.status IN ('queued', 'sending')
    )
    SELECT a.n, a.outcome,
           h.id, h.company_id, h.message_id, h.credits,
           CASE WHEN d.id IS NOT NULL THEN d.status ELSE h.status END,
           COALESCE(d.charged, h.charged), h.expires_at, h.created_at, NULL::bigint
    FROM answer a
    LEFT JOIN holds h ON h.id = a.hold
    LEFT JOIN done d ON d.id = a.hold
    ORDER BY a.n;
END;
$$;
