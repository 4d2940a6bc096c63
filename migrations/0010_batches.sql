-- Reminder batches: many messages accepted in one request.
CREATE TABLE message_batches (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL REFERENCES companies (id),
    total            integer NOT NULL CHECK (total >= 0),
    accepted         integer NOT NULL CHECK (accepted >= 0 AND accepted <= total),
    -- The per-item refusals of the request, by index, as answered.
    rejected         jsonb NOT NULL DEFAULT '[]',
    allow_partial    boolean NOT NULL DEFAULT false,
    created_by       text NOT NULL,
    idempotency_key  text,
    request_hash     bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, idempotency_key)
);

ALTER TABLE messages ADD CONSTRAINT messages_batch_fk FOREIGN KEY (batch_id) REFERENCES message_batches (id);
