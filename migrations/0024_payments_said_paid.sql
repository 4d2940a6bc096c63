-- When a provider's event first said a payment was paid (a Stripe `checkout.session.completed`
-- with `payment_status: paid`, or `async_payment_succeeded`). Its check is a queued job, and
-- Redis may lose it (a flush, a job dead-lettered while PostgreSQL was down) after Stripe has
-- stopped redelivering the event: an open payment with this set and quiet for a while is checked
-- by the reconciler, not only once its session has expired an hour later.
ALTER TABLE payments ADD COLUMN said_paid_at timestamptz;
CREATE INDEX payments_said_paid_open_idx ON payments (said_paid_at)
    WHERE said_paid_at IS NOT NULL AND status IN ('initiated', 'pending');
