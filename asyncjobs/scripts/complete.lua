-- complete: acknowledge 1..N jobs that succeeded, storing their results.
-- KEYS[1] leases   KEYS[2] stats   KEYS[3] ready   KEYS[4] wake   KEYS[5] seq
-- ARGV[1] job prefix   ARGV[2] keep ms (result TTL; 0 = drop the record)   ARGV[3] events channel
-- ARGV[4] concurrency-group prefix   then triples: id, token, result (JSON)
-- Returns: one integer per job: 1 stored, -1 refused because the job no longer holds that
--   lease token (it was reclaimed, cancelled or already finished): the outcome is never doubled.
-- A workflow member's result moves its workflow on in this same step (wf_member_done).
local now = now_ms()
local job_prefix, keep_ms, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, done = {}, 0
local k = {ready = KEYS[3], wake = KEYS[4], seq = KEYS[5]}
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job_key = job_prefix .. id
  if rcall('HGET', job_key, 'token') == token then
    rcall('ZREM', KEYS[1], id)
    release_slot(job_key, id, job_prefix, ARGV[4], KEYS[3], KEYS[4])
    rcall('HSET', job_key, 'result', ARGV[i + 2])
    rcall('HDEL', job_key, 'error_type', 'error_message', 'traceback')
    wf_member_done(job_key, ARGV[i + 2], job_prefix, k, now, channel)
    finish_job(job_key, id, 'succeeded', now, keep_ms, channel)
    done = done + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = -1
  end
end
if done > 0 then rcall('HINCRBY', KEYS[2], 'succeeded', done) end
return out
