-- Send a dead letter back to the queue with a fresh attempt count. It takes its idempotency key
-- back if nothing else holds it (dead-lettering released it), so it is again the one live job of
-- that key; if another job took the key meanwhile, both run (every handler is idempotent).
-- KEYS: 1 dead stream, 2 stream, 3 its idempotency key (or any key of the queue when it has none)
-- ARGV: 1 dead entry id, 2 idempotency ttl_ms (0 = forever).  Returns the job id, or false.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then
  return false
end
local f, j = e[1][2], {}
for i = 1, #f, 2 do
  j[f[i]] = f[i + 1]
end
if j.idem ~= nil and j.idem ~= '' and j.idem == KEYS[3] then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call('SET', KEYS[3], j.id, 'NX', 'PX', ttl)
  else
    redis.call('SET', KEYS[3], j.id, 'NX')
  end
end
redis.call('XADD', KEYS[2], '*', 'id', j.id, 'args', j.args, 'attempt', '0', 'max', j.max, 'idem', j.idem, 'enq', j.enq)
redis.call('XDEL', KEYS[1], ARGV[1])
return j.id
