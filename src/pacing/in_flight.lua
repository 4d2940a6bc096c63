-- A fleet-wide cap on requests in flight to one provider account: leases with an expiry, so a
-- worker that dies mid-request frees its lease when the request could no longer be running.
-- KEYS: 1 leases (zset, score = expiry ms).
-- ARGV: 1 lease id, 2 cap, 3 lease ms, 4 now ms ('' = Redis TIME).
-- Returns {1, 0} when the lease is held (taken or renewed), else {0, ms until the earliest
-- lease expires}.
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  local expiry = now + tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], expiry, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, math.ceil(tonumber(first[2]) - now))}
