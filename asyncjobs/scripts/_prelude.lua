-- Shared helpers, prepended to every script at load time (never run on its own).
-- Invariants kept here for every script:
--   * time comes from Redis (TIME), never from a client;
--   * a job is in at most one of ready / deferred / leases, matching its `status` field;
--   * every change a waiter or watcher acts on (start, progress, retry, requeue, every end) is
--     published on the queue's events channel as "<id> <status>".
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rcall = redis.call

local function now_ms()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Ready-set score: a priority band, then a FIFO sequence inside the band. Higher priority runs
-- first. |priority| <= 1000 and seq < 2^40 keep the score an exact double (< 2^51).
local PRIORITY_LIMIT = 1000
local SEQ_SPAN = 1099511627776

-- `priority` may be passed by a caller that has it at hand (saves reading it back).
local function ready_score(seq_key, job_key, priority)
  priority = tonumber(priority or rcall('HGET', job_key, 'priority') or '0') or 0
  priority = math.max(-PRIORITY_LIMIT, math.min(PRIORITY_LIMIT, priority))
  return (PRIORITY_LIMIT - priority) * SEQ_SPAN + rcall('INCR', seq_key) % SEQ_SPAN
end

local function push_ready(ready_key, seq_key, job_key, job_id, priority)
  rcall('ZADD', ready_key, ready_score(seq_key, job_key, priority), job_id)
end

-- Suspects: jobs that were running on a worker that died. They sit in the ready set after
-- every ordinary job (scores from SUSPECT_BAND up, still < 2^53), and a worker carries at most
-- one suspect at a time, beside its ordinary jobs. So when a worker dies, its one suspect is
-- the one to blame (see recover.lua), and an innocent job that died in company gets a run of
-- its own and succeeds.
local SUSPECT_BAND = (2 * PRIORITY_LIMIT + 1) * SEQ_SPAN

local function push_suspect(ready_key, seq_key, job_key, job_id)
  rcall('HSET', job_key, 'suspect', 1)
  rcall('ZADD', ready_key, SUSPECT_BAND + ready_score(seq_key, job_key), job_id)
end

-- Creates one job from the 12 enqueue fields starting at ARGV[b] (see enqueue.lua), unless a
-- job with that id, or the idempotency key, exists. Returns the job id and 1 if it existed.
local FIELDS_PER_JOB = 12
local function create_job(ready_key, deferred_key, seq_key, job_prefix, idem_prefix, now, b,
                          stats_key)
  local id, task, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local priority, max_tries, timeout = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local delay, defer_until = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
  local expires, idem_key, idem_ttl = tonumber(ARGV[b + 8]), ARGV[b + 9], tonumber(ARGV[b + 10])
  local concurrency_key = ARGV[b + 11]
  if idem_key ~= '' then
    local existing = rcall('GET', idem_prefix .. idem_key)
    if existing then return existing, 1 end
  end
  local job_key = job_prefix .. id
  if rcall('EXISTS', job_key) == 1 then return id, 1 end
  local due = math.max(now + delay, defer_until)
  rcall('HSET', job_key, 'task', task, 'payload', payload, 'priority', priority,
    'max_tries', max_tries, 'timeout', timeout, 'attempts', 0, 'enqueued_at', now)
  if expires > 0 then rcall('HSET', job_key, 'expires_at', now + expires) end
  if concurrency_key ~= '' then rcall('HSET', job_key, 'concurrency_key', concurrency_key) end
  if idem_key ~= '' then
    rcall('HSET', job_key, 'idempotency_key', idem_key)
    rcall('SET', idem_prefix .. idem_key, id, 'PX', idem_ttl)
  end
  if due > now then
    rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', due)
    rcall('ZADD', deferred_key, due, id)
  else
    rcall('HSET', job_key, 'status', 'queued')
    push_ready(ready_key, seq_key, job_key, id, priority)
  end
  rcall('HINCRBY', stats_key, 'enqueued:' .. task, 1)  -- per task, for metrics (bounded by tasks)
  return id, 0
end

