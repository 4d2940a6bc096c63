-- Generic cell rate algorithm, shared by the scripts that take from a budget (`gcra.lua`, and the
-- sender's schedule, `pacing/fair.lua`, which takes a company's quota as its send joins). One key
-- holds the theoretical arrival time (TAT) in ms; time is Redis's (`redis_ms`).

-- Redis's clock in ms.
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Takes `cost` at Redis time `now` (ms). Returns {allowed (1/0), wait_ms}: when refused, how
-- long until the cost would fit.
local function gcra_take(key, interval, burst, cost, now)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - interval * burst
  if allow_at > now then
    return {0, allow_at - now}
  end
  redis.call('SET', key, new_tat, 'PX', math.max(1, new_tat - now))
  return {1, 0}
end

