-- Send a dead letter back to the queue with a fresh attempt count.
-- KEYS: 1 dead stream, 2 stream.  ARGV: 1 dead entry id.  Returns the job id, or false.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then
  return false
end
local f, j = e[1][2], {}
for i = 1, #f, 2 do
  j[f[i]] = f[i + 1]
end
redis.call('XADD', KEYS[2], '*', 'id', j.id, 'args', j.args, 'attempt', '0', 'max', j.max, 'idem', j.idem, 'enq', j.enq)
redis.call('XDEL', KEYS[1], ARGV[1])
return j.id
