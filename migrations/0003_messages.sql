-- The SMS log: one row per message the service was asked to send. The row is the truth;
-- a SendSms job only carries its id.

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies (id),
    batch_id         uuid,
    to_number        text NOT NULL CHECK (to_number ~ '^\+[1-9][0-9]{6,14}$'),
    body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 1600),
    encoding         text NOT NULL CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments         integer NOT NULL CHECK (segments > 0),
    credits          bigint NOT NULL CHECK (credits > 0),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed')),
    -- 'twilio' or 'demo'; set when the message goes out.
    provider         text,
    provider_id      text UNIQUE,
    error_code       text,
    error_message    text,
    -- Twilio's reported cost, kept for margin reporting.
    price            numeric(12, 5),
    price_currency   text,
    debt_id          uuid,
    invoice_number   text,
    -- Who asked: a user id or an API key id, as text ("user:<uuid>", "api_key:<uuid>", "sweep").
    sender           text NOT NULL,
    respect_quiet_hours boolean NOT NULL DEFAULT true,
    idempotency_key  text,
    -- SHA-256 of the request that created the row: the same key with another body is refused.
    request_hash     bytea,
    send_attempt_started_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, idempotency_key)
);
CREATE INDEX messages_company_created_idx ON messages (company_id, created_at DESC);
CREATE INDEX messages_open_idx ON messages (status, updated_at) WHERE status IN ('queued', 'sending', 'sent');
CREATE INDEX messages_batch_idx ON messages (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE opt_outs (
    company_id  uuid NOT NULL REFERENCES companies (id),
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    source      text NOT NULL CHECK (source IN ('api', 'inbound_stop', 'twilio_21610', 'operator')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, phone)
);

-- What overdue-debt sweeps read (written by the CRM).
CREATE TABLE debts (
    id                uuid PRIMARY KEY,
    company_id        uuid NOT NULL REFERENCES companies (id),
    customer_name     text NOT NULL,
    phone             text NOT NULL,
    amount            numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency          text NOT NULL CHECK (currency IN ('USD', 'TZS', 'KES')),
    due_date          date NOT NULL,
    invoice_number    text,
    language          text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'sw')),
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'written_off')),
    reminders_sent    integer NOT NULL DEFAULT 0,
    last_reminded_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX debts_sweep_idx ON debts (company_id, due_date) WHERE status = 'open';
