-- Purchases of credits and the history of every state change.

CREATE TABLE payments (
    id                   uuid PRIMARY KEY,
    company_id           uuid NOT NULL REFERENCES companies (id),
    package_id           text NOT NULL REFERENCES sms_packages (id),
    method               text NOT NULL CHECK (method IN ('mpesa', 'card', 'bank_transfer')),
    status               text NOT NULL DEFAULT 'initiated'
                         CHECK (status IN ('initiated', 'pending', 'paid', 'credited',
                                           'failed', 'cancelled', 'expired', 'refunded')),
    -- Credits the package gives and the price asked.
    credits              bigint NOT NULL CHECK (credits > 0),
    amount               numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency             text NOT NULL CHECK (currency IN ('USD', 'TZS', 'KES')),
    -- Credits actually granted when an operator approves an under-payment explicitly.
    credits_granted      bigint CHECK (credits_granted > 0),
    amount_received      numeric(14, 2),
    phone                text,
    -- Provider handle: M-Pesa CheckoutRequestID, Stripe Checkout Session id.
    provider_ref         text,
    -- M-Pesa receipt, Stripe PaymentIntent, bank reference received: unique money-arrived proof.
    receipt              text UNIQUE,
    -- Per-payment unguessable token in the M-Pesa callback URL (only its hash is kept).
    callback_token_hash  bytea UNIQUE,
    -- Reference the customer writes on a bank transfer: SMS-{COMPANY}-{TIMESTAMP}.
    transfer_reference   text UNIQUE,
    checkout_url         text,
    credits_reversed     bigint NOT NULL DEFAULT 0 CHECK (credits_reversed >= 0),
    reversal_shortfall   bigint NOT NULL DEFAULT 0 CHECK (reversal_shortfall >= 0),
    failure_reason       text,
    requested_by         text NOT NULL,
    idempotency_key      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (method, provider_ref),
    UNIQUE (company_id, idempotency_key)
);
CREATE INDEX payments_company_created_idx ON payments (company_id, created_at DESC);
CREATE INDEX payments_open_idx ON payments (status, updated_at) WHERE status IN ('initiated', 'pending', 'paid');

CREATE TABLE payment_events (
    id           bigserial PRIMARY KEY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    from_status  text,
    to_status    text NOT NULL,
    actor        text NOT NULL,
    detail       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_payment_idx ON payment_events (payment_id, id);
