-- unknown_task: a worker that does not know the job's task gives it back, for a worker that
--   does (another app sharing the queue, or a newer release during a rolling deploy).
-- ARGV[5] id   ARGV[6] token   ARGV[7] grace_ms (how long after the first worker that did not
--   know it the job may wait for one that does; 0 = dead-letter it now)   ARGV[8] worker
--   ARGV[9] error_message (the UnknownTaskError it is dead-lettered with)
--   ARGV[10] waiting_message (the error it shows while it waits)
-- Returns: {code, retry_in_ms}: 1 given back, deferred by retry_in_ms, its try not spent;
--   2 dead-lettered (the grace passed, or no live worker of the queue registers the task);
--   -1 refused: lease token lost.
-- Invariant: the job is back in deferred, or in the dead letters, in this same step. After
--   its first such claim it is due at once, and the claim that brings it back leaves it to
--   another worker if this one made it (unknown_by, see claim.lua); after the next claims it
--   waits half a second, then twice as long each time, up to 15 s and never past its grace.
--   K.unknown remembers, per task, when a worker last gave one back.
local id, token, grace = ARGV[5], ARGV[6], tonumber(ARGV[7])

-- Whether a live worker of this queue says it registers `task` (workers list their tasks with
-- their heartbeat; one of an older release lists nothing and does not count). Nobody can run a
-- task that no worker knows, a misspelt name say: waiting for one would only delay the error.
local function someone_knows(task)
  for _, worker in ipairs(rcall('ZRANGEBYSCORE', K.workers, NOW, '+inf')) do
    local info = rcall('HGET', K.worker_info, worker)
    local about = info and string.match(info, '^%S+ %S+ (.*)$')
    local ok, described = pcall(cjson.decode, about or '')
    if ok and type(described) == 'table' and type(described['tasks']) == 'table' then
      for _, name in ipairs(described['tasks']) do
        if name == task then return true end
      end
    end
  end
  return false
end

local job_key = P.job .. id
if rcall('HGET', job_key, 'token') ~= token then return {-1, 0} end
rcall('ZREM', K.leases, id)
release_slot(job_key, id)
rcall('HSETNX', job_key, 'unknown_since', NOW)
local since = tonumber(rcall('HGET', job_key, 'unknown_since'))
local task = rcall('HGET', job_key, 'task') or ''
if NOW - since >= grace or not someone_knows(task) then
  set_error(job_key, 'UnknownTaskError', ARGV[9], '')
  dead_letter(job_key, id)
  wf_member_failed(job_key, id, 'UnknownTaskError', ARGV[9])
  finish_job(job_key, id, 'failed')
  tally('failed')
  return {2, 0}
end
set_error(job_key, 'UnknownTaskError', ARGV[10], '')
local bounces = rcall('HINCRBY', job_key, 'unknown_bounces', 1)
local delay = 0
if bounces > 1 then
  delay = math.min(500 * 2 ^ math.min(bounces - 2, 10), 15000, since + grace - NOW)
  delay = math.max(1, math.floor(delay))
end
rcall('HDEL', job_key, 'token', 'suspect')
rcall('HINCRBY', job_key, 'attempts', -1)
rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', NOW + delay, 'unknown_by', ARGV[8])
rcall('ZADD', K.deferred, NOW + delay, id)
rcall('HSET', K.unknown, task, NOW .. ' ' .. ARGV[8])
rcall('PEXPIRE', K.unknown, math.max(grace, 60000) + 60000)
count('unknown_task')
publish(id, 'deferred')
wake()
return {1, delay}
