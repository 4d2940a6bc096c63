-- CPU per message (issue 17): a message's provider id is unknown until the provider answers, but
-- the unique index on provider_id (0003) held an entry for every row version, NULL or not: one at
-- the insert and one at the claim's update (which cannot be HOT: it changes indexed columns). The
-- index now holds only known ids. Every lookup by provider id names an id (`provider_id = ...`),
-- which implies IS NOT NULL, so the planner still uses it; no ON CONFLICT names it, so the
-- previous release's processes run unchanged against it. The build takes a write lock on
-- `messages` for its duration (about a second per million messages).
CREATE UNIQUE INDEX messages_provider_id_known ON messages (provider_id) WHERE provider_id IS NOT NULL;
ALTER TABLE messages DROP CONSTRAINT messages_provider_id_key;
