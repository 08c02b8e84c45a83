-- purge: end up to `limit` waiting jobs (ready, blocked on a concurrency slot, deferred) as
--   cancelled, as cancel does; called again while it reports more.
-- ARGV[5] limit
-- Returns: {purged, more (1 = waiting jobs are left: call again)}
-- Invariant: running jobs are not touched; a purged workflow member fails its workflow.
local limit = tonumber(ARGV[5])
local purged = 0

local function drop(id, from)
  local job_key = P.job .. id
  rcall('ZREM', from, id)
  local status = rcall('HGET', job_key, 'status')
  if status == 'queued' or status == 'deferred' then
    local blocked = rcall('HGET', job_key, 'blocked')
    if blocked then unpark(blocked, id) end
    wf_member_failed(job_key, id, 'JobCancelled', 'purged')
    finish_job(job_key, id, 'cancelled')
    purged = purged + 1
  end
end

for _, set in ipairs({K.ready, K.deferred}) do
  if purged < limit then
    for _, id in ipairs(rcall('ZRANGE', set, 0, limit - purged - 1)) do drop(id, set) end
  end
end
for _, group in ipairs(rcall('SMEMBERS', K.groups)) do
  if purged >= limit then break end
  local blocked = P.group .. group .. ':blocked'
  for _, id in ipairs(rcall('ZRANGE', blocked, 0, limit - purged - 1)) do drop(id, blocked) end
  forget_group_if_empty(group)
end
if purged > 0 then tally('cancelled', purged) end
local more = rcall('ZCARD', K.ready) + rcall('ZCARD', K.deferred) + rcall('SCARD', K.groups)
return {purged, more > 0 and 1 or 0}
