-- Vodacom Tanzania M-Pesa (issue 18): its asynchronous payment results are webhooks too, stored
-- in the inbox like the others (accepted ones deduplicated, rejected ones kept for a while).
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_provider_check;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_provider_check
    CHECK (provider IN ('twilio', 'stripe', 'mpesa', 'vodacom'));
