-- recover: put back the jobs whose lease ran out (their worker died, was killed or stalled).
-- KEYS[1] leases   KEYS[2] ready   KEYS[3] wake   KEYS[4] seq   KEYS[5] dead-letter stream
-- KEYS[6] stats   KEYS[7] limits (a task's published max_tries, for jobs that carry none)
-- KEYS[8] deferred
-- ARGV[1] job prefix   ARGV[2] limit   ARGV[3] default max tries (for jobs that carry none)
-- ARGV[4] keep ms   ARGV[5] dead-letter cap   ARGV[6] events channel
-- ARGV[7] concurrency-group prefix   ARGV[8] max stalls (lost leases before a job is a poison pill)
-- ARGV[9] cancel channel
-- Returns: {recovered, dead_lettered, next_lease_deadline_in_ms (-1 = no leases), then for each
--   dead-lettered job: id, task, error type, error message}
-- The lost try counts: a job whose tries are used up goes to the dead letters (WorkerLost).
-- Blame: a dead worker's only job in flight, or else its one suspect (a worker carries at most
-- one), counts a stall; max_stalls stalls make a PoisonPill, dead-lettered so that a job that
-- kills every worker running it cannot crash workers forever. The others died in company and
-- are not blamed: every recovered job comes back as a suspect (see push_suspect).
local now = now_ms()
local job_prefix, limit = ARGV[1], tonumber(ARGV[2])
local default_max = tonumber(ARGV[3])
local expired = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local in_flight, suspects = {}, {}  -- per dead worker: jobs it held, and suspects among them
for _, id in ipairs(expired) do
  local h = rcall('HMGET', job_prefix .. id, 'worker', 'suspect')
  local holder = h[1] or '?'
  in_flight[holder] = (in_flight[holder] or 0) + 1
  if h[2] then suspects[holder] = (suspects[holder] or 0) + 1 end
end
local recovered, dead = 0, 0
local dead_ids = {}
for _, id in ipairs(expired) do
  rcall('ZREM', KEYS[1], id)
  local job_key = job_prefix .. id
  local f = rcall('HMGET', job_key, 'attempts', 'max_tries', 'worker', 'status')
  if f[4] == 'in_progress' then
    local attempts = tonumber(f[1] or '0')
    local max_tries = tonumber(f[2] or '0')
    if max_tries <= 0 then
      local task = rcall('HGET', job_key, 'task') or ''
      max_tries = tonumber(rcall('HGET', KEYS[7], task .. ':max_tries') or '0') or 0
    end
    if max_tries <= 0 then max_tries = default_max end
    release_slot(job_key, id, job_prefix, ARGV[7], KEYS[2], KEYS[3])
    local stalls = tonumber(rcall('HGET', job_key, 'stalls') or '0') or 0
    local holder = f[3] or '?'
    local blamed = in_flight[holder] == 1
      or (suspects[holder] == 1 and rcall('HEXISTS', job_key, 'suspect') == 1)
    if blamed then stalls = rcall('HINCRBY', job_key, 'stalls', 1) end
    local poison = stalls >= tonumber(ARGV[8])
    if poison then
      set_error(job_key, 'PoisonPill', 'the job lost its lease ' .. stalls .. ' times (last: ' ..
        'worker ' .. (f[3] or '?') .. '); it may be killing its workers', '')
    else
      set_error(job_key, 'WorkerLost', 'the lease ran out on try ' .. attempts ..
        ': worker ' .. (f[3] or '?') .. ' stopped renewing it (crashed, killed or blocked)', '')
    end
    if poison or attempts >= max_tries then
      dead_letter(KEYS[5], tonumber(ARGV[5]), job_key, id, now)
      local e = rcall('HMGET', job_key, 'task', 'error_type', 'error_message')
      dead_ids[#dead_ids + 1] = {id, e[1] or '', e[2] or '', e[3] or ''}
      local k = {leases = KEYS[1], ready = KEYS[2], wake = KEYS[3], seq = KEYS[4],
        deferred = KEYS[8]}
      wf_member_failed(job_key, id, e[2] or 'WorkerLost', e[3] or '', job_prefix, ARGV[7], k, now,
        ARGV[6], ARGV[9])
      finish_job(job_key, id, 'failed', now, tonumber(ARGV[4]), ARGV[6])
      dead = dead + 1
    else
      rcall('HDEL', job_key, 'token')
      rcall('HSET', job_key, 'status', 'queued')
      push_suspect(KEYS[2], KEYS[4], job_key, id)
      publish(ARGV[6], id, 'queued')
      recovered = recovered + 1
    end
  end
end
if recovered > 0 then
  rcall('ZADD', KEYS[3], 0, 'w')
  rcall('HINCRBY', KEYS[6], 'recovered', recovered)
end
if dead > 0 then rcall('HINCRBY', KEYS[6], 'failed', dead) end
local nxt = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_in = -1
if #nxt > 0 then next_in = math.max(0, tonumber(nxt[2]) - now) end
local out = {recovered, dead, next_in}
for _, d in ipairs(dead_ids) do
  for _, v in ipairs(d) do out[#out + 1] = v end
end
return out
