-- forget: delete what is left of a queue that has no jobs waiting or running, no dead letters
--   and no live worker (a test queue, a renamed one), so it leaves `asyncjobs info`.
-- Returns: {code, n}: 1 forgotten; -1 n jobs are waiting or running; -2 n dead letters are
--   kept; -3 n workers are alive; -4 n crons added at run time are scheduled. The caller then
--   drops the name from the queue registry.
-- Invariant: refuses to lose anything: only counters, history, limits, cron state, the
--   pause flag and the partition count go. Finished jobs' records expire by themselves.
local jobs = rcall('ZCARD', K.ready) + rcall('ZCARD', K.deferred) + rcall('ZCARD', K.leases)
for _, group in ipairs(rcall('SMEMBERS', K.groups)) do
  jobs = jobs + rcall('ZCARD', P.group .. group .. ':blocked')
end
if jobs > 0 then return {-1, jobs} end
local dead = rcall('XLEN', K.dlq)
if dead > 0 then return {-2, dead} end
local alive = rcall('ZCOUNT', K.workers, NOW, '+inf')
if alive > 0 then return {-3, alive} end
local schedules = 0
for _, definition in ipairs(rcall('HVALS', K.crontab)) do
  if cjson.decode(definition).source == 'runtime' then schedules = schedules + 1 end
end
if schedules > 0 then return {-4, schedules} end
for _, name in ipairs(KEY_NAMES) do rcall('DEL', TAG .. ':' .. name) end  -- all, used or not
rcall('DEL', TAG .. ':partitions')  -- (its partitions are forgotten first: see forget_queue)
for _, status in ipairs({'succeeded', 'cancelled', 'expired'}) do rcall('DEL', P.recent .. status) end
local current = math.floor(NOW / MINUTE_MS)
for m = current - MINUTE_KEEP_MS / MINUTE_MS, current do rcall('DEL', P.minute .. m) end
return {1, 0}
