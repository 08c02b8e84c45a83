-- recover: put back the jobs whose lease ran out (their worker died, was killed or stalled).
-- ARGV[5] limit (at most this many jobs per call)   ARGV[6] default_max_tries (for jobs that
--   carry none and whose task published none)   ARGV[7] max_stalls (lost leases before a job
--   is a poison pill)
-- Returns: {recovered, dead_lettered, next_lease_deadline_in_ms (-1 = no leases), then for each
--   dead-lettered job: id, task, error type, error message}
-- The lost try counts: a job whose tries are used up goes to the dead letters (WorkerLost).
-- Blame: a dead worker's only job in flight, or else its one suspect (a worker carries at most
-- one), counts a stall; max_stalls stalls make a PoisonPill, dead-lettered so that a job that
-- kills every worker running it cannot crash workers forever. The others died in company and
-- are not blamed: the first time they go back to the front of the line (push_front), a job
-- recovered again comes back as a suspect (push_suspect), as a blamed one does.
workers_only()
local limit, default_max, max_stalls = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local expired = rcall('ZRANGEBYSCORE', K.leases, '-inf', NOW, 'LIMIT', 0, limit)
local in_flight, suspects = {}, {}  -- per dead worker: jobs it held, and suspects among them
for _, id in ipairs(expired) do
  local h = rcall('HMGET', P.job .. id, 'worker', 'suspect')
  local holder = h[1] or '?'
  in_flight[holder] = (in_flight[holder] or 0) + 1
  if h[2] then suspects[holder] = (suspects[holder] or 0) + 1 end
end
local recovered, dead = 0, 0
local dead_ids = {}
for _, id in ipairs(expired) do
  rcall('ZREM', K.leases, id)
  local job_key = P.job .. id
  local f = rcall('HMGET', job_key, 'attempts', 'max_tries', 'worker', 'status', 'recovered',
    'priority')
  if f[4] == 'in_progress' then
    local attempts = tonumber(f[1] or '0')
    local max_tries = tonumber(f[2] or '0')
    if max_tries <= 0 then
      local name = (rcall('HGET', job_key, 'task') or '') .. ':max_tries'
      local declared = rcall('HMGET', K.limits, name, name .. ':until')
      if not declared[2] or (tonumber(declared[2]) or 0) > NOW then
        max_tries = tonumber(declared[1] or '0') or 0
      end
    end
    if max_tries <= 0 then max_tries = default_max end
    release_slot(job_key, id)
    local stalls = tonumber(rcall('HGET', job_key, 'stalls') or '0') or 0
    local holder = f[3] or '?'
    local blamed = in_flight[holder] == 1
      or (suspects[holder] == 1 and rcall('HEXISTS', job_key, 'suspect') == 1)
    if blamed then stalls = rcall('HINCRBY', job_key, 'stalls', 1) end
    local poison = stalls >= max_stalls
    if poison then
      set_error(job_key, 'PoisonPill', 'the job lost its lease ' .. stalls .. ' times (last: ' ..
        'worker ' .. holder .. '); it may be killing its workers', '')
    else
      set_error(job_key, 'WorkerLost', 'the lease ran out on try ' .. attempts ..
        ': worker ' .. holder .. ' stopped renewing it (crashed, killed or blocked)', '')
    end
    if poison or attempts >= max_tries then
      dead_letter(job_key, id)
      local e = rcall('HMGET', job_key, 'task', 'error_type', 'error_message')
      dead_ids[#dead_ids + 1] = {id, e[1] or '', e[2] or '', e[3] or ''}
      wf_member_failed(job_key, id, e[2] or 'WorkerLost', e[3] or '')
      finish_job(job_key, id, 'failed')
      dead = dead + 1
    else
      rcall('HDEL', job_key, 'token')
      rcall('HSET', job_key, 'status', 'queued', 'recovered', (tonumber(f[5] or '0') or 0) + 1)
      if blamed or f[5] then
        push_suspect(job_key, id)
      else
        push_front(job_key, id, f[6])
      end
      publish(id, 'queued')
      recovered = recovered + 1
    end
  end
end
if recovered > 0 then
  wake()
  tally('recovered', recovered)
end
if dead > 0 then tally('failed', dead) end
local nxt = rcall('ZRANGE', K.leases, 0, 0, 'WITHSCORES')
local next_in = -1
if #nxt > 0 then next_in = math.max(0, tonumber(nxt[2]) - NOW) end
local out = {recovered, dead, next_in}
for _, d in ipairs(dead_ids) do
  for _, v in ipairs(d) do out[#out + 1] = v end
end
return out
