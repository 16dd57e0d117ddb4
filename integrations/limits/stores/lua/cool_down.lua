local until_at = tonumber(ARGV[1])
local ttl = math.ceil((until_at - tonumber(ARGV[2])) * 1000) + 1000
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'cooldown') or '0') < until_at then
    redis.call('HSET', KEYS[i], 'cooldown', tostring(until_at))
  end
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
