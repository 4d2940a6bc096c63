-- Take over entries whose consumer has not renewed them for ARGV[3] ms (it died), with how
-- many times each has now been delivered, so a job that keeps killing workers can be dead-lettered.
-- KEYS: 1 stream.  ARGV: 1 group, 2 consumer, 3 min_idle_ms, 4 count.
-- Returns a flat list: entry_id, deliveries, field, value, field, value, ..., '' separator.
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', tonumber(ARGV[4]))
local out = {}
for _, e in ipairs(claimed[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  out[#out + 1] = e[1]
  out[#out + 1] = (p[1] and p[1][4]) or 1
  for _, v in ipairs(e[2]) do
    out[#out + 1] = v
  end
  out[#out + 1] = ''
end
return out
