-- Queue depth over time, for the status page's chart (GET /admin). The queues live in Redis and
-- only know their depth now, so `schedule` samples every queue once a minute into this table
-- and prunes samples older than a day. A sample is keyed by its minute: two schedulers (or a
-- restart within the minute) overwrite one row instead of doubling it.

CREATE TABLE queue_samples (
    taken_at   timestamptz NOT NULL CHECK (taken_at = date_trunc('minute', taken_at)),
    queue      text NOT NULL,
    ready      bigint NOT NULL CHECK (ready >= 0),
    in_flight  bigint NOT NULL CHECK (in_flight >= 0),
    delayed    bigint NOT NULL CHECK (delayed >= 0),
    dead       bigint NOT NULL CHECK (dead >= 0),
    PRIMARY KEY (taken_at, queue)
);

-- The status page's other two reads: send attempts per minute over the last hour, and the
-- latest failed or undelivered messages.
CREATE INDEX messages_send_started_idx ON messages (send_attempt_started_at)
    WHERE send_attempt_started_at IS NOT NULL;
CREATE INDEX messages_failures_idx ON messages (updated_at DESC)
    WHERE status IN ('failed', 'undelivered');
