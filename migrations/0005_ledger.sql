-- The credit ledger. Entries are append-only; balances is their materialised sum, updated in
-- the same transaction as each entry. Every entry moves credits between two buckets of one
-- company, "available" and "reserved" (held for a message in flight), so that
--   balances.available = sum(available_delta), balances.reserved = sum(reserved_delta).

CREATE TABLE balances (
    company_id       uuid PRIMARY KEY REFERENCES companies (id),
    available        bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved         bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    total_purchased  bigint NOT NULL DEFAULT 0,
    total_sent       bigint NOT NULL DEFAULT 0,
    total_refunded   bigint NOT NULL DEFAULT 0,
    total_adjusted   bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE holds (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies (id),
    message_id   uuid NOT NULL REFERENCES messages (id),
    credits      bigint NOT NULL CHECK (credits > 0),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'committed', 'released')),
    charged      bigint CHECK (charged >= 0 AND charged <= credits),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    CHECK ((status = 'committed') = (charged IS NOT NULL)),
    CHECK ((status = 'active') = (resolved_at IS NULL))
);
-- A message has at most one live (active or committed) hold: it is charged at most once.
CREATE UNIQUE INDEX holds_one_live_per_message ON holds (message_id) WHERE status IN ('active', 'committed');
CREATE INDEX holds_expiry_idx ON holds (expires_at) WHERE status = 'active';

CREATE TABLE ledger_entries (
    id               bigserial PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies (id),
    kind             text NOT NULL CHECK (kind IN ('purchase', 'reserve', 'commit', 'release', 'refund',
                                                   'adjustment', 'purchase_reversal')),
    available_delta  bigint NOT NULL,
    reserved_delta   bigint NOT NULL,
    -- Deferred: a reservation appends its entry before it writes the hold (see ledger_reserve).
    hold_id          uuid REFERENCES holds (id) DEFERRABLE INITIALLY DEFERRED,
    message_id       uuid REFERENCES messages (id),
    payment_id       uuid REFERENCES payments (id),
    -- Business key of an operator adjustment (the caller's idempotency key).
    adjustment_id    uuid,
    actor            text NOT NULL,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE kind
        WHEN 'purchase'          THEN available_delta > 0 AND reserved_delta = 0 AND payment_id IS NOT NULL
        WHEN 'purchase_reversal' THEN available_delta <= 0 AND reserved_delta = 0 AND payment_id IS NOT NULL
        WHEN 'reserve'           THEN reserved_delta > 0 AND available_delta = -reserved_delta AND hold_id IS NOT NULL
        WHEN 'release'           THEN available_delta > 0 AND reserved_delta = -available_delta AND hold_id IS NOT NULL
        WHEN 'commit'            THEN reserved_delta < 0 AND available_delta >= 0 AND available_delta < -reserved_delta
                                      AND hold_id IS NOT NULL AND message_id IS NOT NULL
        WHEN 'refund'            THEN available_delta > 0 AND reserved_delta = 0 AND message_id IS NOT NULL
        WHEN 'adjustment'        THEN available_delta <> 0 AND reserved_delta = 0 AND adjustment_id IS NOT NULL
    END)
);
CREATE INDEX ledger_entries_company_idx ON ledger_entries (company_id, id DESC);
-- Business keys: each makes one operation happen at most once, whatever the callers do.
CREATE UNIQUE INDEX ledger_one_purchase_per_payment ON ledger_entries (payment_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX ledger_one_reversal_per_payment ON ledger_entries (payment_id) WHERE kind = 'purchase_reversal';
CREATE UNIQUE INDEX ledger_one_reserve_per_hold ON ledger_entries (hold_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_resolution_per_hold ON ledger_entries (hold_id) WHERE kind IN ('commit', 'release');
CREATE UNIQUE INDEX ledger_one_charge_per_message ON ledger_entries (message_id) WHERE kind = 'commit';
CREATE UNIQUE INDEX ledger_one_refund_per_message ON ledger_entries (message_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX ledger_one_entry_per_adjustment ON ledger_entries (adjustment_id) WHERE kind = 'adjustment';

-- Append-only, enforced by the database rather than by convention.
CREATE FUNCTION ledger_entries_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_are_append_only();
CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_are_append_only();
