-- A route's circuit, fleet-wide. Closed: sends go. Open (until `open_until`): the route is
-- skipped. Past `open_until` it is half-open: one send (the probe) may go, and its outcome
-- closes or reopens it; the others keep skipping it until the probe's window ends.
-- KEYS: 1 the circuit (hash: failures, open_until, probe_until, reason).
-- ARGV: 1 event: 'ask' (may a send go? takes the probe when half-open), 'look' (no change),
--       'ok' (closes it, unless it is still open), 'transient', 'configuration';
--       2 failures to open; 3 open ms after transient failures; 4 open ms after a configuration error; 5 probe window ms; 6 reason;
--       7 now ms ('' = Redis TIME).
-- Returns {state, failures, open_until, reason}: state 0 closed, 1 open, 2 half-open (this caller
-- holds the probe, for 'ask').
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
local event = ARGV[1]
local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
local open_until = tonumber(redis.call('HGET', key, 'open_until') or '0')
local probe_until = tonumber(redis.call('HGET', key, 'probe_until') or '0')
local reason = redis.call('HGET', key, 'reason') or ''
-- Kept a day past its last change: an idle route's history does not matter after that.
local keep = 86400000

-- Opens it for `ms` from now, unless it is already open for longer (a configuration error's
-- window and reason are not cut short by the transient failures of sends still in flight).
local function open(ms)
  local till = now + ms
  if till > open_until then
    open_until = till
    reason = ARGV[6]
  end
  redis.call('HSET', key, 'failures', failures, 'open_until', open_until, 'probe_until', 0,
             'reason', reason)
  redis.call('PEXPIRE', key, open_until - now + keep)
  return {1, failures, open_until, reason}
end

if event == 'ok' then
  -- A send that began before the circuit opened may still answer while it is open: that says
  -- nothing about the route now. Once the open time is over (the probe's answer), it closes.
  if open_until > 0 and now < open_until then
    return {1, failures, open_until, reason}
  end
  redis.call('DEL', key)
  return {0, 0, 0, ''}
elseif event == 'transient' then
  failures = failures + 1
  -- A failed probe, or enough failures in a row, opens it.
  if open_until > 0 or failures >= tonumber(ARGV[2]) then
    return open(tonumber(ARGV[3]))
  end
  redis.call('HSET', key, 'failures', failures, 'reason', ARGV[6])
  redis.call('PEXPIRE', key, keep)
  return {0, failures, 0, ARGV[6]}
elseif event == 'configuration' then
  return open(tonumber(ARGV[4]))
end

if open_until == 0 then
  return {0, failures, 0, reason}
end
if now < open_until or now < probe_until then
  return {1, failures, open_until, reason}
end
if event == 'ask' then
  redis.call('HSET', key, 'probe_until', now + tonumber(ARGV[5]))
  return {2, failures, open_until, reason}
end
return {2, failures, open_until, reason}
