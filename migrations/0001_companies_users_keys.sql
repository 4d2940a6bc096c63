-- Tenants (companies of the CRM), their users and their server-to-server API keys.

CREATE TABLE companies (
    id                   uuid PRIMARY KEY,
    name                 text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- Home country: decides how local phone numbers ("0754...") are read and the default currency.
    country              text NOT NULL CHECK (country IN ('TZ', 'KE')),
    currency             text NOT NULL CHECK (currency IN ('TZS', 'KES', 'USD')),
    timezone             text NOT NULL DEFAULT 'Africa/Dar_es_Salaam',
    -- Fleet-wide per-company send limit (messages per hour).
    sms_per_hour         integer NOT NULL DEFAULT 100 CHECK (sms_per_hour > 0),
    -- Quiet hours in the company's time zone: batch and sweep messages wait until they end.
    quiet_hours_start    time NOT NULL DEFAULT '21:00',
    quiet_hours_end      time NOT NULL DEFAULT '08:00',
    -- Policy for Twilio "undelivered": the product sheet promises a refund.
    refund_undelivered   boolean NOT NULL DEFAULT true,
    -- Overdue-debt sweeps.
    sweep_enabled        boolean NOT NULL DEFAULT false,
    sweep_min_overdue_days integer NOT NULL DEFAULT 1 CHECK (sweep_min_overdue_days >= 0),
    sweep_interval_days  integer NOT NULL DEFAULT 7 CHECK (sweep_interval_days >= 1),
    sweep_max_reminders  integer NOT NULL DEFAULT 3 CHECK (sweep_max_reminders >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    -- A super_admin is a platform operator and may belong to no company.
    company_id  uuid REFERENCES companies (id),
    email       text,
    role        text NOT NULL CHECK (role IN ('member', 'admin', 'super_admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (company_id IS NOT NULL OR role = 'super_admin')
);
CREATE INDEX users_company_idx ON users (company_id);

-- Only a SHA-256 of the key is kept: keys are 256-bit random strings, so a fast hash is enough
-- and a leaked table gives nothing usable.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL REFERENCES companies (id),
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_company_idx ON api_keys (company_id);
