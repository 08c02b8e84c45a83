-- claim: promote due deferred jobs, then hand out up to N ready jobs under fresh leases,
-- honouring per-task concurrency limits and rate limits.
-- ARGV[5] worker (its id)   ARGV[6] slots (how many jobs it can take)   ARGV[7] lease_ms
-- ARGV[8] may_take_suspect ('1' = this worker carries no suspect: it may take one)
-- Returns: {next_due_in_ms (-1 = nothing deferred), now_ms (Redis clock), suspects left waiting
--   (0/1), the id of the suspect handed out in this claim ('' = none), then per claimed job:
--   id, task, payload, attempts (this try, from 1), max_tries, timeout_ms, enqueued_at_ms,
--   trace ('' = none), checkpoint (the last one a try saved, '' = none)}
-- Each claim's lease token is "<worker id>:<attempts>", unique per job and try; ack, fail,
-- requeue, progress and extend act only while the job still holds that token.
-- Invariants: a claimed job moves from ready to leases with status in_progress. A job over its
--   task's max_concurrency waits in its group's blocked set (status queued) until a slot is
--   released; a job over its task's rate limit is deferred to the next free start slot, which
--   it reserves (rate_slot), so waiting jobs are never busy-looped. Two starts of a task are
--   never closer than its interval: a reserved slot taken late pushes the next one back. A
--   corrupt job record (no task or payload, non-numeric counters) is dead-lettered here: this
--   script must never stop half-way, since Redis keeps what a failed script already wrote.
-- A worker that is leaving (leave.lua) is handed nothing; the chain wake-up still runs.
-- A paused queue (K.paused set) hands out nothing, reports no due time and wakes no one, so its
--   idle workers stay blocked until resume writes the wake key; due deferred jobs still move
--   to ready, to wait there.
workers_only()
local worker, n, lease_ms = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local paused = rcall('EXISTS', K.paused) == 1
if paused then n = 0 end
-- A worker that is stopping (leave.lua) takes nothing: its claim loop is about to end, and a
-- job handed to it now would wait out its lease.
if rcall('EXISTS', P.left .. worker) == 1 then n = 0 end

