-- KEYS: the breaker hash, the set of failing deliveries. ARGV: ok, delivery, threshold,
-- cool-off, now, error. Returns the new state when it changed, else false.
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[5])
if ARGV[1] == '1' then
  if state == 'closed' and redis.call('EXISTS', KEYS[2]) == 0 then return false end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'opened_at', 'first_opened_at', 'open_until', 'probe_until')
  if state == 'closed' then return false end
  return 'closed'
end
redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
if state == 'open' then return false end
if state == 'closed' then
  redis.call('SADD', KEYS[2], ARGV[2])
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[3]) then return false end
end
if state == 'closed' or redis.call('HEXISTS', KEYS[1], 'first_opened_at') == 0 then
  redis.call('HSET', KEYS[1], 'first_opened_at', tostring(now))
end
redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now),
           'open_until', tostring(now + tonumber(ARGV[4])))
redis.call('HDEL', KEYS[1], 'probe_until')
return 'open'
