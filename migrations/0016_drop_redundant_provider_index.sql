-- messages_provider_open_idx (0009) indexed provider_id for `sending` and `sent` messages, but
-- every lookup by provider_id (delivery callbacks, the send job's adoption check, the status
-- report) names the provider_id alone, which the unique index on provider_id already serves.
-- The partial index only cost a write on every message marked `sent`.
DROP INDEX IF EXISTS messages_provider_open_idx;
