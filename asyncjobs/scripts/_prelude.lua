-- Shared helpers, prepended to every script at load time (never run on its own).
-- Invariants kept here for every script:
--   * time comes from Redis (TIME), never from a client;
--   * a job is in at most one of ready / deferred / leases, matching its `status` field;
--   * every visible change of a job is published on the queue's events channel as "<id> <status>".
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
    'attempts', 'enqueued_at', 'error_type', 'error_message', 'traceback')
  rcall('XADD', dlq_key, 'MAXLEN', '~', maxlen, '*',
    'id', job_id, 'task', f[1] or '', 'payload', f[2] or '', 'priority', f[3] or '0',
    'max_tries', f[4] or '0', 'timeout', f[5] or '0', 'attempts', f[6] or '0',
    'enqueued_at', f[7] or '0', 'failed_at', now, 'error_type', f[8] or '',
    'error_message', f[9] or '', 'traceback', f[10] or '')
end

local function set_error(job_key, error_type, error_message, traceback)
  rcall('HSET', job_key, 'error_type', error_type, 'error_message', error_message,
    'traceback', traceback)
end
