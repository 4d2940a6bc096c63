-- Card disputes (chargebacks). What a purchase owes back is one figure, kept by its claims: the
-- share of its credits refunded (`payments.credits_refund_share`, only ever growing) plus the
-- shares of its disputes that are open or lost, never more than it credited. The ledger moves the
-- payment's reversal (`credits_reversed` + `reversal_shortfall`) to that figure: taking credits
-- back as far as the balance allows, or giving them back (shortfall forgiven first) when a dispute
-- is won. One row per Stripe dispute, which also owns whether the company is flagged (a company
-- with an open or lost dispute is).

-- Until now every reversal came from refunds: that is their share.
ALTER TABLE payments ADD COLUMN credits_refund_share bigint NOT NULL DEFAULT 0
    CHECK (credits_refund_share >= 0);
UPDATE payments SET credits_refund_share = credits_reversed + reversal_shortfall
WHERE credits_reversed + reversal_shortfall > 0;

-- Money lost to a dispute is recorded beside money refunded (the revenue report nets both), but a
-- refund's cumulative figure (Stripe's `amount_refunded`) is compared with refunds only.
ALTER TABLE payment_refunds ADD COLUMN kind text NOT NULL DEFAULT 'refund'
    CHECK (kind IN ('refund', 'dispute_lost'));

CREATE TABLE payment_disputes (
    -- Stripe's dispute id (`dp_...`): each dispute is acted on once, whatever the events' order.
    id                text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_]{1,255}$'),
    payment_id        uuid NOT NULL REFERENCES payments (id),
    company_id        uuid NOT NULL REFERENCES companies (id),
    charge            text NOT NULL,
    amount            numeric(14, 2) NOT NULL CHECK (amount >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Stripe's reason (`fraudulent`, `product_not_received`, ...) and its latest status.
    reason            text NOT NULL,
    stripe_status     text NOT NULL,
    -- Ours: open until Stripe closes it; then won or lost.
    outcome           text NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'won', 'lost')),
    -- The purchase's credits the disputed amount stands for: held back while open or lost.
    credits_share     bigint NOT NULL CHECK (credits_share >= 0),
    opened_at         timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz,
    CHECK ((outcome = 'open') = (closed_at IS NULL))
);
CREATE INDEX payment_disputes_company_idx ON payment_disputes (company_id, opened_at DESC);
CREATE INDEX payment_disputes_payment_idx ON payment_disputes (payment_id);

-- A won dispute gives its credits back as a positive purchase reversal: a payment's reversal
-- entries still sum to minus its `credits_reversed` (the audit's `reversals_match_payment`).
-- Replacing the CHECK reads `ledger_entries` once under an exclusive lock (writers and readers
-- wait; about a second per million entries on this machine).
DO $$
DECLARE
    name text;
BEGIN
    SELECT conname INTO STRICT name FROM pg_constraint
    WHERE conrelid = 'ledger_entries'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%WHEN ''purchase_reversal''::text THEN%';
    EXECUTE format('ALTER TABLE ledger_entries DROP CONSTRAINT %I', name);
END
$$;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_shape CHECK (CASE kind
    WHEN 'purchase'          THEN available_delta > 0 AND reserved_delta = 0 AND payment_id IS NOT NULL
    WHEN 'purchase_reversal' THEN available_delta <> 0 AND reserved_delta = 0 AND payment_id IS NOT NULL
    WHEN 'reserve'           THEN reserved_delta > 0 AND available_delta = -reserved_delta AND hold_id IS NOT NULL
    WHEN 'release'           THEN available_delta > 0 AND reserved_delta = -available_delta AND hold_id IS NOT NULL
    WHEN 'commit'            THEN reserved_delta < 0 AND available_delta >= 0 AND available_delta < -reserved_delta
                                  AND hold_id IS NOT NULL AND message_id IS NOT NULL
    WHEN 'refund'            THEN available_delta > 0 AND reserved_delta = 0 AND message_id IS NOT NULL
    WHEN 'adjustment'        THEN available_delta <> 0 AND reserved_delta = 0 AND adjustment_id IS NOT NULL
END);

-- `/metrics` names a reversal given back apart from one taken.
CREATE OR REPLACE FUNCTION ledger_entry_operation(p_kind text, p_available bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN p_kind = 'reserve' THEN 'reserved'
             WHEN p_kind = 'commit' THEN 'committed'
             WHEN p_kind = 'release' THEN 'released'
             WHEN p_kind = 'refund' THEN 'refunded'
             WHEN p_kind = 'purchase' THEN 'purchased'
             WHEN p_kind = 'purchase_reversal' AND p_available > 0 THEN 'purchase_restored'
             WHEN p_kind = 'purchase_reversal' THEN 'purchase_reversed'
             WHEN p_kind = 'adjustment' AND p_available > 0 THEN 'adjusted_up'
             ELSE 'adjusted_down'
           END
$$;

ALTER TABLE payment_disputes ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC'] || ARRAY(
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE payment_disputes FROM %s', grantee);
    END LOOP;
END
$$;
