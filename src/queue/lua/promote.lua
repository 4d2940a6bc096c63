-- Move due delayed jobs into the stream, at most ARGV[2] per call so one call stays short
-- whatever the backlog (apalis-redis 1.0.0 unpacked them all and broke past ~8,000).
-- KEYS: 1 delayed zset, 2 delayed data hash, 3 stream.  ARGV: 1 now_ms, 2 limit.
-- Returns {moved, score of the next delayed job or -1}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    local j = cjson.decode(raw)
    redis.call('XADD', KEYS[3], '*', 'id', j.id, 'args', j.args, 'attempt', j.attempt, 'max', j.max,
      'idem', j.idem, 'enq', j.enq)
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#ids, tonumber(nxt[2] or -1)}
