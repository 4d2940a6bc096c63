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
-- Each Redis call inside a script costs about as much as the command itself, so the state is
-- read with one HMGET and written with one HSET, and the loop pops with ZPOPMIN.
local clock = ARGV[8] ~= '' and tonumber(ARGV[8]) or nil
local now = clock or redis_ms()
local ticket, company, cost = ARGV[1], ARGV[2], tonumber(ARGV[3])
local interval, horizon, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local finish = 'f:' .. company

-- Slots long gone are forgotten (a run that comes back after this joins anew).
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)

local slot = redis.call('ZSCORE', KEYS[3], ticket)
if slot and tonumber(slot) >= now - grace then
  return {1, math.ceil(tonumber(slot) - now)}
end
local state = redis.call('HMGET', KEYS[1], 'v', 'next', finish)
local v = tonumber(state[1] or 0)
local written = {}
local joined = false
if slot then
  -- Its slot went by unused (the run came back late, or it is a retry after an attempt that did
  -- not reach the provider): it had its turn, so it waits at the head, not behind its company.
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZADD', KEYS[2], v, ticket)
elseif not redis.call('ZSCORE', KEYS[2], ticket) then
  local quota = gcra_take(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[10]), 1, clock and redis_ms() or now)
  if quota[1] == 0 then
    return {3, quota[2]}
  end
  local start = math.max(v, tonumber(state[3] or 0))
  written[#written + 1] = finish
  written[#written + 1] = start + cost
  redis.call('ZADD', KEYS[2], start, ticket)
  joined = true
end

-- Hand out the slots within the horizon, in tag order.
local next = math.max(tonumber(state[2] or 0), now)
local handed, tag = 0, nil
slot = nil
while next <= now + horizon and handed < 1000 do
  local head = redis.call('ZPOPMIN', KEYS[2])
  if #head == 0 then
    break
  end
  redis.call('ZADD', KEYS[3], next, head[1])
  if head[1] == ticket then
    slot = next
  end
  tag = head[2]
  next = next + interval * (tonumber(string.match(head[1], ':(%d+)$')) or 1)
  handed = handed + 1
end
if tag then
  -- The virtual time, as Redis wrote the tag (a Lua number would go back with 14 digits).
  written[#written + 1] = 'v'
  written[#written + 1] = tag
  v = tonumber(tag)
end
redis.call('HSET', KEYS[1], 'next', next, unpack(written))

-- Finish tags at or below the virtual time say nothing more than the virtual time does. Only a
-- send that joins adds a tag, so only it looks.
if joined and redis.call('HLEN', KEYS[1]) > 10000 then
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

-- The ticket is among the handed slots only if this step handed it one: a slot it held before
-- either answered above or went back to the waiting tickets.
if slot then
  return {1, math.ceil(slot - now)}
end
-- Its slot is at least this far off (each ticket ahead takes an interval or more); it comes back
-- half a horizon before, to be handed the slot and wait for it in the worker.
local eta = (next - now) + redis.call('ZRANK', KEYS[2], ticket) * interval
return {0, math.max(1, math.floor(eta - horizon / 2))}