-- A job leaving in_progress gives back its concurrency-group slot, and the first job waiting
-- for that group goes back to the ready set with the score it had.
local function release_slot(job_key, id, job_prefix, group_prefix, ready_key, wake_key)
  local group = rcall('HGET', job_key, 'group')
  if not group then return end
  rcall('HDEL', job_key, 'group')
  rcall('SREM', group_prefix .. group .. ':running', id)
  local nxt = rcall('ZPOPMIN', group_prefix .. group .. ':blocked', 1)
  if #nxt > 0 then
    rcall('HDEL', job_prefix .. nxt[1], 'blocked')
    rcall('ZADD', ready_key, nxt[2], nxt[1])
    rcall('ZADD', wake_key, 0, 'w')
  end
end

local function publish(channel, job_id, status)
  rcall('PUBLISH', channel, job_id .. ' ' .. status)
end

-- Ends a job in a terminal status: stamps it, lets its record expire, tells the waiters.
local function finish_job(job_key, job_id, status, now, keep_ms, channel)
  rcall('HSET', job_key, 'status', status, 'finished_at', now)
  rcall('HDEL', job_key, 'token')
  if keep_ms > 0 then
    rcall('PEXPIRE', job_key, keep_ms)
  else
    rcall('DEL', job_key)
  end
  publish(channel, job_id, status)
end

-- Copies a failed job, with its error, onto the capped dead-letter stream.
local function dead_letter(dlq_key, maxlen, job_key, job_id, now)
  local f = rcall('HMGET', job_key, 'task', 'payload', 'priority', 'max_tries', 'timeout',
    'attempts', 'enqueued_at', 'error_type', 'error_message', 'traceback', 'concurrency_key')
  rcall('XADD', dlq_key, 'MAXLEN', '~', maxlen, '*',
    'id', job_id, 'task', f[1] or '', 'payload', f[2] or '', 'priority', f[3] or '0',
    'max_tries', f[4] or '0', 'timeout', f[5] or '0', 'attempts', f[6] or '0',
    'enqueued_at', f[7] or '0', 'failed_at', now, 'error_type', f[8] or '',
    'error_message', f[9] or '', 'traceback', f[10] or '', 'concurrency_key', f[11] or '')
end

local function set_error(job_key, error_type, error_message, traceback)
  rcall('HSET', job_key, 'error_type', error_type, 'error_message', error_message,
    'traceback', traceback)
end

-- Workflows. A workflow hash (`{q}:wf:<id>`) holds, per member i: task:i, head:i, tail:i,
-- tpl:i (input template: JSON list of literal JSON strings and member indexes), wait:i (results
-- still awaited), next:i (members waiting for i), opt:i (priority,max_tries,timeout_ms), tol:i
-- (1 = its failure is tolerated), r:i (its result); and id, job_key, total, done, status,
-- result_tpl, keep. Members are jobs `<id>.<i>` in the same queue, carrying `workflow` (the
-- workflow hash key) and `node` (i). The workflow itself is the job `<id>`.

-- Concatenates literal JSON segments and stored member results into one JSON text.
local function wf_build(wf_key, tpl)
  local parts = {}
  for _, seg in ipairs(cjson.decode(tpl)) do
    if type(seg) == 'number' then
      parts[#parts + 1] = rcall('HGET', wf_key, 'r:' .. seg) or 'null'
    else
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts)
end

