-- complete: acknowledge 1..N jobs that succeeded, storing their results.
-- then, per job: id token result
-- Returns: one integer per job: 1 stored; 0 stored already by this same try (a resent report
--   whose first send landed but whose reply was lost); -1 refused because the job no longer
--   holds that lease token (it was reclaimed or cancelled): the outcome is never doubled.
-- A workflow member's result moves its workflow on in this same step (wf_member_done).
workers_only()
local out, done, finished, acked = {}, 0, {}, {}
for i = LEADING + 1, #ARGV, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job_key = P.job .. id
  -- one read for everything the ack may touch; most jobs have no group, workflow or error
  local f = rcall('HMGET', job_key, 'token', 'group', 'workflow', 'error_type')
  if f[1] == token then
    acked[#acked + 1] = id
    if f[2] then release_slot(job_key, id) end
    if f[3] then wf_member_done(job_key, result) end
    if f[4] then rcall('HDEL', job_key, 'error_type', 'error_message', 'traceback') end
    -- finish_job's work, folded into one write: the token is revoked by emptying it
    rcall('HSET', job_key, 'result', result, 'status', 'succeeded', 'finished_at', NOW,
      'token', '')
    if KEEP_MS > 0 then
      rcall('PEXPIRE', job_key, KEEP_MS)
      finished[#finished + 1] = id
    else
      rcall('DEL', job_key)
    end
    publish(id, 'succeeded')
    done = done + 1
    out[#out + 1] = 1
  else
    local again = rcall('HMGET', job_key, 'status', 'worker', 'attempts')
    local same_try = again[1] == 'succeeded' and again[2] and again[3]
      and again[2] .. ':' .. again[3] == token
    out[#out + 1] = same_try and 0 or -1
  end
end
for i = 1, #acked, 4000 do
  rcall('ZREM', K.leases, unpack(acked, i, math.min(i + 3999, #acked)))
end
if done > 0 then
  tally('succeeded', done)
  remember_finished('succeeded', finished)
end
return out
