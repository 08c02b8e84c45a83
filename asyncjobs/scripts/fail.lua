-- fail: record a failed try, then either schedule the next try or dead-letter the job.
-- KEYS[1] leases   KEYS[2] deferred   KEYS[3] ready   KEYS[4] wake   KEYS[5] seq
-- KEYS[6] dead-letter stream   KEYS[7] stats
-- ARGV[1] job prefix   ARGV[2] id   ARGV[3] token
-- ARGV[4] retry delay ms (-1 = permanent failure, never retried)
-- ARGV[5] max tries (the worker's effective value)   ARGV[6] error type   ARGV[7] error message
-- ARGV[8] traceback   ARGV[9] keep ms   ARGV[10] dead-letter cap   ARGV[11] events channel
-- ARGV[12] concurrency-group prefix   ARGV[13] cancel channel (a failed workflow stops members)
-- Returns: 1 retry scheduled, 2 dead-lettered (status failed), -1 refused: lease token lost.
-- Invariant: the job leaves leases and lands in deferred/ready or the dead-letter stream in
--   the same step, so no crash between "failed" and "rescheduled" can lose it.
local now = now_ms()
local job_prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local delay, max_tries = tonumber(ARGV[4]), tonumber(ARGV[5])
local job_key = job_prefix .. id
if rcall('HGET', job_key, 'token') ~= token then return -1 end
rcall('ZREM', KEYS[1], id)
release_slot(job_key, id, job_prefix, ARGV[12], KEYS[3], KEYS[4])
set_error(job_key, ARGV[6], ARGV[7], ARGV[8])
local attempts = tonumber(rcall('HGET', job_key, 'attempts') or '0')
if delay >= 0 and attempts < max_tries then
  rcall('HDEL', job_key, 'token', 'suspect')  -- it ran and raised: no longer a suspect
  if delay > 0 then
    rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', now + delay)
    rcall('ZADD', KEYS[2], now + delay, id)
    publish(ARGV[11], id, 'deferred')
  else
    rcall('HSET', job_key, 'status', 'queued')
    push_ready(KEYS[3], KEYS[5], job_key, id)
    publish(ARGV[11], id, 'queued')
  end
  -- Wake a blocked worker so it re-reads the next due time.
  rcall('ZADD', KEYS[4], 0, 'w')
  rcall('HINCRBY', KEYS[7], 'retried', 1)
  return 1
end
dead_letter(KEYS[6], tonumber(ARGV[10]), job_key, id, now)
local k = {leases = KEYS[1], deferred = KEYS[2], ready = KEYS[3], wake = KEYS[4], seq = KEYS[5]}
wf_member_failed(job_key, id, ARGV[6], ARGV[7], job_prefix, ARGV[12], k, now, ARGV[11], ARGV[13])
finish_job(job_key, id, 'failed', now, tonumber(ARGV[9]), ARGV[11])
rcall('HINCRBY', KEYS[7], 'failed', 1)
return 2
