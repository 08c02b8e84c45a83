-- enqueue: create 1..N jobs atomically, deduplicated by job id and by idempotency key.
-- KEYS[1] ready   KEYS[2] deferred   KEYS[3] wake   KEYS[4] seq   KEYS[5] stats
-- ARGV[1] job prefix   ARGV[2] idempotency-key prefix   ARGV[3] N (number of jobs)
-- then 11 fields per job: id, task, payload, priority, max_tries (0 = the worker's default),
--   timeout_ms (0 = default), delay_ms, defer_until_ms (absolute, 0 = none),
--   expires_ms (relative to now, 0 = never), idempotency key ('' = none), idempotency ttl ms
-- Returns: {id_1, duplicate_1, ..., id_N, duplicate_N}; duplicate = 1 when an existing job
--   (same id, or same idempotency key inside its TTL) is returned and nothing was written.
-- Invariant: a new job is in exactly one of ready / deferred, with status queued / deferred.
local now = now_ms()
local job_prefix, idem_prefix = ARGV[1], ARGV[2]
local n = tonumber(ARGV[3])
local out = {}
local created, woken = 0, false
for i = 0, n - 1 do
  local b = 4 + i * 11
  local id, task, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local priority, max_tries, timeout = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local delay, defer_until = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
  local expires, idem_key, idem_ttl = tonumber(ARGV[b + 8]), ARGV[b + 9], tonumber(ARGV[b + 10])
  local existing = nil
  if idem_key ~= '' then
    existing = rcall('GET', idem_prefix .. idem_key)
  end
  if not existing and rcall('EXISTS', job_prefix .. id) == 1 then
    existing = id
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local job_key = job_prefix .. id
    local due = math.max(now + delay, defer_until)
    rcall('HSET', job_key, 'task', task, 'payload', payload, 'priority', priority,
      'max_tries', max_tries, 'timeout', timeout, 'attempts', 0, 'enqueued_at', now)
    if expires > 0 then rcall('HSET', job_key, 'expires_at', now + expires) end
    if idem_key ~= '' then
      rcall('HSET', job_key, 'idempotency_key', idem_key)
      rcall('SET', idem_prefix .. idem_key, id, 'PX', idem_ttl)
    end
    if due > now then
      rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', due)
      rcall('ZADD', KEYS[2], due, id)
    else
      rcall('HSET', job_key, 'status', 'queued')
      push_ready(KEYS[1], KEYS[4], job_key, id)
    end
    created = created + 1
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if created > 0 then
  -- One member only: a wake-up is a flag, not a counter, so the key never grows.
  rcall('ZADD', KEYS[3], 0, 'w')
  rcall('HINCRBY', KEYS[5], 'enqueued', created)
end
return out
