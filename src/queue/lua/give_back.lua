-- On graceful shutdown: hand entries this consumer fetched but never started back to the
-- stream at once (a fresh copy, same fields), instead of waiting for their lease to expire.
-- KEYS: 1 stream.  ARGV: 1 group, 2 consumer, 3.. entry ids.  Returns how many were returned.
local group, me, returned = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == me then
    local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if #e == 1 then
      redis.call('XADD', KEYS[1], '*', unpack(e[1][2]))
    end
    redis.call('XACK', KEYS[1], group, ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    returned = returned + 1
  end
end
return returned
