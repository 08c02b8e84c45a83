-- heartbeat: mark a worker alive on a queue until now + ttl (Redis clock), drop stale ones.
-- ARGV[4] worker   ARGV[5] ttl_ms (0 = the worker leaves now)
-- Returns: how many workers are alive on this queue.
if tonumber(ARGV[5]) > 0 then
  rcall('ZADD', K.workers, NOW + tonumber(ARGV[5]), ARGV[4])
else
  rcall('ZREM', K.workers, ARGV[4])
end
rcall('ZREMRANGEBYSCORE', K.workers, '-inf', NOW)
return rcall('ZCARD', K.workers)
