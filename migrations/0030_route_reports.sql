-- SMS routes (issue 19): the delivery reports of Beem and Africa's Talking are webhooks too,
-- stored in the inbox like the others (accepted ones deduplicated, rejected ones kept for a
-- while). Replacing the CHECK reads webhook_events once (NOT VALID is not used: the table is
-- small next to messages, and every existing row satisfies the wider check).
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_provider_check;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_provider_check
    CHECK (provider IN ('twilio', 'stripe', 'mpesa', 'vodacom', 'beem', 'africastalking'));
