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
-- Locks, taken first and in one order (messages by id, then holds by id, then balances by
-- company), so that every statement after them sees the current rows and concurrent batches
-- cannot deadlock on each other. The one-message functions take messages before balances too.

-- Outcomes per item (n = its 1-based position): those of ledger_reserve, and `settled` (the
-- message is no longer queued or sending, or it appears earlier in the same batch: nothing
-- written for it). Credits are taken first come, first served within a company: once an item
-- does not fit, the company's later items in the batch fail as insufficient too.
CREATE FUNCTION send_begin_many(p_holds uuid[], p_companies uuid[], p_messages uuid[],
                                p_credits bigint[], p_ttl_secs double precision[])
RETURNS TABLE (n bigint, outcome text, id uuid, company_id uuid, message_id uuid, credits bigint,
               status text, charged bigint, expires_at timestamptz, created_at timestamptz,
               available bigint)
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off
AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM messages m WHERE m.id = ANY (p_messages) ORDER BY m.id FOR NO KEY UPDATE;
    PERFORM 1 FROM balances b WHERE b.company_id = ANY (p_companies) ORDER BY b.company_id
        FOR NO KEY UPDATE;
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
    candidate AS (
        SELECT i.*, (sum(i.credits) OVER (PARTITION BY i.company ORDER BY i.n))::bigint AS running
        FROM item i WHERE i.known AND i.open AND i.first AND i.live_id IS NULL
    ),
    fits AS (
        SELECT c.* FROM candidate c JOIN balances b ON b.company_id = c.company
        WHERE c.running <= b.available
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
           -- For an insufficient item: what was left for it after the company's earlier items.
           CASE WHEN nh.id IS NULL AND c.n IS NOT NULL AND b.company_id IS NOT NULL
                THEN greatest(b.available - (c.running - c.credits), 0) END
    FROM item i
    LEFT JOIN holds h ON h.id = i.live_id AND i.known AND i.open AND i.first
    LEFT JOIN new_hold nh ON nh.id = i.hold
    LEFT JOIN candidate c ON c.n = i.n
    LEFT JOIN balances b ON b.company_id = c.company
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
SET enable_seqscan = off SET enable_hashjoin = off
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
