-- Give back `cost` to a GCRA budget taken moments ago (a later limit in the same check refused).
-- KEYS: 1 limiter key.  ARGV: 1 emission interval ms, 2 cost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local back = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])
if back > now then
  redis.call('SET', KEYS[1], back, 'PX', math.max(1, back - now))
else
  redis.call('DEL', KEYS[1])
end
return 1
