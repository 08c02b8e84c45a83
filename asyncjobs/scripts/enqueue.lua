-- enqueue: create 1..N jobs atomically, deduplicated by job id and by idempotency key.
-- then, per job: JOB_FIELDS
-- Returns: {id_1, duplicate_1, ..., id_N, duplicate_N}; duplicate = 1 when an existing job
--   (same id, or same idempotency key inside its TTL) is returned and nothing was written.
-- Invariant: a new job is in exactly one of ready / deferred, with status queued / deferred.
local out = {}
local pending = new_jobs((#ARGV - LEADING) / #JOB_FIELDS)
for b = LEADING + 1, #ARGV, #JOB_FIELDS do
  local id, existed = create_job(b, pending)
  out[#out + 1] = id
  out[#out + 1] = existed
end
store_new_jobs(pending)
return out
