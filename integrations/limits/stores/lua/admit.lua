-- KEYS: the breaker hash and its set of failing deliveries, then per quota its log (sorted set
-- of send times) and its meta hash (cooldown, customer slots). ARGV: now, customer field,
-- member prefix, probe lease, count, horizon, then rate, window and step per quota.
-- Returns {verdict, wait, granted}: verdict 'rate' or 'breaker' (wait), else 'clean', 'go' or
-- 'probe'.
local now = tonumber(ARGV[1])
local customer = ARGV[2]
local member = ARGV[3]
local lease = tonumber(ARGV[4])
local granted = tonumber(ARGV[5])
local horizon = tonumber(ARGV[6])
local n = (#KEYS - 2) / 2
local free = now
for i = 1, n do
  local log, meta = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local rate, window = tonumber(ARGV[4 + 3 * i]), tonumber(ARGV[5 + 3 * i])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local cool = tonumber(redis.call('HGET', meta, 'cooldown') or '0')
  if cool > free then free = cool end
  local count = redis.call('ZCARD', log)
  if count >= rate then
    local entry = redis.call('ZRANGE', log, count - rate, count - rate, 'WITHSCORES')
    local t = tonumber(entry[2]) + window
    if t > free then free = t end
  elseif rate - count < granted then
    granted = rate - count
  end
end
if free > now then
  local slot = free
  for i = 1, n do
    local s = tonumber(redis.call('HGET', KEYS[2 + 2 * i], customer) or '0')
    if s > slot then slot = s end
  end
  for i = 1, n do
    local meta = KEYS[2 + 2 * i]
    local window, step = tonumber(ARGV[5 + 3 * i]), tonumber(ARGV[6 + 3 * i])
    redis.call('HSET', meta, customer, tostring(slot + step))
    local ttl = math.ceil((slot + step - now + window) * 1000)
    if redis.call('PTTL', meta) < ttl then redis.call('PEXPIRE', meta, ttl) end
  end
  return {'rate', tostring(slot - now), 0}
end
local verdict = 'clean'
local st = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = st[1] or 'closed'
if state == 'closed' then
  if redis.call('EXISTS', KEYS[2]) == 1 then verdict = 'go' end
else
  local until_at = tonumber(state == 'open' and st[2] or st[3])
  if now < until_at then return {'breaker', tostring(until_at - now), 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + lease))
  verdict = 'probe'
  granted = 1
end
local stamp = now
if granted > 1 then stamp = now + horizon end
for i = 1, n do
  local window = tonumber(ARGV[5 + 3 * i])
  for g = 1, granted do
    redis.call('ZADD', KEYS[1 + 2 * i], stamp, member .. ':' .. g)
  end
  redis.call('PEXPIRE', KEYS[1 + 2 * i], math.ceil((window + stamp - now) * 1000) + 1000)
end
return {verdict, '0', granted}
