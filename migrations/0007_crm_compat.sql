-- Names the CRM's existing screens read (DESIGN.md section 3), as read-only views over our tables.
-- Credits move only through the service: there is deliberately no add/deduct function here.

CREATE VIEW company_sms_balance AS
SELECT b.company_id,
       b.available AS balance,
       b.reserved,
       b.total_sent AS total_sms_sent,
       COALESCE((SELECT sum(p.amount) FROM payments p
                 WHERE p.company_id = b.company_id AND p.status = 'credited'), 0) AS total_spent,
       b.updated_at
FROM balances b;

CREATE VIEW sms_transactions AS
SELECT e.id,
       e.company_id,
       e.kind AS transaction_type,
       e.available_delta AS amount,
       e.reserved_delta,
       COALESCE(e.payment_id, e.message_id) AS reference_id,
       e.reason AS description,
       e.actor AS created_by,
       e.created_at
FROM ledger_entries e;

CREATE VIEW sms_logs AS
SELECT m.id,
       m.company_id,
       m.to_number AS phone_number,
       m.body AS message_body,
       m.status,
       m.provider,
       m.provider_id AS message_id,
       m.error_message,
       m.debt_id,
       m.invoice_number,
       m.sender AS sent_by,
       m.segments,
       m.credits,
       m.created_at
FROM messages m;

CREATE FUNCTION get_company_sms_balance(p_company_id uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT available FROM balances WHERE company_id = p_company_id), 0)
$$;
