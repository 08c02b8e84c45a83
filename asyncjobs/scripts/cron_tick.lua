-- cron_tick: enqueue one tick of a cron job exactly once, however many workers fire it.
-- ARGV[5] name (of the cron job)   ARGV[6] tick_ms
-- ARGV[7] unique (1 = skip the tick while the previous run is still queued or running)
-- ARGV[8] revision ('' = a cron of the worker's settings; else the revision of the run-time cron
--   the worker loaded: the tick counts only while that very definition is in the crontab)
-- then, per job: JOB_FIELDS (exactly one group: the tick's job)
-- Returns: {job id, code}: 0 enqueued, 1 this tick (or a later one) was already handled,
--   2 skipped because the previous run is still queued or running (unique), 3 the run-time
--   cron was removed or replaced (nothing enqueued: once remove_cron returned, no tick is).
workers_only()
local name, tick, unique = ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1'
if ARGV[8] ~= '' then
  local stored = rcall('HGET', K.crontab, name)
  if not stored or cjson.decode(stored).revision ~= ARGV[8] then return {'', 3} end
end
local state = rcall('HGET', K.cron, name)
local last_tick, last_id = 0, nil
if state then
  local sep = string.find(state, ' ', 1, true)
  last_tick, last_id = tonumber(string.sub(state, 1, sep - 1)), string.sub(state, sep + 1)
end
if last_tick >= tick then return {last_id or '', 1} end
if unique and last_id then
  local status = rcall('HGET', P.job .. last_id, 'status')
  if status == 'queued' or status == 'deferred' or status == 'in_progress' then
    rcall('HSET', K.cron, name, tick .. ' ' .. last_id)
    return {last_id, 2}
  end
end
local pending = new_jobs(1)
local id, existed = create_job(LEADING + 5, pending)
rcall('HSET', K.cron, name, tick .. ' ' .. id)
if existed == 1 then return {id, 1} end
store_new_jobs(pending)
return {id, 0}
