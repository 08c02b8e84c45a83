-- fail: record a failed try, then either schedule the next try or dead-letter the job.
-- ARGV[5] id   ARGV[6] token
-- ARGV[7] retry_delay_ms (-1 = a permanent failure, never retried)
-- ARGV[8] max_tries (the worker's effective value)
-- ARGV[9] error_type   ARGV[10] error_message   ARGV[11] traceback
-- Returns: 1 retry scheduled, 2 dead-lettered (status failed), -1 refused: lease token lost.
-- Invariant: the job leaves leases and lands in deferred/ready or the dead-letter stream in
--   the same step, so no crash between "failed" and "rescheduled" can lose it.
workers_only()
local id, token = ARGV[5], ARGV[6]
local delay, max_tries = tonumber(ARGV[7]), tonumber(ARGV[8])
local job_key = P.job .. id
if rcall('HGET', job_key, 'token') ~= token then return -1 end
rcall('ZREM', K.leases, id)
release_slot(job_key, id)
set_error(job_key, ARGV[9], ARGV[10], ARGV[11])
local attempts = tonumber(rcall('HGET', job_key, 'attempts') or '0')
if delay >= 0 and attempts < max_tries then
  rcall('HDEL', job_key, 'token', 'suspect', 'recovered')  -- it ran and raised: not a suspect
  if delay > 0 then
    rcall('HSET', job_key, 'status', 'deferred', 'scheduled_at', NOW + delay)
    rcall('ZADD', K.deferred, NOW + delay, id)
    publish(id, 'deferred')
  else
    rcall('HSET', job_key, 'status', 'queued')
    push_ready(job_key, id)
    publish(id, 'queued')
  end
  wake()  -- a blocked worker re-reads the next due time
  tally('retried')
  return 1
end
dead_letter(job_key, id)
wf_member_failed(job_key, id, ARGV[9], ARGV[10])
finish_job(job_key, id, 'failed')
tally('failed')
return 2
