-- cron_tick: enqueue one tick of a cron job exactly once, however many workers fire it.
-- KEYS[1] ready   KEYS[2] deferred   KEYS[3] wake   KEYS[4] seq   KEYS[5] stats   KEYS[6] cron
-- ARGV[1] job prefix   ARGV[2] idempotency-key prefix   ARGV[3] cron job name
-- ARGV[4] tick time ms   ARGV[5] unique (1 = skip the tick while the previous run is live)
-- then the 12 enqueue fields of the tick's job (see enqueue.lua), from ARGV[6]
-- Returns: {job id, code}: 0 enqueued, 1 this tick (or a later one) was already handled,
--   2 skipped because the previous run is still queued or running (unique).
local now = now_ms()
local name, tick, unique = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local state = rcall('HGET', KEYS[6], name)
local last_tick, last_id = 0, nil
if state then
  local sep = string.find(state, ' ', 1, true)
  last_tick, last_id = tonumber(string.sub(state, 1, sep - 1)), string.sub(state, sep + 1)
end
if last_tick >= tick then return {last_id or '', 1} end
if unique and last_id then
  local status = rcall('HGET', ARGV[1] .. last_id, 'status')
  if status == 'queued' or status == 'deferred' or status == 'in_progress' then
    rcall('HSET', KEYS[6], name, tick .. ' ' .. last_id)
    return {last_id, 2}
  end
end
local id, existed = create_job(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2], now, 6, KEYS[5])
rcall('HSET', KEYS[6], name, tick .. ' ' .. id)
if existed == 1 then return {id, 1} end
rcall('ZADD', KEYS[3], 0, 'w')
rcall('HINCRBY', KEYS[5], 'enqueued', 1)
return {id, 0}
