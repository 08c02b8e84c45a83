-- stats: one consistent snapshot of a queue, for info, metrics, stats() and dashboards.
-- ARGV[5] minutes (how many minute buckets, the current one last; 0 = none)
--   ARGV[6] hours (1 = include the hourly history)   ARGV[7] groups (count the blocked jobs
--   of at most this many concurrency groups)
-- Returns: {now_ms, ready, deferred, in_progress, dead_letters, live workers, paused_at_ms
--   (0 = not paused), blocked jobs, groups with blocked jobs, counters (flat field/value list),
--   minute buckets (per minute with data: {unix minute, flat field/value list}), hourly
--   history (flat, as K.hours holds it), unknown tasks (flat: task, "<last ms> <worker>")}
-- Invariant: reads only.
local minutes, with_hours, max_groups = tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7])
local groups = rcall('SCARD', K.groups)
local blocked = 0
if groups > 0 and max_groups > 0 then
  for _, group in ipairs(rcall('SRANDMEMBER', K.groups, max_groups)) do
    blocked = blocked + rcall('ZCARD', P.group .. group .. ':blocked')
  end
end
local current = math.floor(NOW / MINUTE_MS)
local buckets = {}
for m = current - minutes + 1, current do
  local f = rcall('HGETALL', P.minute .. m)
  if #f > 0 then buckets[#buckets + 1] = {m, f} end
end
return {NOW, rcall('ZCARD', K.ready), rcall('ZCARD', K.deferred), rcall('ZCARD', K.leases),
  rcall('XLEN', K.dlq), rcall('ZCOUNT', K.workers, NOW, '+inf'),
  tonumber(rcall('GET', K.paused) or '0') or 0, blocked, groups, rcall('HGETALL', K.stats),
  buckets, with_hours and rcall('HGETALL', K.hours) or {}, rcall('HGETALL', K.unknown)}
