-- cancel: end a job as cancelled, wherever it is; it is never retried.
-- KEYS[1] ready   KEYS[2] deferred   KEYS[3] leases   KEYS[4] stats   KEYS[5] wake   KEYS[6] seq
-- ARGV[1] job prefix   ARGV[2] id   ARGV[3] keep ms   ARGV[4] events channel
-- ARGV[5] cancel channel (running jobs: their worker listens there)
-- ARGV[6] concurrency-group prefix
-- Returns: 1 cancelled before it ran, 2 cancelled while running (its worker is told and its
--   token is revoked, so nothing it reports later is stored), 0 already finished, -1 not found.
-- Cancelling a workflow cancels its members; cancelling a member fails its workflow (unless the
-- member's failure is tolerated).
local now = now_ms()
local job_prefix, id, group_prefix = ARGV[1], ARGV[2], ARGV[6]
local job_key = job_prefix .. id
local status = rcall('HGET', job_key, 'status')
if not status then return -1 end
local k = {ready = KEYS[1], deferred = KEYS[2], leases = KEYS[3], wake = KEYS[5], seq = KEYS[6]}
local wf_root = rcall('HGET', job_key, 'workflow_root')
if wf_root then
  if status ~= 'queued' and status ~= 'in_progress' then return 0 end
  rcall('HSET', wf_root, 'status', 'cancelled')
  wf_cancel_members(wf_root, '', job_prefix, group_prefix, k, now, tonumber(ARGV[3]), ARGV[4],
    ARGV[5])
  finish_job(job_key, id, 'cancelled', now, tonumber(ARGV[3]), ARGV[4])
  rcall('PEXPIRE', wf_root, math.max(tonumber(ARGV[3]), 1))
  return 1
end
local code
if status == 'queued' then
  rcall('ZREM', KEYS[1], id)
  local blocked = rcall('HGET', job_key, 'blocked')
  if blocked then rcall('ZREM', group_prefix .. blocked .. ':blocked', id) end
  code = 1
elseif status == 'deferred' then
  rcall('ZREM', KEYS[2], id)
  code = 1
elseif status == 'in_progress' then
  rcall('ZREM', KEYS[3], id)
  release_slot(job_key, id, job_prefix, group_prefix, KEYS[1], KEYS[5])
  rcall('PUBLISH', ARGV[5], id)
  code = 2
else
  return 0
end
wf_member_failed(job_key, id, 'JobCancelled', 'cancelled by request', job_prefix, group_prefix, k,
  now, ARGV[4], ARGV[5])
finish_job(job_key, id, 'cancelled', now, tonumber(ARGV[3]), ARGV[4])
rcall('HINCRBY', KEYS[4], 'cancelled', 1)
return code
