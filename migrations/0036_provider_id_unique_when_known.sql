-- CPU per message (issue 17): a message's provider id is unknown until the provider answers, but
-- the unique index on provider_id (0003) held an entry for every row version, NULL or not: one at
-- the insert and one at the claim's update (which cannot be HOT: it changes indexed columns). The
-- index now holds only known ids. Every lookup by provider id names an id (`provider_id = ...`),
-- which implies IS NOT NULL, so the planner still uses it; no ON CONFLICT names it, so the
-- previous release's processes run unchanged against it.
--
-- The constraint is dropped first: that takes the table's exclusive lock before anything else,
-- so the build cannot deadlock with a send step that locked message rows and then waits to
-- update them (building first would hold a share lock that such a step waits behind, then ask
-- for the exclusive lock that step's row locks hold off). Reads and writes of `messages` wait
-- for the build, about a second per million messages; a send step that waits past its 10 s
-- lock_timeout is retried. Nobody sees the table without the index: the migration is one
-- transaction.
ALTER TABLE messages DROP CONSTRAINT messages_provider_id_key;
CREATE UNIQUE INDEX messages_provider_id_known ON messages (provider_id) WHERE provider_id IS NOT NULL;
