-- The ledger's hot operations as single-statement functions: one round trip each, atomic on
-- their own (autocommit) or inside a caller's transaction. They never raise for a business
-- outcome; they return it in `outcome`, so a refusal writes nothing and aborts nothing.
-- src/ledger/ calls these; the rules are documented there.

-- The one place credits move: the balance (materialised view) and the append-only entry change
-- together. Returns the entry id, or NULL (and changes nothing) when a bucket would go negative
-- or the company has no balance.
CREATE FUNCTION ledger_post(
    p_company uuid, p_kind text, p_available bigint, p_reserved bigint,
    p_hold uuid, p_message uuid, p_payment uuid, p_adjustment uuid, p_actor text, p_reason text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    UPDATE balances SET
        available = available + p_available,
        reserved = reserved + p_reserved,
        total_purchased = total_purchased
            + CASE WHEN p_kind IN ('purchase', 'purchase_reversal') THEN p_available ELSE 0 END,
        total_sent = total_sent + CASE WHEN p_kind = 'commit' THEN -(p_available + p_reserved) ELSE 0 END,
        total_refunded = total_refunded + CASE WHEN p_kind = 'refund' THEN p_available ELSE 0 END,
        total_adjusted = total_adjusted + CASE WHEN p_kind = 'adjustment' THEN p_available ELSE 0 END,
        updated_at = now()
    WHERE company_id = p_company AND available + p_available >= 0 AND reserved + p_reserved >= 0;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, hold_id, message_id,
                                payment_id, adjustment_id, actor, reason)
    VALUES (p_company, p_kind, p_available, p_reserved, p_hold, p_message, p_payment, p_adjustment, p_actor, p_reason)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

-- What reserve, commit and release return: the outcome, the hold, and the available credits.
CREATE TYPE ledger_hold_outcome AS (
    outcome     text,
    id          uuid,
    company_id  uuid,
    message_id  uuid,
    credits     bigint,
    status      text,
    charged     bigint,
    expires_at  timestamptz,
    created_at  timestamptz,
    available   bigint
);

CREATE FUNCTION ledger_outcome(p_outcome text, h holds, p_available bigint)
RETURNS ledger_hold_outcome LANGUAGE sql IMMUTABLE AS $$
    SELECT p_outcome, h.id, h.company_id, h.message_id, h.credits, h.status, h.charged, h.expires_at,
           h.created_at, p_available
$$;

-- Outcomes: reserved | replay (the message's active hold) | already_charged | unknown_message |
-- insufficient (nothing written).
CREATE FUNCTION ledger_reserve(p_hold uuid, p_company uuid, p_message uuid, p_credits bigint, p_ttl_secs double precision)
RETURNS ledger_hold_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_company uuid;
    h holds;
BEGIN
    -- Locking the message serialises concurrent reservations for it (FOR NO KEY UPDATE does not
    -- block the foreign-key checks of other rows that reference it).
    SELECT company_id INTO v_company FROM messages WHERE id = p_message FOR NO KEY UPDATE;
    IF NOT FOUND OR v_company <> p_company THEN
        RETURN ledger_outcome('unknown_message', NULL, NULL);
    END IF;
    SELECT * INTO h FROM holds WHERE message_id = p_message AND status IN ('active', 'committed');
    IF FOUND THEN
        RETURN ledger_outcome(CASE h.status WHEN 'active' THEN 'replay' ELSE 'already_charged' END, h, NULL);
    END IF;
    IF ledger_post(p_company, 'reserve', -p_credits, p_credits, p_hold, p_message, NULL, NULL, 'ledger', NULL) IS NULL THEN
        RETURN ledger_outcome('insufficient', NULL,
                              (SELECT available FROM balances WHERE company_id = p_company));
    END IF;
    INSERT INTO holds (id, company_id, message_id, credits, expires_at)
    VALUES (p_hold, p_company, p_message, p_credits, now() + make_interval(secs => p_ttl_secs))
    RETURNING * INTO h;
    RETURN ledger_outcome('reserved', h, NULL);
END;
$$;

-- Outcomes: committed | replay (same amount) | hold_committed (another amount) | hold_released |
-- out_of_range (actual not in 1..=credits) | unknown_hold.
CREATE FUNCTION ledger_commit(p_hold uuid, p_actual bigint)
RETURNS ledger_hold_outcome LANGUAGE plpgsql AS $$
DECLARE
    h holds;
BEGIN
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ledger_outcome('unknown_hold', NULL, NULL);
    ELSIF h.status = 'committed' THEN
        RETURN ledger_outcome(CASE WHEN h.charged = p_actual THEN 'replay' ELSE 'hold_committed' END, h, NULL);
    ELSIF h.status = 'released' THEN
        RETURN ledger_outcome('hold_released', h, NULL);
    ELSIF p_actual < 1 OR p_actual > h.credits THEN
        RETURN ledger_outcome('out_of_range', h, NULL);
    END IF;
    UPDATE holds SET status = 'committed', charged = p_actual, resolved_at = now() WHERE id = p_hold RETURNING * INTO h;
    IF ledger_post(h.company_id, 'commit', h.credits - p_actual, -h.credits, h.id, h.message_id, NULL, NULL,
                   'ledger', NULL) IS NULL THEN
        RAISE EXCEPTION 'ledger invariant broken: company % reserves less than hold %', h.company_id, h.id;
    END IF;
    RETURN ledger_outcome('committed', h, NULL);
END;
$$;

-- Outcomes: released | replay | hold_committed | unknown_hold.
CREATE FUNCTION ledger_release(p_hold uuid)
RETURNS ledger_hold_outcome LANGUAGE plpgsql AS $$
DECLARE
    h holds;
BEGIN
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ledger_outcome('unknown_hold', NULL, NULL);
    ELSIF h.status = 'released' THEN
        RETURN ledger_outcome('replay', h, NULL);
    ELSIF h.status = 'committed' THEN
        RETURN ledger_outcome('hold_committed', h, NULL);
    END IF;
    UPDATE holds SET status = 'released', resolved_at = now() WHERE id = p_hold RETURNING * INTO h;
    IF ledger_post(h.company_id, 'release', h.credits, -h.credits, h.id, h.message_id, NULL, NULL,
                   'ledger', NULL) IS NULL THEN
        RAISE EXCEPTION 'ledger invariant broken: company % reserves less than hold %', h.company_id, h.id;
    END IF;
    RETURN ledger_outcome('released', h, NULL);
END;
$$;
