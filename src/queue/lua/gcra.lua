-- Generic cell rate algorithm: one key holds the theoretical arrival time (TAT) in ms.
-- KEYS: 1 limiter key.  ARGV: 1 emission interval ms (period / rate), 2 burst, 3 cost.
-- Returns {allowed (1/0), wait_ms}: when refused, how long until the cost would fit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, 0}
