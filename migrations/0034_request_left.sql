-- Beem and Africa's Talking cannot be asked what became of a send, so a send whose run died
-- after its claim was held for good, even when its request never left (the run was waiting for
-- its slot, say). Their sends now record, just before the request leaves, which attempt left
-- (`request_left_attempt`, compared with `send_attempt_id`): an attempt that never left is sent
-- again safely, and a run whose attempt another run took over cannot record it, so it sends
-- nothing. Twilio's sends do not write it (Twilio's list says what it has).
ALTER TABLE messages ADD COLUMN request_left_attempt uuid;
-- Attempts in flight now were made before the record existed: they count as having left.
UPDATE messages SET request_left_attempt = send_attempt_id WHERE status = 'sending';
