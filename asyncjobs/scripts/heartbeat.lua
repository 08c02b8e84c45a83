-- heartbeat: mark a worker alive on a queue until now + ttl (Redis clock), with what it tells
--   about itself, and declare its tasks' limits for as long; drop stale workers; fold the
--   minutes that ended into the hourly history.
-- ARGV[5] worker   ARGV[6] ttl_ms (0 = the worker leaves now)   ARGV[7] running (jobs it runs)
-- ARGV[8] about (a JSON object: host, pid, queues, concurrency, started_at...)
-- then, per task: task concurrency interval_ms max_tries (0 = the task sets none)
-- Returns: how many workers are alive on this queue.
-- Invariants: K.worker_info holds "<last seen ms> <running> <about>" for exactly the workers in
--   K.workers. A limit in `limits` (`<task>:<field>`) holds while some live worker declares it
--   (`<task>:<field>:until`); a worker whose task has no limit leaves it alone, so two
--   versions of a task side by side keep the stricter one, until the last worker declaring
--   it stops. (A limit without `:until` was written by an older release: it holds as is.)
--   Each minute bucket is added to K.hours ("<unix hour>:<outcome>" fields, plus `rolled`, the
--   last minute added) once, by whichever heartbeat first sees it ended; hours are kept
--   HOUR_KEEP hours.
workers_only()
local worker, ttl = ARGV[5], tonumber(ARGV[6])
if ttl > 0 then
  rcall('ZADD', K.workers, NOW + ttl, worker)
  rcall('HSET', K.worker_info, worker, NOW .. ' ' .. ARGV[7] .. ' ' .. ARGV[8])
else
  rcall('ZREM', K.workers, worker)
  rcall('HDEL', K.worker_info, worker)
end
local stale = rcall('ZRANGEBYSCORE', K.workers, '-inf', NOW)
for _, id in ipairs(stale) do
  rcall('ZREM', K.workers, id)
  rcall('HDEL', K.worker_info, id)
end

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
  local declared = rcall('HMGET', K.limits, name, name .. ':until')
  local held = tonumber(declared[1] or '')
  local live = held and (not declared[2] or tonumber(declared[2]) > NOW)
  if not live or STRICTER[field](value, held) then
    rcall('HSET', K.limits, name, value, name .. ':until', NOW + ttl)
  end
end
for i = LEADING + 5, #ARGV, 4 do
  declare(ARGV[i], 'concurrency', ARGV[i + 1])
  declare(ARGV[i], 'interval_ms', ARGV[i + 2])
  declare(ARGV[i], 'max_tries', ARGV[i + 3])
end

local HOUR_KEEP = 7 * 24
local current = math.floor(NOW / MINUTE_MS)
local rolled = tonumber(rcall('HGET', K.hours, 'rolled') or '0') or 0
if rolled < current - 1 then
  local first = math.max(rolled + 1, current - MINUTE_KEEP_MS / MINUTE_MS)
  local last = math.min(current - 1, first + 59)  -- a bounded step; the next beat goes on
  for m = first, last do
    local f = rcall('HGETALL', P.minute .. m)
    local hour = math.floor(m / 60)
    for i = 1, #f, 2 do rcall('HINCRBY', K.hours, hour .. ':' .. f[i], f[i + 1]) end
  end
  rcall('HSET', K.hours, 'rolled', last)
  if math.floor(last / 60) > math.floor(rolled / 60) then  -- a new hour: drop the oldest
    local oldest = math.floor(last / 60) - HOUR_KEEP
    local drop = {}
    for _, field in ipairs(rcall('HKEYS', K.hours)) do
      local hour = tonumber(string.match(field, '^(%d+):'))
      if hour and hour <= oldest then drop[#drop + 1] = field end
    end
    for i = 1, #drop, 1000 do
      rcall('HDEL', K.hours, unpack(drop, i, math.min(i + 999, #drop)))
    end
  end
  rcall('PEXPIRE', K.hours, HOUR_KEEP * 3600000)
end
return rcall('ZCARD', K.workers)
