-- A rejected webhook keeps only the start of its body (see src/inbox.rs), with the whole body's
-- length and SHA-256 so it can still be recognised; rejected rows are deleted after a retention
-- period, oldest first, through the partial index.

ALTER TABLE webhook_events
    ADD COLUMN payload_bytes  integer,
    ADD COLUMN payload_sha256 text;

-- Rejections stored before this migration, capped alike: their first 2048 characters (the stored
-- text is all that is left of their bodies, so the length and digest are of that text).
UPDATE webhook_events
   SET payload_bytes = octet_length(payload),
       payload_sha256 = encode(sha256(convert_to(payload, 'UTF8')), 'hex'),
       payload = left(payload, 2048)
 WHERE NOT accepted AND octet_length(payload) > 2048;

CREATE INDEX webhook_events_rejected_received_idx ON webhook_events (received_at) WHERE NOT accepted;
