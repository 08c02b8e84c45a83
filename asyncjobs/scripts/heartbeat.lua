-- heartbeat: mark a worker alive on a queue until now + ttl (Redis clock), drop stale ones.
-- KEYS[1] workers
-- ARGV[1] worker id   ARGV[2] ttl ms (0 = the worker leaves now)
-- Returns: how many workers are alive on this queue.
local now = now_ms()
if tonumber(ARGV[2]) > 0 then
  rcall('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  rcall('ZREM', KEYS[1], ARGV[1])
end
rcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return rcall('ZCARD', KEYS[1])