local function wf_start_member(wf_key, i, job_prefix, ready_key, seq_key, now)
  local f = rcall('HMGET', wf_key, 'id', 'task:' .. i, 'head:' .. i, 'tail:' .. i, 'tpl:' .. i,
    'opt:' .. i)
  local id = f[1] .. '.' .. i
  local job_key = job_prefix .. id
  if rcall('EXISTS', job_key) == 1 then return end
  local payload = f[3]
  if f[5] and f[5] ~= '' then payload = f[3] .. wf_build(wf_key, f[5]) .. f[4] end
  local o = {}
  for v in string.gmatch(f[6], '[^,]+') do o[#o + 1] = v end
  rcall('HSET', job_key, 'task', f[2], 'payload', payload, 'priority', o[1], 'max_tries', o[2],
    'timeout', o[3], 'attempts', 0, 'enqueued_at', now, 'status', 'queued',
    'workflow', wf_key, 'node', i)
  push_ready(ready_key, seq_key, job_key, id)
end

-- Ends every member still waiting or running, as cancelled (the workflow failed or was cancelled).
local function wf_cancel_members(wf_key, skip_id, job_prefix, group_prefix, k, now, keep_ms,
                                 channel, cancel_channel)
  local id, total = rcall('HGET', wf_key, 'id'), tonumber(rcall('HGET', wf_key, 'total'))
  for i = 0, total - 1 do
    local member = id .. '.' .. i
    local job_key = job_prefix .. member
    local status = member ~= skip_id and rcall('HGET', job_key, 'status')
    if status == 'queued' or status == 'deferred' or status == 'in_progress' then
      rcall('ZREM', k.ready, member)
      rcall('ZREM', k.deferred, member)
      local blocked = rcall('HGET', job_key, 'blocked')
      if blocked then rcall('ZREM', group_prefix .. blocked .. ':blocked', member) end
      if status == 'in_progress' then
        rcall('ZREM', k.leases, member)
        release_slot(job_key, member, job_prefix, group_prefix, k.ready, k.wake)
        rcall('PUBLISH', cancel_channel, member)
      end
      finish_job(job_key, member, 'cancelled', now, keep_ms, channel)
    end
  end
end

-- A member succeeded (or failed, tolerated): record its result once, start the members that
-- were waiting only for it, and end the workflow when every member is done.
local function wf_member_done(member_key, result, job_prefix, k, now, channel)
  local m = rcall('HMGET', member_key, 'workflow', 'node')
  local wf_key, node = m[1], m[2]
  if not wf_key or rcall('HGET', wf_key, 'status') ~= 'running' then return end
  if rcall('HSETNX', wf_key, 'r:' .. node, result) == 0 then return end
  local done = rcall('HINCRBY', wf_key, 'done', 1)
  local started = false
  for d in string.gmatch(rcall('HGET', wf_key, 'next:' .. node) or '', '[^,]+') do
    if rcall('HINCRBY', wf_key, 'wait:' .. d, -1) == 0 then
      wf_start_member(wf_key, d, job_prefix, k.ready, k.seq, now)
      started = true
    end
  end
  if started then rcall('ZADD', k.wake, 0, 'w') end
  local w = rcall('HMGET', wf_key, 'id', 'job_key', 'total', 'keep')
  local total = tonumber(w[3])
  rcall('HSET', w[2], 'progress', done / total, 'message', done .. ' of ' .. total ..
    ' members done')
  if done == total then
    rcall('HSET', wf_key, 'status', 'succeeded')
    rcall('HSET', w[2], 'result', wf_build(wf_key, rcall('HGET', wf_key, 'result_tpl')))
    finish_job(w[2], w[1], 'succeeded', now, tonumber(w[4]), channel)
    rcall('PEXPIRE', wf_key, math.max(tonumber(w[4]), 1))
  else
    publish(channel, w[1], 'progress')
  end
end

-- A member failed for good (dead-lettered, cancelled, expired). Tolerated: its result becomes a
-- failure marker. Otherwise the workflow fails, naming the member, and the rest is cancelled.
local function wf_member_failed(member_key, member_id, error_type, message, job_prefix,
                                group_prefix, k, now, channel, cancel_channel)
  local m = rcall('HMGET', member_key, 'workflow', 'node', 'task')
  local wf_key, node = m[1], m[2]
  if not wf_key or rcall('HGET', wf_key, 'status') ~= 'running' then return end
  if rcall('HGET', wf_key, 'tol:' .. node) == '1' then
    local marker = '{"failed":true,"job_id":' .. cjson.encode(member_id) .. ',"error_type":' ..
      cjson.encode(error_type) .. ',"error":' .. cjson.encode(message) .. '}'
    wf_member_done(member_key, marker, job_prefix, k, now, channel)
    return
  end
  local w = rcall('HMGET', wf_key, 'id', 'job_key', 'keep')
  local keep = tonumber(w[3])
  rcall('HSET', wf_key, 'status', 'failed')
  set_error(w[2], error_type, 'member ' .. member_id .. ' (' .. (m[3] or '?') .. ') failed: ' ..
    message, '')
  finish_job(w[2], w[1], 'failed', now, keep, channel)
  wf_cancel_members(wf_key, member_id, job_prefix, group_prefix, k, now, keep, channel,
    cancel_channel)
  rcall('PEXPIRE', wf_key, math.max(keep, 1))
end
