-- Operator settings (provider secrets are stored encrypted with SETTINGS_KEY) and every webhook
-- received, accepted or not.

CREATE TABLE system_settings (
    key          text PRIMARY KEY,
    value        text NOT NULL,
    -- true: value is base64(nonce || AES-256-GCM ciphertext), never shown.
    encrypted    boolean NOT NULL DEFAULT false,
    description  text,
    category     text NOT NULL DEFAULT 'general',
    updated_by   text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    id           bigserial PRIMARY KEY,
    provider     text NOT NULL CHECK (provider IN ('twilio', 'stripe', 'mpesa')),
    -- Provider's dedupe key: Stripe event id, Twilio MessageSid:MessageStatus, M-Pesa CheckoutRequestID.
    event_key    text,
    payload      text NOT NULL,
    accepted     boolean NOT NULL,
    rejection    text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    CHECK (accepted OR rejection IS NOT NULL)
);
CREATE UNIQUE INDEX webhook_events_dedupe ON webhook_events (provider, event_key) WHERE accepted;
