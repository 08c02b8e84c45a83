-- complete: acknowledge 1..N jobs that succeeded, storing their results.
-- then, per job: id token result
-- Returns: one integer per job: 1 stored, -1 refused because the job no longer holds that
--   lease token (it was reclaimed, cancelled or already finished): the outcome is never doubled.
-- A workflow member's result moves its workflow on in this same step (wf_member_done).
workers_only()
local out, done, finished = {}, 0, {}
for i = LEADING + 1, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job_key = P.job .. id
  if rcall('HGET', job_key, 'token') == token then
    rcall('ZREM', K.leases, id)
    release_slot(job_key, id)
    rcall('HSET', job_key, 'result', ARGV[i + 2])
    rcall('HDEL', job_key, 'error_type', 'error_message', 'traceback')
    wf_member_done(job_key, ARGV[i + 2])
    finish_job(job_key, id, 'succeeded', nil, finished)
    done = done + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = -1
  end
end
if done > 0 then
  tally('succeeded', done)
  remember_finished('succeeded', finished)
end
return out
