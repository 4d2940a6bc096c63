-- Renew the lease of entries this consumer is still running (resets their idle time), so a
-- long job is not taken over. Entries now owned by another consumer are skipped.
-- KEYS: 1 stream.  ARGV: 1 group, 2 consumer, 3.. entry ids.  Returns how many were renewed.
local group, me, renewed = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == me then
    redis.call('XCLAIM', KEYS[1], group, me, 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
