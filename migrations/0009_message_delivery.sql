-- Delivery bookkeeping for the send job and the reconciler.
ALTER TABLE messages
    -- Segments Twilio billed beyond what we reserved (we charge the reservation, never more,
    -- and record the difference here for the operator).
    ADD COLUMN uncharged_credits bigint NOT NULL DEFAULT 0 CHECK (uncharged_credits >= 0),
    -- Set by the reconciler when a `sent` message never got a final callback in time.
    ADD COLUMN unconfirmed_at timestamptz;

CREATE INDEX messages_provider_open_idx ON messages (provider_id) WHERE status IN ('sending', 'sent');
