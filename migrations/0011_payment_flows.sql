-- What the purchase flows (M-Pesa, Stripe, bank transfer) need beyond the payments table.

-- The last provider callback or event seen for a payment: a hint, never proof. VerifyPurchase
-- confirms it with the provider (STK Push Query, a re-read Checkout Session) before crediting.
ALTER TABLE payments
    ADD COLUMN callback_result_code  integer,
    ADD COLUMN callback_result_desc  text,
    ADD COLUMN callback_amount       numeric(14, 2),
    ADD COLUMN callback_receipt      text,
    ADD COLUMN callback_at           timestamptz,
    -- Stripe's PaymentIntent, how `charge.refunded` finds its payment.
    ADD COLUMN payment_intent        text UNIQUE,
    -- Something for the operator to look at (amount mismatch, refund shortfall); never cleared.
    ADD COLUMN flagged_reason        text,
    -- After this an open payment is settled by the sweep (queried, or expired).
    ADD COLUMN expires_at            timestamptz,
    -- Who approved or rejected a bank transfer, and the bank's reference for the money.
    ADD COLUMN bank_reference        text;

CREATE INDEX payments_flagged_idx ON payments (updated_at) WHERE flagged_reason IS NOT NULL;

-- A Stripe refund may come in several parts (each `charge.refunded` carries the cumulative
-- amount), so a payment may have several reversal entries. Idempotency comes from the payment
-- row instead: `credits_reversed + reversal_shortfall` only ever grows to the target the
-- cumulative refunded amount implies, computed under the payment's row lock.
DROP INDEX ledger_one_reversal_per_payment;
