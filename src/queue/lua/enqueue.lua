-- Enqueue jobs, deduplicating by idempotency key, in one atomic step.
-- KEYS: 1 stream, 2 delayed zset, 3 delayed data hash, 4.. idempotency keys (one per keyed job)
-- ARGV: 1 now_ms, 2 idempotency ttl_ms (0 = forever), 3 n, then per job:
--       id, args, max_attempts, idem_slot (index into KEYS, 0 = no key), run_at_ms, enqueued_ms
-- Returns per job: 1 and its id when enqueued; 0 and the id of the job already holding the key.
local now, ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local b = 4 + i * 6
  local id, args, max = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local slot, run_at, enq = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5]
  local fresh, idem = 1, ''
  if slot > 0 then
    idem = KEYS[slot]
    local existing = redis.call('GET', idem)
    if existing then
      fresh, id = 0, existing
    elseif ttl > 0 then
      redis.call('SET', idem, id, 'PX', ttl)
    else
      redis.call('SET', idem, id)
    end
  end
  if fresh == 1 then
    if run_at > now then
      redis.call('ZADD', KEYS[2], run_at, id)
      redis.call('HSET', KEYS[3], id,
        cjson.encode({id = id, args = args, attempt = '0', max = max, idem = idem, enq = enq}))
    else
      redis.call('XADD', KEYS[1], '*', 'id', id, 'args', args, 'attempt', '0', 'max', max, 'idem', idem, 'enq', enq)
    end
  end
  out[#out + 1] = fresh
  out[#out + 1] = id
end
return out
