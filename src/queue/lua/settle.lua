-- Settle finished entries of one consumer: ack and delete each, and either drop it (done),
-- schedule it again (retry or snooze, with its next run time kept in Redis) or dead-letter it.
-- A dead-lettered job gives up its idempotency key if the key still names it: the key stops
-- duplicates of a live job, and a dead job is not live, so the reconciler's next enqueue of the
-- same work must go through (PostgreSQL still says it is not done). A finished job keeps its
-- key: it guards producers that must not repeat done work (a sweep run, a duplicate callback).
-- An entry whose lease this consumer lost (another consumer claimed it) is left alone.
-- KEYS: 1 stream, 2 delayed zset, 3 delayed data hash, 4 dead stream, 5.. idempotency keys
-- ARGV: 1 group, 2 consumer, 3 n, then per entry:
--       entry_id, action (done|later|dead), job_json, at_ms, idem_slot (index into KEYS, 0 = none)
-- Returns per entry: 1 settled, 0 lease lost.
local group, me, n = ARGV[1], ARGV[2], tonumber(ARGV[3])

-- Which of the entries this consumer still holds: one XPENDING over their range of ids (its
-- own pending entries only), one XACK and one XDEL for all of them, instead of three calls
-- per entry.
local function id_before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local lo, hi
for i = 0, n - 1 do
  local entry = ARGV[4 + i * 5]
  if not lo or id_before(entry, lo) then lo = entry end
  if not hi or id_before(hi, entry) then hi = entry end
end
local mine, owned = {}, {}
if n > 0 then
  -- The count only bounds the answer: a consumer holds at most its prefetch and concurrency.
  for _, p in ipairs(redis.call('XPENDING', KEYS[1], group, lo, hi, 1000000, me)) do
    mine[p[1]] = true
  end
  for i = 0, n - 1 do
    local entry = ARGV[4 + i * 5]
    if mine[entry] then owned[#owned + 1] = entry end
  end
end
if #owned > 0 then
  redis.call('XACK', KEYS[1], group, unpack(owned))
  redis.call('XDEL', KEYS[1], unpack(owned))
end

local out = {}
for i = 0, n - 1 do
  local b = 4 + i * 5
  local entry, action, job, at, slot = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4])
  if mine[entry] then
    -- An entry given twice is settled once.
    mine[entry] = nil
    if action == 'later' then
      local j = cjson.decode(job)
      redis.call('ZADD', KEYS[2], tonumber(at), j.id)
      redis.call('HSET', KEYS[3], j.id, job)
    elseif action == 'dead' then
      local j = cjson.decode(job)
      redis.call('XADD', KEYS[4], '*', 'id', j.id, 'args', j.args, 'attempt', j.attempt, 'max', j.max,
        'idem', j.idem, 'enq', j.enq, 'error', j.error, 'failed_at', at)
      if slot > 0 and redis.call('GET', KEYS[slot]) == j.id then
        redis.call('DEL', KEYS[slot])
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
