-- Fair, paced turns at one provider sender: start-time fair queueing over paced slots.
--
-- Every message that may be sent now (its company's quota allowed it) holds a ticket. A ticket
-- waits in KEYS[2] under its start tag: max(the virtual time, its company's finish tag), so a
-- company's tickets queue behind each other, but a company that joins late starts at the current
-- virtual time, beside (not behind) a busy company's backlog. Tickets are handed slots in tag
-- order, each `cost` intervals after the last, only up to `horizon` ahead of now: nobody books the
-- sender far ahead, so a late joiner waits about (companies waiting) intervals plus a horizon.
--
-- KEYS: 1 state hash (next = the next free slot time, v = the virtual time, f:<company> = finish
--       tags), 2 waiting tickets (zset, score = start tag), 3 handed slots (zset, score = slot ms),
--       4 the company's hourly quota (a GCRA budget, `gcra_take.lua`, which precedes this text).
-- ARGV: 1 ticket ("<message id>:<cost>"; ids are time-ordered, so equal tags go in arrival order),
--       2 company, 3 cost (segments), 4 interval ms (may be fractional), 5 horizon ms, 6 how late
--       after its slot a run may still take it (ms), 7 the quota's emission interval ms,
--       8 now ms ('' = Redis TIME), 9 ttl ms of the keys, 10 the quota's burst.
-- Returns {1, ms}: its slot starts in ms (negative: it started that long ago, at most the grace).
-- {0, ms}: not yet, ask again in ms. {3, ms}: no ticket, and its company's quota allows none for
-- ms; it took no ticket. A send without a ticket takes one from its company's quota
-- as it joins, in this same step: a run that comes back for its slot was counted when it joined.
-- (The quota's clock is always Redis's: tests pass their own only for the schedule.)
local now
if ARGV[8] ~= '' then
  now = tonumber(ARGV[8])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ticket, company, cost = ARGV[1], ARGV[2], tonumber(ARGV[3])
local interval, horizon, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

-- Slots long gone are forgotten (a run that comes back after this joins anew).
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)

local slot = redis.call('ZSCORE', KEYS[3], ticket)
if slot and tonumber(slot) >= now - grace then
  return {1, math.ceil(tonumber(slot) - now)}
elseif slot then
  -- Its slot went by unused (the run came back late, or it is a retry after an attempt that did
  -- not reach the provider): it had its turn, so it waits at the head, not behind its company.
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZADD', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'v') or 0), ticket)
elseif not redis.call('ZSCORE', KEYS[2], ticket) then
  local quota = gcra_take(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[10]), 1)
  if quota[1] == 0 then
    return {3, quota[2]}
  end
  local v = tonumber(redis.call('HGET', KEYS[1], 'v') or 0)
  local f = tonumber(redis.call('HGET', KEYS[1], 'f:' .. company) or 0)
  local start = math.max(v, f)
  redis.call('HSET', KEYS[1], 'f:' .. company, start + cost)
  redis.call('ZADD', KEYS[2], start, ticket)
end

-- Hand out the slots within the horizon, in tag order.
local next = math.max(tonumber(redis.call('HGET', KEYS[1], 'next') or 0), now)
local handed = 0
while next <= now + horizon and handed < 1000 do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #head == 0 then
    break
  end
  redis.call('ZREM', KEYS[2], head[1])
  redis.call('ZADD', KEYS[3], next, head[1])
  redis.call('HSET', KEYS[1], 'v', head[2])
  next = next + interval * (tonumber(string.match(head[1], ':(%d+)$')) or 1)
  handed = handed + 1
end
redis.call('HSET', KEYS[1], 'next', next)

-- Finish tags at or below the virtual time say nothing more than the virtual time does.
if redis.call('HLEN', KEYS[1]) > 10000 then
  local v = tonumber(redis.call('HGET', KEYS[1], 'v') or 0)
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'f:' and tonumber(fields[i + 1]) <= v then
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
end
-- The schedule's own keys (the quota's keeps the expiry its budget gave it).
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ARGV[9])
end

slot = redis.call('ZSCORE', KEYS[3], ticket)
if slot then
  return {1, math.ceil(tonumber(slot) - now)}
end
-- Its slot is at least this far off (each ticket ahead takes an interval or more); it comes back
-- half a horizon before, to be handed the slot and wait for it in the worker.
local eta = (next - now) + redis.call('ZRANK', KEYS[2], ticket) * interval
return {0, math.max(1, math.floor(eta - horizon / 2))}
