-- SMS routes (issue 19): the delivery reports of Beem and Africa's Talking are webhooks too,
-- stored in the inbox like the others (accepted ones deduplicated, rejected ones kept for a
-- while). The wider CHECK is added NOT VALID: every existing row satisfies it (it only admits
-- more), and validating would read the whole inbox (accepted events are kept) while holding
-- every webhook's insert off.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_provider_check;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_provider_check
    CHECK (provider IN ('twilio', 'stripe', 'mpesa', 'vodacom', 'beem', 'africastalking')) NOT VALID;
