-- Delivery reports that came before their message could take them wait in the inbox until the
-- reconciler applies them. Each now names its subject (the provider's message id), so the
-- reconciler reads only those whose message is there now: reports naming nothing of ours (another
-- deployment sharing the provider account, a message long gone) no longer fill its page and hide
-- the ones that can be applied; once a sent message would be marked unconfirmed for want of a
-- report (72 h), they are set aside as processed.
-- Reports stored before this migration have no subject and are read as before.
ALTER TABLE webhook_events ADD COLUMN subject text;
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (provider, id)
    WHERE accepted AND processed_at IS NULL;
