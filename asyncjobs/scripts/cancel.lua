-- cancel: end a job as cancelled, wherever it is; it is never retried.
-- ARGV[5] id
-- Returns: 1 cancelled before it ran, 2 cancelled while running (its worker is told on the
--   cancel channel and its token is revoked, so nothing it reports later is stored),
--   3 it was cancelled already (also what a retry after a lost reply sees), 0 it ended
--   otherwise, -1 not found.
-- Cancelling a workflow cancels its members; cancelling a member fails its workflow (unless the
-- member's failure is tolerated).
local id = ARGV[5]
local job_key = P.job .. id
local status = rcall('HGET', job_key, 'status')
if not status then return -1 end
if status == 'cancelled' then return 3 end
local wf_root = rcall('HGET', job_key, 'workflow_root')
if wf_root then
  if status ~= 'queued' and status ~= 'in_progress' then return 0 end
  rcall('HSET', wf_root, 'status', 'cancelled')
  wf_cancel_members(wf_root, '')
  finish_job(job_key, id, 'cancelled')
  rcall('PEXPIRE', wf_root, math.max(KEEP_MS, 1))
  return 1
end
local code
if status == 'queued' then
  rcall('ZREM', K.ready, id)
  local blocked = rcall('HGET', job_key, 'blocked')
  if blocked then unpark(blocked, id) end
  code = 1
elseif status == 'deferred' then
  rcall('ZREM', K.deferred, id)
  code = 1
elseif status == 'in_progress' then
  rcall('ZREM', K.leases, id)
  release_slot(job_key, id)
  announce(CANCELS, id)
  code = 2
else
  return 0
end
wf_member_failed(job_key, id, 'JobCancelled', 'cancelled by request')
finish_job(job_key, id, 'cancelled')
tally('cancelled')
return code