-- A job this worker gave back because it does not know its task (unknown_task.lua) is not
-- taken again in the claim that brings it back: it goes to ready after this claim's hand-out,
-- and the chain wake-up below offers it to the next blocked worker, which may know the task.
local due = rcall('ZRANGEBYSCORE', K.deferred, '-inf', NOW, 'LIMIT', 0, 1000)
local held_back = {}
for _, id in ipairs(due) do
  rcall('ZREM', K.deferred, id)
  local job_key = P.job .. id
  local f = rcall('HMGET', job_key, 'status', 'unknown_by')
  if f[1] then
    rcall('HSET', job_key, 'status', 'queued')
    if f[2] == worker then held_back[#held_back + 1] = id else push_ready(job_key, id) end
  end
end

-- A task's limits, as live workers declare them (see heartbeat.lua); 0 = none.
local limit_cache = {}
local function live_limit(value, expiry)
  if expiry and (tonumber(expiry) or 0) <= NOW then return 0 end
  return tonumber(value or '0') or 0
end
local function limits_of(task)
  local l = limit_cache[task]
  if not l then
    local c, r = task .. ':concurrency', task .. ':interval_ms'
    local v = rcall('HMGET', K.limits, c, r, c .. ':until', r .. ':until')
    l = {live_limit(v[1], v[3]), live_limit(v[2], v[4])}
    limit_cache[task] = l
  end
  return l
end

local checked_groups = {}  -- groups whose blocked set this claim looked at already
local leased = {}  -- score, id pairs for the leases set, written in one ZADD at the end

-- Moves every job waiting in a group back to ready (its limit was lifted or raised).
local function unblock(group, count)
  local blocked = P.group .. group .. ':blocked'
  local moved = rcall('ZPOPMIN', blocked, count)
  for i = 1, #moved, 2 do
    rcall('HDEL', P.job .. moved[i], 'blocked')
    rcall('ZADD', K.ready, moved[i + 1], moved[i])
  end
  forget_group_if_empty(group)
end

local out = {-1, NOW, 0, ''}
-- A worker without a suspect takes the oldest one first (one slot), then ordinary jobs.
local take_suspect = ARGV[8] == '1' and not paused
if take_suspect then
  local last = rcall('ZRANGE', K.ready, -1, -1, 'WITHSCORES')
  take_suspect = #last > 0 and tonumber(last[2]) >= SUSPECT_BAND
end
local claimed, expired = 0, 0
while claimed < n do
  local popped
  local suspect_pop = take_suspect
  if suspect_pop then
    popped = rcall('ZRANGEBYSCORE', K.ready, SUSPECT_BAND, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #popped > 0 then rcall('ZREM', K.ready, popped[1]) end
    take_suspect = false
  else
    popped = rcall('ZPOPMIN', K.ready, n - claimed)
  end
  if #popped == 0 and not suspect_pop then break end
  local reached_suspects = false
  if not suspect_pop and #popped > 0 and tonumber(popped[#popped]) >= SUSPECT_BAND then
    -- only one suspect per worker: put the others back (they are last in line anyway)
    for i = 1, #popped, 2 do
      if tonumber(popped[i + 1]) >= SUSPECT_BAND then
        rcall('ZADD', K.ready, popped[i + 1], popped[i])
        popped[i] = false
      end
    end
    reached_suspects = true
  end
  for i = 1, #popped, 2 do
    local id, score = popped[i], popped[i + 1]
    if id then
      local job_key = P.job .. id
      local f = rcall('HMGET', job_key, 'task', 'payload', 'attempts', 'max_tries', 'timeout',
        'enqueued_at', 'expires_at', 'status', 'concurrency_key', 'rate_slot', 'workflow', 'trace',
        'checkpoint')
      local previous_attempts = tonumber(f[3] or '0')
      local expires_at = f[7] and tonumber(f[7])
      if f[8] == 'queued' and (not f[1] or f[1] == '' or not f[2] or not previous_attempts
          or (f[7] and not expires_at)) then
        set_error(job_key, 'PayloadError', 'the job record is corrupt: a task, a payload and ' ..
          'numeric counters are required (was it written by hand?)', '')
        dead_letter(job_key, id)
        wf_member_failed(job_key, id, 'PayloadError', 'corrupt job record')
        finish_job(job_key, id, 'failed')
        tally('failed')
      elseif f[8] == 'queued' then
        local task = f[1]
        if expires_at and expires_at <= NOW then
          expired = expired + 1
          wf_member_failed(job_key, id, 'JobExpired', 'expired before it started')
          finish_job(job_key, id, 'expired')
        else
          local lim = limits_of(task)
          local group = task
          if f[9] then group = task .. ':' .. f[9] end
          local runnable = true
          if lim[1] > 0 then
            if rcall('SCARD', P.group .. group .. ':running') >= lim[1] then
              rcall('ZADD', P.group .. group .. ':blocked', score, id)
              rcall('SADD', K.groups, group)
              rcall('HSET', job_key, 'blocked', group)
              -- a reserved rate slot is stale by the time a concurrency slot frees: start over
              if f[10] then rcall('HDEL', job_key, 'rate_slot') end
              runnable = false
            end
          elseif not checked_groups[group] then  -- once per group and claim, not per job
            checked_groups[group] = true
            if rcall('EXISTS', P.group .. group .. ':blocked') == 1 then unblock(group, 1000) end
          end
          if runnable and lim[2] > 0 then
            local rate_key, started_key = P.rate .. task, P.rate_started .. task
            local next_free = tonumber(rcall('GET', rate_key) or '0') or 0
            local last_start = tonumber(rcall('GET', started_key) or '0') or 0
            -- never closer than one interval to the last start, even when a slot is taken late
            local slot = math.max(NOW, last_start + lim[2])
            if not f[10] then slot = math.max(slot, next_free) end
            if slot > NOW then
              rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', slot, 'rate_slot', 1)
              rcall('ZADD', K.deferred, slot, id)
              runnable = false
              next_free = math.max(next_free, slot + lim[2])
            else
              rcall('SET', started_key, NOW, 'PX', lim[2] + 1000)
              next_free = math.max(next_free, NOW + lim[2])
            end
            rcall('SET', rate_key, next_free, 'PX', next_free - NOW + 1000)
          end
          if runnable then
            local attempts = previous_attempts + 1
            rcall('HSET', job_key, 'status', 'in_progress', 'attempts', attempts,
              'started_at', NOW, 'token', worker .. ':' .. attempts, 'worker', worker)
            if f[10] then rcall('HDEL', job_key, 'rate_slot') end
            if attempts > 1 then rcall('HDEL', job_key, 'progress', 'stage', 'message') end
            if f[11] and rcall('HSETNX', f[11], 'started', 1) == 1 then
              local w = rcall('HMGET', f[11], 'id', 'job_key')
              rcall('HSET', w[2], 'status', 'in_progress', 'started_at', NOW)
              publish(w[1], 'in_progress')
            end
            if lim[1] > 0 then
              local running = P.group .. group .. ':running'
              rcall('SADD', running, id)
              rcall('HSET', job_key, 'group', group)
              local free = lim[1] - rcall('SCARD', running)
              if free > 0 then unblock(group, free) end
            end
            leased[#leased + 1], leased[#leased + 2] = NOW + lease_ms, id
            publish(id, 'in_progress')
            claimed = claimed + 1
            if suspect_pop then out[4] = id end
            local o = #out
            out[o + 1] = id
            out[o + 2] = task
            out[o + 3] = f[2]
            out[o + 4] = attempts
            out[o + 5] = tonumber(f[4] or '0') or 0
            out[o + 6] = tonumber(f[5] or '0') or 0
            out[o + 7] = tonumber(f[6] or '0') or 0
            out[o + 8] = f[12] or ''
            out[o + 9] = f[13] or ''
          end
        end
      end
    end
  end
  if reached_suspects then break end
end
zadd_pairs(K.leases, leased)
for _, id in ipairs(held_back) do push_ready(P.job .. id, id) end
if paused then return out end
local last = rcall('ZRANGE', K.ready, -1, -1, 'WITHSCORES')
if #last > 0 and tonumber(last[2]) >= SUSPECT_BAND then out[3] = 1 end
if expired > 0 then tally('expired', expired) end

-- Chain wake-up: if work is left, let the next blocked worker see it. (A worker that already
-- carries a suspect and finds only suspects waits for its own jobs, not on the wake key, so
-- suspects left over cannot make workers wake each other in a loop.)
if rcall('ZCARD', K.ready) > 0 then rcall('ZADD', K.wake, 0, 'w') end  -- not paused: see above
local nxt = rcall('ZRANGE', K.deferred, 0, 0, 'WITHSCORES')
if #nxt > 0 then out[1] = math.max(0, tonumber(nxt[2]) - NOW) end
return out
