-- heartbeat: mark a worker alive on a queue until now + ttl (Redis clock), drop stale ones,
-- and declare its tasks and their limits for as long.
-- ARGV[4] worker   ARGV[5] ttl_ms (0 = the worker leaves now)
-- then, per task: task concurrency interval_ms max_tries (0 = the task sets none)
-- Returns: how many workers are alive on this queue.
-- Invariant: a limit in `limits` (`<task>:<field>`) holds while some live worker declares it
--   (`<task>:<field>:until`); a worker whose task has no limit leaves it alone, so two
--   versions of a task side by side keep the stricter one, until the last worker declaring
--   it stops. (A limit without `:until` was written by an older release: it holds as is.)
--   `<task>:served:until` says until when some live worker of the queue knows the task.
workers_only()
local worker, ttl = ARGV[4], tonumber(ARGV[5])
if ttl > 0 then
  rcall('ZADD', K.workers, NOW + ttl, worker)
else
  rcall('ZREM', K.workers, worker)
end
rcall('ZREMRANGEBYSCORE', K.workers, '-inf', NOW)

-- stricter(new, current): whether `new` should replace a live `current`
local STRICTER = {
  concurrency = function(new, current) return new <= current end,
  interval_ms = function(new, current) return new >= current end,
  max_tries = function(new, current) return true end,
}
local function declare(task, field, value)
  value = tonumber(value)
  if ttl <= 0 or not value or value <= 0 then return end
  local name = task .. ':' .. field
  local current = rcall('HMGET', K.limits, name, name .. ':until')
  local held = tonumber(current[1] or '')
  local live = held and (not current[2] or tonumber(current[2]) > NOW)
  if not live or STRICTER[field](value, held) then
    rcall('HSET', K.limits, name, value, name .. ':until', NOW + ttl)
  end
end
-- the latest deadline of any worker knowing the task
local function serve(task)
  local field = task .. ':served:until'
  if ttl > 0 and (tonumber(rcall('HGET', K.limits, field) or '0') or 0) < NOW + ttl then
    rcall('HSET', K.limits, field, NOW + ttl)
  end
end
for i = LEADING + 3, #ARGV, 4 do
  serve(ARGV[i])
  declare(ARGV[i], 'concurrency', ARGV[i + 1])
  declare(ARGV[i], 'interval_ms', ARGV[i + 2])
  declare(ARGV[i], 'max_tries', ARGV[i + 3])
end
return rcall('ZCARD', K.workers)
