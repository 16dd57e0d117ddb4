-- An operator's hand on a breaker. KEYS: the breaker hash, the set of failing deliveries.
-- ARGV: 'close' or 'probe', now. Returns the state before.
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == 'close' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'opened_at', 'first_opened_at', 'open_until', 'probe_until')
elseif state ~= 'closed' then
  -- The cool-off ends now: the next send becomes the probe.
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', ARGV[2])
  redis.call('HDEL', KEYS[1], 'probe_until')
end
return state
