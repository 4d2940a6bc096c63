-- Remove consumers that hold nothing (dead workers' names), so the group does not grow
-- with every deploy. A consumer that took an entry since it was listed is kept.
-- KEYS: 1 stream.  ARGV: 1 group, 2.. consumer names.  Returns how many were removed.
local removed = 0
for i = 2, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[i])
  if #p == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
