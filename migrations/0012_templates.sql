-- Message templates (per company, named, per language) and what overdue-debt sweeps need.
--
-- Defaults live in one global table that every company falls back to, rather than rows copied
-- into each company at creation: companies the CRM created before this migration (or writes
-- directly) get them with no backfill, the operator improves a default for everyone in one
-- place, and a company's own row (same name and language) simply takes precedence.

CREATE TABLE template_defaults (
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    language    text NOT NULL CHECK (language IN ('en', 'sw')),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 1600),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, language)
);

CREATE TABLE templates (
    company_id  uuid NOT NULL REFERENCES companies (id),
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    language    text NOT NULL CHECK (language IN ('en', 'sw')),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 1600),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, name, language)
);

-- Plain GSM-7 text (no smart quotes, no accents outside GSM 03.38), so a segment holds 160
-- characters. The sweep renders `payment_reminder` in the debt's language.
INSERT INTO template_defaults (name, language, body) VALUES
('payment_reminder', 'en',
 'Hello {customer_name}, this is a reminder that invoice {invoice_number} for {amount} was due on {due_date}. Please pay at {payment_link}. If you have already paid, please ignore this message. Thank you, {company_name}.'),
('payment_reminder', 'sw',
 'Habari {customer_name}, tunakukumbusha kuwa ankara namba {invoice_number} ya {amount} ilipaswa kulipwa tarehe {due_date}. Tafadhali lipa kupitia {payment_link}. Kama umeshalipa, puuza ujumbe huu. Asante, {company_name}.');

-- Where the debtor pays: the debt's own link (written by the CRM) or else the company's
-- (a payment page, or instructions such as "M-Pesa Paybill 400200").
ALTER TABLE companies ADD COLUMN payment_link text CHECK (length(payment_link) <= 300);
ALTER TABLE debts ADD COLUMN payment_link text CHECK (length(payment_link) <= 300);

-- The sweep run that created a reminder. At most one message per (debt, run): the database's
-- own guarantee that a re-run or a second scheduler never reminds a debt twice in one run.
ALTER TABLE messages ADD COLUMN sweep_run text CHECK (sweep_run IS NULL OR debt_id IS NOT NULL);
CREATE UNIQUE INDEX messages_debt_sweep_run_idx ON messages (debt_id, sweep_run) WHERE sweep_run IS NOT NULL;
