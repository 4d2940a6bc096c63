-- Takes `cost` from a GCRA budget (`gcra_take.lua`, which precedes this text).
-- KEYS: 1 limiter key.  ARGV: 1 emission interval ms (period / rate), 2 burst, 3 cost.
-- Returns {allowed (1/0), wait_ms}.
return gcra_take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), redis_ms())
