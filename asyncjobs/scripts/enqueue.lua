-- enqueue: create 1..N jobs atomically, deduplicated by job id and by idempotency key.
-- KEYS[1] ready   KEYS[2] deferred   KEYS[3] wake   KEYS[4] seq   KEYS[5] stats
-- ARGV[1] job prefix   ARGV[2] idempotency-key prefix   ARGV[3] N (number of jobs)
-- then 12 fields per job: id, task, payload, priority, max_tries (0 = the worker's default),
--   timeout_ms (0 = default), delay_ms, defer_until_ms (absolute, 0 = none),
--   expires_ms (relative to now, 0 = never), idempotency key ('' = none), idempotency ttl ms,
--   concurrency key ('' = none; groups jobs of a task that has max_concurrency)
-- Returns: {id_1, duplicate_1, ..., id_N, duplicate_N}; duplicate = 1 when an existing job
--   (same id, or same idempotency key inside its TTL) is returned and nothing was written.
-- Invariant: a new job is in exactly one of ready / deferred, with status queued / deferred.
local now = now_ms()
local n = tonumber(ARGV[3])
local out = {}
local created = 0
for i = 0, n - 1 do
  local id, existed = create_job(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2], now,
    4 + i * FIELDS_PER_JOB, KEYS[5])
  out[#out + 1] = id
  out[#out + 1] = existed
  created = created + 1 - existed
end
if created > 0 then
  -- One member only: a wake-up is a flag, not a counter, so the key never grows.
  rcall('ZADD', KEYS[3], 0, 'w')
  rcall('HINCRBY', KEYS[5], 'enqueued', created)
end
return out
