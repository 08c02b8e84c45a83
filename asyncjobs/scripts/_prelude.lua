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

local function push_ready(ready_key, seq_key, job_key, job_id)
  local priority = tonumber(rcall('HGET', job_key, 'priority') or '0') or 0
  local seq = rcall('INCR', seq_key) % SEQ_SPAN
  rcall('ZADD', ready_key, (PRIORITY_LIMIT - priority) * SEQ_SPAN + seq, job_id)
end

-- Creates one job from the 12 enqueue fields starting at ARGV[b] (see enqueue.lua), unless a
-- job with that id, or the idempotency key, exists. Returns the job id and 1 if it existed.
local FIELDS_PER_JOB = 12
local function create_job(ready_key, deferred_key, seq_key, job_prefix, idem_prefix, now, b)
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
    push_ready(ready_key, seq_key, job_key, id)
  end
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
